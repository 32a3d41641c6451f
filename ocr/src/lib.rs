//! Reads receipts on the device: image → text lines → receipt fields.
//!
//! [`Engine`] runs the PP-OCR detection and recognition models on rten (pure Rust) and returns
//! [`TextLine`]s in reading order; [`receipt::parse`] turns lines into a [`receipt::Receipt`].

pub mod cli;
pub mod detect;
pub mod engine;
pub mod eval;
pub mod geometry;
pub mod image_input;
pub mod layout;
pub mod receipt;
pub mod recognize;

pub use engine::{Engine, EngineError, EngineOptions, TextLine, Word};
pub use image_input::{ImageError, load_image};
