//! Reading receipt photos with the real models: the merchant, total and date come out right,
//! also when the scan is turned or skewed.

use std::sync::OnceLock;

use image::RgbImage;
use tallydesk_ocr::Engine;
use tallydesk_ocr::receipt::{self, Line, ParseOptions, Receipt};

use crate::{models_dir, receipt_photo};

fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| Engine::load(&models_dir()).expect("the models load"))
}

fn image(name: &str) -> RgbImage {
    tallydesk_ocr::load_image(&receipt_photo(name)).unwrap()
}

fn read(image: &RgbImage) -> (Vec<tallydesk_ocr::TextLine>, Receipt) {
    let text = engine().read(image).expect("OCR runs");
    let lines: Vec<Line> = text.iter().map(Line::from).collect();
    let parsed = receipt::parse(&lines, &ParseOptions::default());
    (text, parsed)
}

fn total_and_date(r: &Receipt) -> (Option<String>, Option<String>) {
    (
        r.total.as_ref().map(|t| t.value.to_string()),
        r.date.as_ref().map(|d| d.value.to_string()),
    )
}

#[test]
fn reads_total_date_and_merchant_of_scanned_receipts() {
    for (id, merchant, total, date) in [
        (
            "stationery-my",
            "KEDAI BUKU MERANTI SDN BHD",
            "9.00",
            "2018-12-25",
        ),
        (
            "restaurant-my",
            "RESTORAN SELERA KAMPUNG",
            "38.90",
            "2019-03-14",
        ),
        (
            "hardware-my",
            "SYARIKAT PERKAKASAN JAYA MAJU",
            "386.40",
            "2018-03-23",
        ),
    ] {
        let (text, r) = read(&image(id));
        assert_eq!(
            total_and_date(&r),
            (Some(total.to_owned()), Some(date.to_owned())),
            "receipt {id}; text read:\n{}",
            text.iter()
                .map(|l| l.text.as_str())
                .collect::<Vec<_>>()
                .join("\n")
        );
        assert_eq!(
            r.merchant.as_ref().map(|m| m.value.as_str()),
            Some(merchant),
            "receipt {id} has its merchant"
        );
    }
}

#[test]
fn lines_come_in_reading_order_with_boxes_words_and_confidence() {
    let img = image("stationery-my");
    let (text, _) = read(&img);
    assert!(text.len() > 20, "a receipt has many lines");
    let total_row = text
        .iter()
        .position(|l| l.text.to_uppercase().starts_with("TOTAL"))
        .unwrap();
    let thank_you = text
        .iter()
        .position(|l| l.text.to_uppercase().contains("THANK YOU"))
        .unwrap();
    assert!(
        total_row < thank_you,
        "the total comes before the closing thanks"
    );
    for l in &text {
        assert!((0.0..=1.0).contains(&l.confidence));
        let b = l.quad.bounds();
        assert!(b.left >= -2. && b.top >= -2., "{b:?} is inside the image");
        assert!(b.right <= img.width() as f32 + 2. && b.bottom <= img.height() as f32 + 2.);
        assert!(!l.words.is_empty(), "{:?} has words", l.text);
        let joined: Vec<&str> = l.words.iter().map(|w| w.text.as_str()).collect();
        assert_eq!(
            joined.join(" "),
            l.text.split_whitespace().collect::<Vec<_>>().join(" ")
        );
    }
}

#[test]
fn rotated_scans_read_the_same() {
    let upright = image("stationery-my");
    for (turn, rotated) in [
        ("90°", image::imageops::rotate90(&upright)),
        ("180°", image::imageops::rotate180(&upright)),
        ("270°", image::imageops::rotate270(&upright)),
    ] {
        let (text, r) = read(&rotated);
        assert_eq!(
            total_and_date(&r),
            (Some("9.00".into()), Some("2018-12-25".into())),
            "turned {turn}; text read:\n{}",
            text.iter()
                .map(|l| l.text.as_str())
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
}

#[test]
fn skewed_photos_read_the_same() {
    let upright = image("restaurant-my");
    for degrees in [-6f32, 8.] {
        let (text, r) = read(&rotate(&upright, degrees));
        assert_eq!(
            total_and_date(&r),
            (Some("38.90".into()), Some("2019-03-14".into())),
            "skewed {degrees}°; text read:\n{}",
            text.iter()
                .map(|l| l.text.as_str())
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
}

#[test]
fn a_blank_image_has_no_text() {
    let blank = RgbImage::from_pixel(300, 500, image::Rgb([255, 255, 255]));
    assert!(engine().read(&blank).unwrap().is_empty());
    let tiny = RgbImage::from_pixel(1, 1, image::Rgb([0, 0, 0]));
    assert!(
        engine().read(&tiny).is_ok(),
        "a 1×1 image is read without error"
    );
}

/// Rotates by `degrees` about the centre onto a canvas large enough, filling with white.
fn rotate(src: &RgbImage, degrees: f32) -> RgbImage {
    let (s, c) = degrees.to_radians().sin_cos();
    let (w, h) = (src.width() as f32, src.height() as f32);
    let nw = (w * c.abs() + h * s.abs()).ceil() as u32;
    let nh = (w * s.abs() + h * c.abs()).ceil() as u32;
    RgbImage::from_fn(nw, nh, |x, y| {
        let (dx, dy) = (x as f32 - nw as f32 / 2., y as f32 - nh as f32 / 2.);
        let sx = c * dx + s * dy + w / 2.;
        let sy = -s * dx + c * dy + h / 2.;
        if sx >= 0. && sy >= 0. && sx < w - 1. && sy < h - 1. {
            *src.get_pixel(sx as u32, sy as u32)
        } else {
            image::Rgb([255, 255, 255])
        }
    })
}
