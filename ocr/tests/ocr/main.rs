//! Integration tests of the `tallydesk-ocr` crate: image loading (every way a file can be bad)
//! and reading receipt photos with the real models.

mod cli;
mod images;
mod receipts;

use std::path::PathBuf;

/// The models folder the product uses: `TALLYDESK_MODELS_DIR`, else the default data folder.
pub fn models_dir() -> PathBuf {
    let dir = tallydesk_ocr::models::dir_from_env();
    for name in [
        tallydesk_ocr::engine::DETECTION_MODEL,
        tallydesk_ocr::engine::RECOGNITION_MODEL,
    ] {
        assert!(
            dir.join(name).is_file(),
            "the OCR model {name} is not in {}: run scripts/fetch-models",
            dir.display()
        );
    }
    dir
}

/// A receipt photo of the repository's own (`tests/fixtures/receipts/NAME.jpg`, made by the
/// `render.sh` beside them).
pub fn receipt_photo(name: &str) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/receipts")
        .join(format!("{name}.jpg"));
    assert!(path.is_file(), "{} is missing", path.display());
    path
}
