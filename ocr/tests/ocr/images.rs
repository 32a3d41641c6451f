//! Every way an image file can be bad gets its own clear error, checked before decoding where
//! possible; none of them panics.

use std::io::Cursor;
use std::path::PathBuf;

use image::{ImageFormat, RgbImage};
use proptest::prelude::*;
use tallydesk_ocr::image_input::{ImageError, decode_image, load_image};

fn temp_file(name: &str, bytes: &[u8]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tallydesk-ocr-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

fn encoded(format: ImageFormat) -> Vec<u8> {
    let image = RgbImage::from_fn(64, 48, |x, y| {
        image::Rgb([(x * 4) as u8, (y * 5) as u8, 128])
    });
    let mut bytes = Vec::new();
    image
        .write_to(&mut Cursor::new(&mut bytes), format)
        .unwrap();
    bytes
}

#[test]
fn a_good_image_loads() {
    let path = temp_file("good.png", &encoded(ImageFormat::Png));
    let image = load_image(&path).expect("a valid PNG loads");
    assert_eq!(image.dimensions(), (64, 48));
    let path = temp_file("good.jpg", &encoded(ImageFormat::Jpeg));
    assert_eq!(load_image(&path).unwrap().dimensions(), (64, 48));
}

#[test]
fn an_empty_file_is_reported_as_empty() {
    let path = temp_file("empty.jpg", b"");
    assert!(matches!(load_image(&path), Err(ImageError::Empty)));
}

#[test]
fn a_missing_or_vanished_file_is_reported_as_such() {
    let path = temp_file("vanishing.png", &encoded(ImageFormat::Png));
    std::fs::remove_file(&path).unwrap();
    let err = load_image(&path).unwrap_err();
    assert!(matches!(err, ImageError::NotFound), "{err:?}");
    assert!(err.to_string().contains("does not exist"));
}

#[test]
fn a_pdf_gets_advice_to_export_an_image() {
    let path = temp_file(
        "scan.pdf",
        b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog >>\nendobj\n",
    );
    let err = load_image(&path).unwrap_err();
    assert!(matches!(err, ImageError::Pdf));
    assert_eq!(
        err.to_string(),
        "PDF is not supported; export the page as an image"
    );
}

#[test]
fn text_is_not_an_image() {
    let path = temp_file("notes.jpg", b"Lunch with the team, 42.00\n");
    assert!(matches!(load_image(&path), Err(ImageError::NotAnImage)));
}

#[test]
fn truncated_images_are_reported_as_corrupt() {
    for (name, format) in [
        ("cut.png", ImageFormat::Png),
        ("cut.jpg", ImageFormat::Jpeg),
    ] {
        let bytes = encoded(format);
        let path = temp_file(name, &bytes[..bytes.len() / 2]);
        let err = load_image(&path).unwrap_err();
        assert!(matches!(err, ImageError::Corrupt(_)), "{name}: {err:?}");
    }
}

/// A PNG that is only a header claiming `width`×`height` pixels: no pixel data at all.
fn png_header_only(width: u32, height: u32) -> Vec<u8> {
    let mut ihdr = b"IHDR".to_vec();
    ihdr.extend(width.to_be_bytes());
    ihdr.extend(height.to_be_bytes());
    ihdr.extend([8, 2, 0, 0, 0]); // 8-bit RGB
    let mut bytes = b"\x89PNG\r\n\x1a\n".to_vec();
    bytes.extend(13u32.to_be_bytes());
    bytes.extend(&ihdr);
    bytes.extend(crc32(&ihdr).to_be_bytes());
    bytes
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[test]
fn huge_images_are_refused_from_the_header_alone() {
    // 10000 × 6000 = 60 megapixels; decoding would need 180 MB, and the data isn't even there.
    let path = temp_file("huge.png", &png_header_only(10_000, 6_000));
    let err = load_image(&path).unwrap_err();
    assert!(
        matches!(
            err,
            ImageError::TooLarge {
                width: 10_000,
                height: 6_000
            }
        ),
        "the size must be checked before decoding: {err:?}"
    );
    assert!(err.to_string().contains("50 megapixels"));
}

#[test]
fn every_error_has_a_stable_code() {
    assert_eq!(decode_image(b"").unwrap_err().code(), "empty");
    assert_eq!(decode_image(b"%PDF-1.4").unwrap_err().code(), "pdf");
    assert_eq!(decode_image(b"hello").unwrap_err().code(), "not_an_image");
}

/// 256 cases per property in normal runs; `PROPTEST_CASES=20000` for a long run by hand.
fn fuzz_cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(fuzz_cases()))]

    /// Random bytes never panic the loader.
    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        let _ = decode_image(&bytes);
    }

    /// Valid images with bytes flipped or cut short either load or fail with an error.
    #[test]
    fn damaged_images_never_panic(
        png in any::<bool>(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..16),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut bytes = encoded(if png { ImageFormat::Png } else { ImageFormat::Jpeg });
        for (at, value) in flips {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        let keep = cut.index(bytes.len() + 1);
        bytes.truncate(keep.max(1));
        if let Ok(image) = decode_image(&bytes) {
            prop_assert!(u64::from(image.width()) * u64::from(image.height()) <= 50_000_000);
        }
    }
}
