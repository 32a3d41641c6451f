//! The command line's arguments, and `scan`: the fields of receipts as text, or one JSON
//! object per file.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand, ValueEnum};
use serde::Serialize;

use tallydesk_ocr::receipt::{self, DateOrder, ParseOptions, Receipt};
use tallydesk_ocr::{Engine, EngineOptions, TextLine, load_image, locale, models};

use crate::eval;

#[derive(Debug, Parser)]
#[command(
    name = "tallydesk-ocr",
    version,
    about = "Reads receipts on this machine: no cloud, no LLM"
)]
pub struct Cli {
    /// Folder holding the OCR models (see scripts/fetch-models).
    #[arg(long, global = true, env = "TALLYDESK_MODELS_DIR", value_name = "DIR")]
    pub models: Option<PathBuf>,
    /// Tuning: the longer side, in pixels, of the image given to the text detector.
    #[arg(long, global = true, value_name = "PIXELS")]
    pub detection_max_side: Option<u32>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Read receipts (image files, or folders of them) and print their fields.
    Scan {
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
        /// One JSON object per line per file.
        #[arg(long)]
        json: bool,
        /// Also print the text lines read.
        #[arg(long)]
        lines: bool,
        /// Currency when a receipt shows none (ISO 4217); default from the locale.
        #[arg(long, value_name = "CODE")]
        currency: Option<String>,
        /// Read ambiguous dates like 03/04/2018 month first (default from the locale).
        #[arg(long)]
        month_first: bool,
    },
    /// Measure accuracy, latency and memory on a folder laid out as img/NNN.jpg + key/NNN.json.
    Eval {
        dir: PathBuf,
        /// Also run a peer OCR engine on the same images, in the same run.
        #[arg(long, value_enum)]
        compare: Option<Peer>,
        /// Only the first N receipts.
        #[arg(long, value_name = "N")]
        limit: Option<usize>,
        /// Threads for the peer (tesseract's OMP_THREAD_LIMIT); default: its own default.
        #[arg(long, value_name = "N")]
        peer_threads: Option<usize>,
    },
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Peer {
    /// The tesseract command-line program (Debian package tesseract-ocr).
    Tesseract,
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    let models = cli.models.clone().unwrap_or_else(models::default_dir);
    let mut engine_options = EngineOptions::default();
    if let Some(side) = cli.detection_max_side {
        engine_options.detection_max_side = side;
    }
    match cli.command {
        Command::Scan {
            files,
            json,
            lines,
            currency,
            month_first,
        } => {
            let engine = Engine::load_with(&models, engine_options)?;
            let mut options = locale::parse_options();
            if currency.is_some() {
                options.default_currency = currency.map(|c| c.to_uppercase());
            }
            if month_first {
                options.date_order = DateOrder::MonthFirst;
            }
            scan(&engine, &expand(&files), json, lines, &options)
        }
        Command::Eval {
            dir,
            compare,
            limit,
            peer_threads,
        } => {
            let engine = Engine::load_with(&models, engine_options)?;
            eval::run(&engine, &dir, compare, limit, peer_threads)
        }
    }
}

/// Files as given, with folders replaced by the images in them (sorted).
fn expand(paths: &[PathBuf]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(p)
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.path())
                .filter(|f| f.is_file() && is_image_name(f))
                .collect();
            found.sort();
            out.extend(found);
        } else {
            out.push(p.clone());
        }
    }
    out
}

fn is_image_name(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .map(|e| e.to_ascii_lowercase())
        .is_some_and(|e| {
            matches!(
                e.as_str(),
                "jpg" | "jpeg" | "png" | "webp" | "tif" | "tiff" | "bmp" | "gif"
            )
        })
}

/// Reads one receipt file: the image, its text lines and the fields.
pub fn read_receipt(
    engine: &Engine,
    path: &Path,
    options: &ParseOptions,
) -> anyhow::Result<(Vec<TextLine>, Receipt)> {
    let image = load_image(path)?;
    let text = engine.read(&image)?;
    let lines: Vec<receipt::Line> = text.iter().map(receipt::Line::from).collect();
    let parsed = receipt::parse(&lines, options);
    Ok((text, parsed))
}

