//! Reads receipts on the device: image → text lines → receipt fields.
//!
//! [`Engine`] runs the PP-OCR detection and recognition models on rten (pure Rust) and returns
//! [`TextLine`]s in reading order; [`receipt::parse`] turns lines into a [`receipt::Receipt`].
//! [`models`] says where the models are, [`locale`] how the user's receipts are written. The
//! `tallydesk-ocr` command line (scan, eval) is the binary in `src/bin/tallydesk-ocr/`.

pub mod detect;
pub mod engine;
pub mod geometry;
pub mod image_input;
pub mod layout;
pub mod locale;
pub mod models;
pub mod receipt;
pub mod recognize;

pub use engine::{Engine, EngineError, EngineOptions, TextLine, Word};
pub use image_input::{ImageError, load_image};
