//! `tallydesk-ocr eval`: exact-match accuracy of merchant, date and total on a labelled folder
//! (`img/NNN.jpg` + `key/NNN.json` with `company`, `date`, `total`), latency and peak memory,
//! optionally beside the tesseract CLI run on the same images in the same run.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use chrono::NaiveDate;

use tallydesk_ocr::Engine;
use tallydesk_ocr::receipt::{self, Amount, DateOrder, ParseOptions, Receipt};

use crate::cli::{Peer, read_receipt};

/// A receipt's labels, parsed for scoring.
#[derive(Debug, Clone)]
struct Label {
    company: Option<String>,
    date: Option<NaiveDate>,
    total: Option<Amount>,
    raw: serde_json::Value,
}

/// Case, whitespace and punctuation don't count when comparing names: runs of anything but
/// letters and digits become one space.
pub fn normalize_name(s: &str) -> String {
    s.to_uppercase()
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// A label's total ("9.00", "$8.20", "RM 3.90") as a decimal.
pub fn label_amount(s: &str) -> Option<Amount> {
    let digits: String = s
        .chars()
        .filter(|c| c.is_ascii_digit() || matches!(c, '.' | ','))
        .collect();
    receipt::parse_number(&digits).map(|(a, _)| a)
}

/// A label's date in the receipt's own format; ambiguous ones read day first (as the labels
/// of the SROIE receipts are).
pub fn label_date(s: &str) -> Option<NaiveDate> {
    receipt::find_dates(s, DateOrder::DayFirst)
        .first()
        .map(|d| d.date)
}

fn read_label(path: &Path) -> anyhow::Result<Label> {
    let raw: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path)?)?;
    let get = |k: &str| raw.get(k).and_then(|v| v.as_str()).map(str::to_owned);
    Ok(Label {
        company: get("company").filter(|s| !s.trim().is_empty()),
        date: get("date").as_deref().and_then(label_date),
        total: get("total").as_deref().and_then(label_amount),
        raw,
    })
}

#[derive(Default)]
struct Score {
    merchant: (usize, usize),
    date: (usize, usize),
    total: (usize, usize),
    latencies: Vec<Duration>,
    failures: Vec<String>,
}

impl Score {
    fn add(&mut self, id: &str, label: &Label, got: &Receipt) {
        let mut fails = Vec::new();
        if let Some(want) = &label.company {
            self.merchant.1 += 1;
            let got_name = got.merchant.as_ref().map(|m| m.value.as_str());
            if got_name.map(normalize_name) == Some(normalize_name(want)) {
                self.merchant.0 += 1;
            } else {
                fails.push(format!(
                    "merchant: want {want:?}, got {:?}",
                    got_name.unwrap_or("-")
                ));
            }
        }
        if let Some(want) = label.date {
            self.date.1 += 1;
            let got_date = got.date.as_ref().map(|d| d.value);
            if got_date == Some(want) {
                self.date.0 += 1;
            } else {
                fails.push(format!(
                    "date: want {want} ({}), got {}",
                    label.raw["date"].as_str().unwrap_or(""),
                    got_date.map_or("-".into(), |d| d.to_string())
                ));
            }
        }
        if let Some(want) = label.total {
            self.total.1 += 1;
            let got_total = got.total.as_ref().map(|t| t.value);
            if got_total.is_some_and(|g| g.decimal() == want.decimal()) {
                self.total.0 += 1;
            } else {
                fails.push(format!(
                    "total: want {want}, got {}",
                    got_total.map_or("-".into(), |t| t.to_string())
                ));
            }
        }
        if !fails.is_empty() {
            self.failures.push(format!("{id}: {}", fails.join("; ")));
        }
    }
}

fn pct((hit, n): (usize, usize)) -> String {
    if n == 0 {
        "n/a".into()
    } else {
        format!("{:5.1}% ({hit}/{n})", 100. * hit as f64 / n as f64)
    }
}

fn latency_summary(latencies: &[Duration]) -> String {
    if latencies.is_empty() {
        return "n/a".into();
    }
    let mut ms: Vec<f64> = latencies.iter().map(|d| d.as_secs_f64() * 1000.).collect();
    ms.sort_by(f64::total_cmp);
    let at = |q: f64| ms[((ms.len() - 1) as f64 * q).round() as usize];
    format!(
        "min {:.0} ms, median {:.0} ms, p95 {:.0} ms",
        ms[0],
        at(0.5),
        at(0.95)
    )
}

