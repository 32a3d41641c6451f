//! The account commands through the real invoke path, on Tauri's mock runtime.

use serde_json::{Value, json};
use tauri::ipc::{CallbackFn, InvokeBody};
use tauri::test::{
    INVOKE_KEY, MockRuntime, get_ipc_response, mock_builder, mock_context, noop_assets,
};
use tauri::webview::InvokeRequest;
use tauri::{App, WebviewWindow, WebviewWindowBuilder};

struct Harness {
    _app: App<MockRuntime>,
    window: WebviewWindow<MockRuntime>,
    _data: tempfile::TempDir,
}

fn harness() -> Harness {
    let data = tempfile::tempdir().unwrap();
    let app = mock_builder()
        .plugin(tauri_plugin_store::Builder::new().build())
        .manage(tallydesk_lib::workspace::Workspace::default())
        .manage(tallydesk_lib::workspace::DataDir(data.path().to_owned()))
        .manage(tallydesk_lib::account::AccountSlot::default())
        .invoke_handler(tallydesk_lib::specta_builder_for!(MockRuntime).invoke_handler())
        .build(mock_context(noop_assets()))
        .expect("the mock app builds");
    let window = WebviewWindowBuilder::new(&app, "main", Default::default())
        .build()
        .unwrap();
    Harness {
        _app: app,
        window,
        _data: data,
    }
}

fn invoke(h: &Harness, cmd: &str, args: Value) -> Result<Value, Value> {
    let request = InvokeRequest {
        cmd: cmd.into(),
        callback: CallbackFn(0),
        error: CallbackFn(1),
        url: "tauri://localhost".parse().unwrap(),
        body: InvokeBody::Json(args),
        headers: Default::default(),
        invoke_key: INVOKE_KEY.to_string(),
    };
    get_ipc_response(&h.window, request).map(|body| body.deserialize::<Value>().unwrap())
}

#[test]
fn a_fresh_app_is_a_local_workspace_whose_user_may_do_everything() {
    let h = harness();
    let account = invoke(&h, "account", json!({})).expect("the account is known");
    assert_eq!(
        account,
        json!({ "state": "local" }),
        "no server connected yet"
    );

    let info = invoke(&h, "workspace_info", json!({})).expect("the workspace is open");
    assert_eq!(info["me"]["role"], "admin", "locally the user is the admin");
    let can = info["can"].as_array().expect("what the role may do");
    assert!(
        can.contains(&json!("manage_members")) && can.contains(&json!("delete_ticket")),
        "an admin may do everything: {can:?}"
    );

    let error = invoke(&h, "list_members", json!({})).expect_err("members live on a server");
    assert_eq!(error["code"], "not_signed_in", "{error}");
    assert!(
        error["message"]
            .as_str()
            .is_some_and(|m| m.contains("Sign in")),
        "the message says what to do: {error}"
    );

    let error = invoke(&h, "connect_server", json!({ "url": "" })).expect_err("no address");
    assert_eq!(error["code"], "invalid_field", "{error}");
    assert_eq!(error["field"], "url");
}
