//! Commands through the real invoke path, on Tauri's mock runtime.

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
fn the_ui_can_open_the_workspace_and_work_a_ticket() {
    let h = harness();
    let info = invoke(&h, "open_workspace", json!({})).expect("the workspace opens");
    assert_eq!(
        info["me"]["role"], "admin",
        "in local mode the user is the admin"
    );

    let ticket = invoke(
        &h,
        "create_ticket",
        json!({ "input": { "title": "Printer on fire" } }),
    )
    .unwrap();
    let id = ticket["id"].as_str().unwrap();
    let detail = invoke(&h, "view_ticket", json!({ "id": id })).unwrap();
    assert_eq!(detail["ticket"]["status"], "in_progress");
    assert_eq!(detail["allowed_moves"], json!(["on_hold", "resolved"]));

    let err = invoke(
        &h,
        "transition_ticket",
        json!({ "id": id, "to": "on_hold", "reason": null }),
    )
    .unwrap_err();
    assert_eq!(
        err["code"], "invalid_field",
        "errors cross IPC as {{code, message}}: {err}"
    );
    assert_eq!(err["field"], "reason");
    assert!(err["message"].as_str().unwrap().contains("reason"));

    let held = invoke(
        &h,
        "transition_ticket",
        json!({ "id": id, "to": "on_hold", "reason": "Waiting for toner" }),
    )
    .unwrap();
    assert_eq!(held["hold_reason"], "Waiting for toner");
    let err = invoke(
        &h,
        "transition_ticket",
        json!({ "id": id, "to": "closed", "reason": null }),
    )
    .unwrap_err();
    assert_eq!(err["code"], "illegal_transition");

    let comment = invoke(
        &h,
        "add_comment",
        json!({ "id": id, "body": "On it", "internal": false }),
    )
    .unwrap();
    assert_eq!(comment["internal"], false);
    let page = invoke(
        &h,
        "list_tickets",
        json!({ "query": { "search": "printer" } }),
    )
    .unwrap();
    assert_eq!(page["items"][0]["id"], id);

    let err = invoke(
        &h,
        "create_ticket",
        json!({ "input": { "title": "x".repeat(201) } }),
    )
    .unwrap_err();
    assert_eq!(err["code"], "invalid_field");
    assert_eq!(err["field"], "title");
    let err = invoke(&h, "list_tickets", json!({ "query": { "colour": "red" } })).unwrap_err();
    assert!(
        err.to_string().contains("colour"),
        "unknown query fields are refused: {err}"
    );
}

#[test]
fn preferences_are_validated_and_kept() {
    let h = harness();
    let prefs = invoke(&h, "get_preferences", json!({})).unwrap();
    assert_eq!(prefs["theme"], "system");
    let saved = invoke(
        &h,
        "set_preferences",
        json!({ "preferences": { "theme": "dark", "density": "compact", "server_url": " https://desk.example.com ", "last_view": "queue/all" } }),
    )
    .unwrap();
    assert_eq!(saved["server_url"], "https://desk.example.com");
    assert_eq!(
        invoke(&h, "get_preferences", json!({})).unwrap()["theme"],
        "dark"
    );
    let err = invoke(
        &h,
        "set_preferences",
        json!({ "preferences": { "server_url": "ftp://nope" } }),
    )
    .unwrap_err();
    assert_eq!(err["field"], "server_url");
    assert_eq!(
        invoke(&h, "get_preferences", json!({})).unwrap()["server_url"],
        "https://desk.example.com",
        "a refused change changes nothing"
    );
}
