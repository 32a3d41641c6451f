//! Loading an image file into RGB pixels, with a typed error for each way it can fail.

use std::io::{self, Cursor};
use std::path::Path;

use image::{DynamicImage, ImageDecoder, ImageReader, RgbImage};

/// Images larger than this many pixels are refused before decoding.
pub const MAX_PIXELS: u64 = 50_000_000;

/// Why a file could not be read as an image.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("the file does not exist (it may have been moved or deleted)")]
    NotFound,
    #[error("the file is empty")]
    Empty,
    #[error("PDF is not supported; export the page as an image")]
    Pdf,
    #[error("not an image (supported: JPEG, PNG, WebP, TIFF, BMP, GIF)")]
    NotAnImage,
    #[error(
        "the image is too large: {width}×{height} pixels is over {} megapixels",
        MAX_PIXELS / 1_000_000
    )]
    TooLarge { width: u32, height: u32 },
    #[error("the image has no pixels ({width}×{height})")]
    NoPixels { width: u32, height: u32 },
    #[error("the image is truncated or corrupt: {0}")]
    Corrupt(String),
    #[error("could not read the file: {0}")]
    Io(#[source] io::Error),
}

impl ImageError {
    /// A stable code for callers that branch on the kind of failure (the UI, JSON output).
    pub fn code(&self) -> &'static str {
        match self {
            ImageError::NotFound => "not_found",
            ImageError::Empty => "empty",
            ImageError::Pdf => "pdf",
            ImageError::NotAnImage => "not_an_image",
            ImageError::TooLarge { .. } => "too_large",
            ImageError::NoPixels { .. } => "no_pixels",
            ImageError::Corrupt(_) => "corrupt",
            ImageError::Io(_) => "io",
        }
    }
}

/// Reads and decodes the image at `path`, applying its EXIF orientation.
pub fn load_image(path: &Path) -> Result<RgbImage, ImageError> {
    let bytes = std::fs::read(path).map_err(|err| match err.kind() {
        io::ErrorKind::NotFound => ImageError::NotFound,
        _ => ImageError::Io(err),
    })?;
    decode_image(&bytes)
}

/// Decodes an image held in memory, applying its EXIF orientation. The dimensions in the header
/// are checked before any pixel is decoded.
pub fn decode_image(bytes: &[u8]) -> Result<RgbImage, ImageError> {
    if bytes.is_empty() {
        return Err(ImageError::Empty);
    }
    if bytes.trim_ascii_start().starts_with(b"%PDF") {
        return Err(ImageError::Pdf);
    }
    // The header's dimensions, read before any decoder runs (decoders may read further, or
    // allocate, before they report the size).
    if let Ok(size) = imagesize::blob_size(bytes) {
        let (width, height) = (size.width as u64, size.height as u64);
        if width.saturating_mul(height) > MAX_PIXELS {
            let clamp = |v: u64| u32::try_from(v).unwrap_or(u32::MAX);
            return Err(ImageError::TooLarge {
                width: clamp(width),
                height: clamp(height),
            });
        }
    }
    let reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(ImageError::Io)?;
    if reader.format().is_none() {
        return Err(ImageError::NotAnImage);
    }
    let mut decoder = reader.into_decoder().map_err(corrupt)?;
    let (width, height) = decoder.dimensions();
    if u64::from(width) * u64::from(height) > MAX_PIXELS {
        return Err(ImageError::TooLarge { width, height });
    }
    if width == 0 || height == 0 {
        return Err(ImageError::NoPixels { width, height });
    }
    // A file whose EXIF block is unreadable still has usable pixels.
    let orientation = decoder.orientation().ok();
    let mut image = DynamicImage::from_decoder(decoder).map_err(corrupt)?;
    if let Some(orientation) = orientation {
        image.apply_orientation(orientation);
    }
    Ok(image.into_rgb8())
}

fn corrupt(err: image::ImageError) -> ImageError {
    match err {
        image::ImageError::Unsupported(_) => ImageError::NotAnImage,
        image::ImageError::Limits(_) => {
            ImageError::Corrupt("the image needs too much memory".into())
        }
        image::ImageError::IoError(err) if err.kind() == io::ErrorKind::UnexpectedEof => {
            ImageError::Corrupt("the file ends too early".into())
        }
        other => ImageError::Corrupt(other.to_string()),
    }
}