/// Median latency in milliseconds.
fn median_ms(latencies: &[Duration]) -> f64 {
    let mut ms: Vec<f64> = latencies.iter().map(|d| d.as_secs_f64() * 1000.).collect();
    ms.sort_by(f64::total_cmp);
    ms.get(ms.len() / 2).copied().unwrap_or(f64::NAN)
}

/// Peak resident memory of this process (VmHWM), in kB.
pub fn peak_memory_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

fn tesseract(image: &Path, threads: Option<usize>) -> anyhow::Result<String> {
    let mut command = Command::new("tesseract");
    command.arg(image).arg("-");
    if let Some(n) = threads {
        command.env("OMP_THREAD_LIMIT", n.to_string());
    }
    let out = command.output().map_err(|e| {
        anyhow::anyhow!("could not run tesseract (apt-get install tesseract-ocr): {e}")
    })?;
    anyhow::ensure!(
        out.status.success(),
        "tesseract failed: {}",
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

pub fn run(
    engine: &Engine,
    dir: &Path,
    compare: Option<Peer>,
    limit: Option<usize>,
    peer_threads: Option<usize>,
) -> anyhow::Result<()> {
    let img_dir = dir.join("img");
    let mut images: Vec<PathBuf> = std::fs::read_dir(&img_dir)
        .map_err(|e| anyhow::anyhow!("{}: {e}", img_dir.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "jpg" || e == "png"))
        .collect();
    images.sort();
    if let Some(n) = limit {
        images.truncate(n);
    }
    // The dev receipts are Malaysian: day-first dates. No clock: the labels are history.
    let options = ParseOptions {
        date_order: DateOrder::DayFirst,
        default_currency: None,
        today: None,
    };
    let mut ours = Score::default();
    let mut peer = Score::default();
    let mut errors = Vec::new();
    for (n, image) in images.iter().enumerate() {
        let id = image
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("?")
            .to_owned();
        let label = match read_label(&dir.join("key").join(format!("{id}.json"))) {
            Ok(l) => l,
            Err(e) => {
                errors.push(format!("{id}: label: {e}"));
                continue;
            }
        };
        let start = Instant::now();
        match read_receipt(engine, image, &options) {
            Ok((_, r)) => {
                ours.latencies.push(start.elapsed());
                ours.add(&id, &label, &r);
            }
            Err(e) => errors.push(format!("{id}: {e:#}")),
        }
        if let Some(Peer::Tesseract) = compare {
            let start = Instant::now();
            match tesseract(image, peer_threads) {
                Ok(text) => {
                    peer.latencies.push(start.elapsed());
                    let r = receipt::parse(&receipt::lines_from_text(&text), &options);
                    peer.add(&id, &label, &r);
                }
                Err(e) => errors.push(format!("{id}: tesseract: {e:#}")),
            }
        }
        eprint!("\r{}/{} receipts", n + 1, images.len());
    }
    eprintln!();

    println!("Failures (tallydesk-ocr):");
    for f in &ours.failures {
        println!("  {f}");
    }
    if compare.is_some() {
        println!("Failures (tesseract):");
        for f in &peer.failures {
            println!("  {f}");
        }
    }
    for e in &errors {
        println!("error: {e}");
    }
    println!();
    println!("{} receipts in {}", images.len(), dir.display());
    let row = |name: &str, s: &Score| {
        println!(
            "{name:<14} total {}  date {}  merchant {}",
            pct(s.total),
            pct(s.date),
            pct(s.merchant)
        );
    };
    row("tallydesk-ocr", &ours);
    if compare.is_some() {
        row("tesseract", &peer);
    }
    println!(
        "latency tallydesk-ocr: {}",
        latency_summary(&ours.latencies)
    );
    if compare.is_some() {
        println!(
            "latency tesseract:     {} (threads: {})",
            latency_summary(&peer.latencies),
            peer_threads.map_or("its default".to_owned(), |n| n.to_string())
        );
        println!(
            "median latency ratio (tallydesk-ocr / tesseract): {:.2}",
            median_ms(&ours.latencies) / median_ms(&peer.latencies)
        );
    }
    if let Some(kb) = peak_memory_kb() {
        println!(
            "peak memory tallydesk-ocr (VmHWM): {:.0} MB",
            kb as f64 / 1024.
        );
    }
    Ok(())
}
