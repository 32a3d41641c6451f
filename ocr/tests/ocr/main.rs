//! Integration tests of the `tallydesk-ocr` crate: image loading (every way a file can be bad)
//! and reading real receipts with the real models.

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

/// The labelled development receipts, beside the repository (`../shared/receipts/sroie-dev`).
pub fn receipts_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/receipts/sroie-dev");
    assert!(
        dir.join("img").is_dir(),
        "the dev receipts are not at {} (CI checks them out beside the repository)",
        dir.display()
    );
    dir
}
