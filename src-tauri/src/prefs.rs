//! Preferences and window state, kept with tauri-plugin-store. Nothing secret goes here.

use serde::{Deserialize, Serialize};
use tallydesk_desktop_core::{DeskError, ErrorCode};
use tauri::{
    AppHandle, Manager, PhysicalPosition, PhysicalSize, Runtime, WebviewWindow,
    WebviewWindowBuilder, Window,
};
use tauri_plugin_store::StoreExt;

const FILE: &str = "preferences.json";
const PREFERENCES: &str = "preferences";
const WINDOW: &str = "window";

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, specta::Type)]
#[serde(rename_all = "snake_case")]
pub enum Theme {
    Light,
    Dark,
    #[default]
    System,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, specta::Type)]
#[serde(rename_all = "snake_case")]
pub enum Density {
    #[default]
    Comfortable,
    Compact,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, specta::Type)]
#[serde(default)]
pub struct Preferences {
    pub theme: Theme,
    pub density: Density,
    /// The Tallydesk server to sync with (later); empty for none.
    pub server_url: String,
    /// The screen shown last, restored on restart (e.g. `queue/my_open`, `ticket/<id>`).
    pub last_view: String,
}

impl Preferences {
    fn validate(self) -> Result<Self, DeskError> {
        let url = self.server_url.trim();
        if !(url.is_empty() || url.starts_with("https://") || url.starts_with("http://")) {
            return Err(DeskError::invalid(
                "server_url",
                "server URL: start it with https:// (or http:// for a local server)",
            ));
        }
        if url.len() > 2048 || self.last_view.len() > 512 {
            return Err(DeskError::invalid("server_url", "server URL: too long"));
        }
        Ok(Self {
            server_url: url.to_owned(),
            ..self
        })
    }
}

/// The preferences file, in the app's data directory.
fn file<R: Runtime>(app: &AppHandle<R>) -> std::path::PathBuf {
    app.state::<crate::workspace::DataDir>().0.join(FILE)
}

fn store_error(e: impl std::fmt::Display) -> DeskError {
    DeskError::new(
        ErrorCode::Internal,
        format!("cannot read or write preferences: {e}"),
    )
}

pub fn load<R: Runtime>(app: &AppHandle<R>) -> Result<Preferences, DeskError> {
    let store = app.store(file(app)).map_err(store_error)?;
    Ok(store
        .get(PREFERENCES)
        .and_then(|v| serde_json::from_value(v).ok())
        .unwrap_or_default())
}

pub fn save<R: Runtime>(
    app: &AppHandle<R>,
    preferences: Preferences,
) -> Result<Preferences, DeskError> {
    let preferences = preferences.validate()?;
    let store = app.store(file(app)).map_err(store_error)?;
    store.set(
        PREFERENCES,
        serde_json::to_value(&preferences).map_err(store_error)?,
    );
    store.save().map_err(store_error)?;
    Ok(preferences)
}

#[derive(Debug, Serialize, Deserialize)]
struct WindowState {
    x: i32,
    y: i32,
    width: u32,
    height: u32,
    maximized: bool,
}

/// The main window (`create: false` in the config), built with the saved preferences handed to
/// its page before any script runs: its first frame has the right theme and density, and it asks
/// for the screen shown last at once instead of after reading the preferences.
pub fn main_window<R: Runtime>(app: &AppHandle<R>) -> tauri::Result<WebviewWindow<R>> {
    let config = app
        .config()
        .app
        .windows
        .iter()
        .find(|w| w.label == "main")
        .cloned()
        .ok_or_else(|| tauri::Error::WindowNotFound)?;
    let preferences = load(app).unwrap_or_default();
    let script = format!(
        "window.__TALLYDESK_PREFERENCES__ = {};",
        serde_json::to_string(&preferences)?
    );
    WebviewWindowBuilder::from_config(app, &config)?
        .initialization_script(script)
        .build()
}

/// Puts the window where it was, if that place is still on a screen.
pub fn restore_window<R: Runtime>(app: &AppHandle<R>, window: &WebviewWindow<R>) {
    let Ok(store) = app.store(file(app)) else {
        return;
    };
    let Some(state) = store
        .get(WINDOW)
        .and_then(|v| serde_json::from_value::<WindowState>(v).ok())
    else {
        return;
    };
    let on_screen = window
        .available_monitors()
        .unwrap_or_default()
        .iter()
        .any(|m| {
            let (p, s) = (m.position(), m.size());
            state.x >= p.x
                && state.y >= p.y
                && state.x < p.x + s.width as i32
                && state.y < p.y + s.height as i32
        });
    if state.width >= 400 && state.height >= 300 {
        let _ = window.set_size(PhysicalSize::new(state.width, state.height));
    }
    if on_screen {
        let _ = window.set_position(PhysicalPosition::new(state.x, state.y));
    }
    if state.maximized {
        let _ = window.maximize();
    }
}

pub fn save_window<R: Runtime>(window: &Window<R>) {
    if window.is_minimized().unwrap_or(false) {
        return;
    }
    let maximized = window.is_maximized().unwrap_or(false);
    let (Ok(position), Ok(size)) = (window.outer_position(), window.inner_size()) else {
        return;
    };
    let state = WindowState {
        x: position.x,
        y: position.y,
        width: size.width,
        height: size.height,
        maximized,
    };
    let Ok(store) = window.app_handle().store(file(window.app_handle())) else {
        return;
    };
    if let Ok(value) = serde_json::to_value(&state) {
        store.set(WINDOW, value);
        let _ = store.save();
    }
}
