//! Tests of the command layer through Tauri's mock runtime (no webview), and of the bindings.

mod account;
mod bindings;
mod commands;