fn scan(
    engine: &Engine,
    files: &[PathBuf],
    as_json: bool,
    show_lines: bool,
    options: &ParseOptions,
) -> anyhow::Result<()> {
    // Not locked across files: other threads (rten's timing report) may print meanwhile.
    let mut out = std::io::stdout();
    for file in files {
        let result = read_receipt(engine, file, options);
        if as_json {
            let value = match &result {
                Ok((_, r)) => receipt_json(file, Some(r), None),
                Err(err) => receipt_json(file, None, Some(&format!("{err:#}"))),
            };
            writeln!(out, "{}", serde_json::to_string(&value)?)?;
            continue;
        }
        writeln!(out, "{}", file.display())?;
        match result {
            Err(err) => writeln!(out, "  error: {err:#}")?,
            Ok((text, r)) => {
                print_receipt(&mut out, &r)?;
                if show_lines {
                    writeln!(out, "  text:")?;
                    for l in &text {
                        let b = l.upright;
                        writeln!(
                            out,
                            "    {:.2} [{:>5.0} {:>5.0} {:>5.0} {:>5.0}]  {}",
                            l.confidence, b.left, b.top, b.right, b.bottom, l.text
                        )?;
                    }
                }
            }
        }
        writeln!(out)?;
    }
    Ok(())
}

fn print_receipt(out: &mut impl Write, r: &Receipt) -> std::io::Result<()> {
    fn show<T: std::fmt::Display>(
        out: &mut impl Write,
        name: &str,
        f: &Option<receipt::Field<T>>,
    ) -> std::io::Result<()> {
        match f {
            Some(f) => writeln!(
                out,
                "  {name:<9} {}  ({:.0}%)",
                f.value,
                f.confidence * 100.
            ),
            None => writeln!(out, "  {name:<9} -"),
        }
    }
    show(out, "merchant", &r.merchant)?;
    show(out, "date", &r.date)?;
    show(out, "total", &r.total)?;
    show(out, "subtotal", &r.subtotal)?;
    show(out, "tax", &r.tax)?;
    show(out, "currency", &r.currency)?;
    if !r.items.is_empty() {
        writeln!(out, "  items:")?;
        for item in &r.items {
            let qty = item.quantity.map(|q| format!("{q} × ")).unwrap_or_default();
            writeln!(out, "    {qty}{:<40} {}", item.description, item.amount)?;
        }
    }
    for w in &r.warnings {
        writeln!(out, "  warning: {w}")?;
    }
    Ok(())
}

/// The JSON line `scan --json` prints for one file (fields in this order).
#[derive(Debug, Serialize)]
pub struct ScanJson {
    pub file: String,
    pub merchant: Option<String>,
    /// YYYY-MM-DD.
    pub date: Option<String>,
    /// A decimal string, e.g. "9.00".
    pub total: Option<String>,
    pub currency: Option<String>,
    pub subtotal: Option<String>,
    pub tax: Option<String>,
    pub items: Option<Vec<ItemJson>>,
    pub confidence: Option<BTreeMap<&'static str, f64>>,
    pub warnings: Vec<String>,
    pub error: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct ItemJson {
    pub description: String,
    pub quantity: Option<String>,
    pub amount: String,
}

pub fn receipt_json(file: &Path, r: Option<&Receipt>, error: Option<&str>) -> ScanJson {
    let mut out = ScanJson {
        file: file.display().to_string(),
        merchant: None,
        date: None,
        total: None,
        currency: None,
        subtotal: None,
        tax: None,
        items: None,
        confidence: None,
        warnings: Vec::new(),
        error: error.map(str::to_owned),
    };
    let Some(r) = r else {
        return out;
    };
    let round = |c: f32| (f64::from(c) * 100.).round() / 100.;
    let mut confidence = BTreeMap::new();
    let mut note = |name: &'static str, c: Option<f32>| {
        if let Some(c) = c {
            confidence.insert(name, round(c));
        }
    };
    note("merchant", r.merchant.as_ref().map(|f| f.confidence));
    note("date", r.date.as_ref().map(|f| f.confidence));
    note("total", r.total.as_ref().map(|f| f.confidence));
    note("currency", r.currency.as_ref().map(|f| f.confidence));
    note("subtotal", r.subtotal.as_ref().map(|f| f.confidence));
    note("tax", r.tax.as_ref().map(|f| f.confidence));
    if !r.items.is_empty() {
        let mean = r.items.iter().map(|i| i.confidence).sum::<f32>() / r.items.len() as f32;
        note("items", Some(mean));
    }
    out.merchant = r.merchant.as_ref().map(|f| f.value.clone());
    out.date = r
        .date
        .as_ref()
        .map(|f| f.value.format("%Y-%m-%d").to_string());
    out.total = r.total.as_ref().map(|f| f.value.to_string());
    out.currency = r.currency.as_ref().map(|f| f.value.clone());
    out.subtotal = r.subtotal.as_ref().map(|f| f.value.to_string());
    out.tax = r.tax.as_ref().map(|f| f.value.to_string());
    out.items = Some(
        r.items
            .iter()
            .map(|i| ItemJson {
                description: i.description.clone(),
                quantity: i.quantity.map(|q| q.to_string()),
                amount: i.amount.to_string(),
            })
            .collect(),
    );
    out.confidence = Some(confidence);
    out.warnings = r.warnings.iter().map(ToString::to_string).collect();
    out
}
