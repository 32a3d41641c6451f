//! Where the OCR models live on this machine.

use std::path::PathBuf;

/// The folder `scripts/fetch-models` puts the models in:
/// `${XDG_DATA_HOME:-$HOME/.local/share}/tallydesk/models`.
pub fn default_dir() -> PathBuf {
    let data = std::env::var_os("XDG_DATA_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("."));
    data.join("tallydesk").join("models")
}

/// The folder named by `TALLYDESK_MODELS_DIR` when it is set, else [`default_dir`].
pub fn dir_from_env() -> PathBuf {
    std::env::var_os("TALLYDESK_MODELS_DIR")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(default_dir)
}
