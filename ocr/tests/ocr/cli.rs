//! The `tallydesk-ocr scan --json` contract: one JSON object per line per file, in the given
//! order; a file that cannot be read gets `error` and null fields, and the batch goes on.

use std::process::Command;

use serde_json::Value;

use crate::{models_dir, receipt_photo};

#[test]
fn scan_json_reports_each_file_and_goes_on_after_bad_ones() {
    let dir = std::env::temp_dir().join(format!("tallydesk-ocr-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let empty = dir.join("empty.jpg");
    std::fs::write(&empty, b"").unwrap();
    let pdf = dir.join("scan.pdf");
    std::fs::write(&pdf, b"%PDF-1.7\n").unwrap();
    let gone = dir.join("gone.png");
    let receipt = receipt_photo("stationery-my");

    let out = Command::new(env!("CARGO_BIN_EXE_tallydesk-ocr"))
        .arg("--models")
        .arg(models_dir())
        .args(["scan", "--json"])
        .args([&empty, &pdf, &gone, &receipt])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is one JSON object"))
        .collect();
    assert_eq!(lines.len(), 4, "one line per file");

    for (line, code_words) in lines[..3].iter().zip(["empty", "PDF", "does not exist"]) {
        let error = line["error"].as_str().expect("a bad file has an error");
        assert!(error.contains(code_words), "{error}");
        for field in [
            "merchant", "date", "total", "currency", "subtotal", "tax", "items",
        ] {
            assert!(
                line[field].is_null(),
                "{field} is null when the file could not be read"
            );
        }
    }
    let good = &lines[3];
    assert!(good["error"].is_null());
    assert_eq!(good["file"], receipt.display().to_string());
    assert_eq!(good["total"], "9.00", "totals are decimal strings");
    assert_eq!(good["date"], "2018-12-25", "dates are ISO 8601");
    assert_eq!(good["currency"], "MYR");
    let total_confidence = good["confidence"]["total"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&total_confidence));
    let item = &good["items"][0];
    assert!(item["description"].is_string() && item["amount"].is_string());
}
