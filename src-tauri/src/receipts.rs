//! The desktop side of receipts: where the OCR models are, the native file pickers, and the
//! `receipt:` URI scheme that shows stored receipt images to the webview.

use std::path::PathBuf;

use tallydesk_desktop_core::receipts::{Scanner, image_path, media_type};
use tallydesk_desktop_core::{DeskError, ErrorCode};
use tauri::http::{Request, Response, StatusCode, header};
use tauri::{AppHandle, Manager, Runtime, UriSchemeContext, UriSchemeResponder};
use tauri_plugin_dialog::DialogExt;

use crate::workspace::Workspace;

/// The scanner, with the models looked for in `TALLYDESK_MODELS_DIR`, then beside the app
/// (the packaged app bundles them), then where `scripts/fetch-models` puts them.
pub fn scanner<R: Runtime>(app: &AppHandle<R>) -> Scanner {
    let mut dirs = Vec::new();
    if let Some(dir) = std::env::var_os("TALLYDESK_MODELS_DIR").filter(|d| !d.is_empty()) {
        dirs.push(PathBuf::from(dir));
    }
    if let Ok(resources) = app.path().resource_dir() {
        dirs.push(resources.join("models"));
    }
    dirs.push(tallydesk_ocr::models::default_dir());
    Scanner::new(dirs, tallydesk_ocr::locale::parse_options())
}

const IMAGE_EXTENSIONS: [&str; 8] = ["jpg", "jpeg", "png", "webp", "tif", "tiff", "bmp", "gif"];

fn path_of(file: tauri_plugin_dialog::FilePath) -> Option<String> {
    file.into_path().ok().map(|p| p.display().to_string())
}

/// Asks for receipt files (or, with `folder`, folders) with the system's file chooser; empty
/// when the person cancels.
pub async fn pick<R: Runtime>(app: &AppHandle<R>, folder: bool) -> Vec<String> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let dialog = app.dialog().file().set_title(if folder {
        "Add folders of receipts"
    } else {
        "Add receipts"
    });
    if folder {
        dialog.pick_folders(move |picked| {
            let _ = tx.send(picked);
        });
    } else {
        dialog
            .add_filter("Receipt images", &IMAGE_EXTENSIONS)
            .pick_files(move |picked| {
                let _ = tx.send(picked);
            });
    }
    rx.await
        .ok()
        .flatten()
        .unwrap_or_default()
        .into_iter()
        .filter_map(path_of)
        .collect()
}

/// Asks where to save `csv` and writes it there; `None` when the person cancels.
pub async fn save_csv<R: Runtime>(
    app: &AppHandle<R>,
    csv: String,
) -> Result<Option<String>, DeskError> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    app.dialog()
        .file()
        .set_title("Export expenses")
        .set_file_name("expenses.csv")
        .add_filter("CSV", &["csv"])
        .save_file(move |picked| {
            let _ = tx.send(picked);
        });
    let Some(path) = rx.await.ok().flatten().and_then(|f| f.into_path().ok()) else {
        return Ok(None);
    };
    tokio::fs::write(&path, csv).await.map_err(|e| {
        DeskError::new(
            ErrorCode::Internal,
            format!("could not write {}: {e}", path.display()),
        )
    })?;
    Ok(Some(path.display().to_string()))
}

/// Serves `receipt://localhost/<sha256>` from the workspace's receipt images.
pub fn serve_image<R: Runtime>(
    ctx: UriSchemeContext<'_, R>,
    request: Request<Vec<u8>>,
    responder: UriSchemeResponder,
) {
    let app = ctx.app_handle().clone();
    let name = request.uri().path().trim_start_matches('/').to_owned();
    tauri::async_runtime::spawn(async move {
        responder.respond(image_response(&app, &name).await);
    });
}

async fn image_response<R: Runtime>(app: &AppHandle<R>, name: &str) -> Response<Vec<u8>> {
    let status = |code: StatusCode| {
        Response::builder()
            .status(code)
            .body(Vec::new())
            .unwrap_or_default()
    };
    let Ok(desk) = app.state::<Workspace>().desk().await else {
        return status(StatusCode::SERVICE_UNAVAILABLE);
    };
    let dir = tallydesk_desktop_core::receipts::images_dir(desk.store());
    let Some(path) = image_path(&dir, name) else {
        return status(StatusCode::BAD_REQUEST);
    };
    match tokio::fs::read(&path).await {
        Ok(bytes) => Response::builder()
            .header(header::CONTENT_TYPE, media_type(&bytes))
            .header(
                header::CACHE_CONTROL,
                "private, max-age=31536000, immutable",
            )
            .body(bytes)
            .unwrap_or_default(),
        Err(_) => status(StatusCode::NOT_FOUND),
    }
}
