//! Receipts dropped on the app: files (and folders) in, one draft expense per readable image
//! out, with progress per file. Images are read on the device by `tallydesk-ocr`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tallydesk_ocr::receipt::{self, Field, ParseOptions};
use tallydesk_ocr::{Engine, ImageError, TextLine};
use tokio::sync::{Mutex, OnceCell};

use crate::Desk;
use crate::error::{DeskError, DeskResult, ErrorCode};
use crate::expenses::{
    Expense, ExpenseInput, ExpenseItem, FieldSource, ReadLine, Reading, ReceiptImage,
    ScannedReceipt, UNCERTAIN_BELOW, currency_or_usd,
};
use crate::store::Store;

/// Where receipt images live: beside the database.
pub fn images_dir(store: &Store) -> PathBuf {
    store
        .path()
        .parent()
        .unwrap_or_else(|| Path::new("."))
        .join("receipts")
}

/// The file of an image in `dir`, or `None` when `sha256` is not a SHA-256 in lower-case hex
/// (so a name from the webview cannot reach outside the folder).
pub fn image_path(dir: &Path, sha256: &str) -> Option<PathBuf> {
    let valid = sha256.len() == 64
        && sha256
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    valid.then(|| dir.join(&sha256[..2]).join(sha256))
}

/// Stores `bytes` under their hash: written to a temporary file, flushed and renamed, so a
/// reader never sees half an image. Storing the same bytes twice keeps one file.
pub fn store_image(dir: &Path, sha256: &str, bytes: &[u8]) -> DeskResult<PathBuf> {
    let failed = |e: std::io::Error| {
        DeskError::new(
            ErrorCode::Internal,
            format!("cannot store the receipt image in {}: {e}", dir.display()),
        )
    };
    let path = image_path(dir, sha256)
        .ok_or_else(|| DeskError::new(ErrorCode::Internal, "bad image hash"))?;
    if path.is_file() {
        return Ok(path);
    }
    let folder = path.parent().unwrap_or(dir);
    std::fs::create_dir_all(folder).map_err(failed)?;
    let mut tmp = tempfile_in(folder).map_err(failed)?;
    tmp.1.write_all(bytes).map_err(failed)?;
    tmp.1.sync_all().map_err(failed)?;
    std::fs::rename(&tmp.0, &path).map_err(failed)?;
    Ok(path)
}

fn tempfile_in(dir: &Path) -> std::io::Result<(PathBuf, std::fs::File)> {
    let path = dir.join(format!(".incoming-{}", uuid::Uuid::now_v7()));
    let file = std::fs::File::create_new(&path)?;
    Ok((path, file))
}

/// The SHA-256 of `bytes`, in lower-case hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Extensions looked for inside dropped folders. Files dropped one by one are all tried, so
/// a wrong one gets its own error.
const RECEIPT_EXTENSIONS: [&str; 10] = [
    "jpg", "jpeg", "png", "webp", "tif", "tiff", "bmp", "gif", "pdf", "heic",
];

/// How deep dropped folders are searched.
const MAX_DEPTH: usize = 8;

/// The files to read for what was dropped: files as given, folders searched (receipt-like
/// files only, hidden ones skipped, sorted by name).
pub fn expand(paths: &[PathBuf]) -> Vec<PathBuf> {
    fn walk(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        let mut found: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                !p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with('.'))
            })
            .collect();
        found.sort();
        for p in found {
            if p.is_dir() {
                if depth < MAX_DEPTH {
                    walk(&p, depth + 1, out);
                }
            } else if p
                .extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| RECEIPT_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
            {
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            walk(p, 0, &mut out);
        } else {
            out.push(p.clone());
        }
    }
    out
}

/// A file in a scan, as listed when the scan starts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, specta::Type)]
pub struct ScanFile {
    pub name: String,
    pub path: String,
}

/// The steps of reading one receipt.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, specta::Type)]
#[serde(rename_all = "snake_case")]
pub enum ScanStage {
    /// Waiting for the files before it.
    Queued,
    /// Loading the OCR models (first receipt only).
    LoadingModels,
    OpeningImage,
    ReadingText,
    FindingFields,
    Saving,
}

/// Progress of a scan, sent as it happens. `index` is the file's place in `Started::files`.
#[derive(Clone, Debug, PartialEq, Serialize, specta::Type)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ScanEvent {
    Started {
        files: Vec<ScanFile>,
    },
    Progress {
        index: u32,
        stage: ScanStage,
        /// 0..1 over the whole file.
        fraction: f32,
    },
    Read {
        index: u32,
        expense: Box<Expense>,
    },
    Failed {
        index: u32,
        error: DeskError,
    },
    Finished {
        read: u32,
        failed: u32,
    },
}

/// Reads receipts with the OCR models, one file at a time (the models use every core).
#[derive(Debug)]
pub struct Scanner {
    models_dirs: Vec<PathBuf>,
    engine: OnceCell<Arc<Engine>>,
    /// Held while a file is read, so two drops don't compete for the cores.
    busy: Mutex<()>,
    options: ParseOptions,
}

impl Scanner {
    /// A scanner taking the models from the first of `models_dirs` that holds them; they are
    /// loaded on the first receipt.
    pub fn new(models_dirs: Vec<PathBuf>, options: ParseOptions) -> Scanner {
        Scanner {
            models_dirs,
            engine: OnceCell::new(),
            busy: Mutex::new(()),
            options,
        }
    }

    async fn engine(&self) -> DeskResult<Arc<Engine>> {
        self.engine
            .get_or_try_init(|| async {
                let dirs = self.models_dirs.clone();
                let dir = dirs
                    .iter()
                    .find(|d| d.join(tallydesk_ocr::engine::RECOGNITION_MODEL).is_file())
                    .or(dirs.first())
                    .cloned()
                    .ok_or_else(|| no_models(&dirs))?;
                tokio::task::spawn_blocking(move || Engine::load(&dir))
                    .await
                    .map_err(|e| DeskError::new(ErrorCode::Internal, e.to_string()))?
                    .map(Arc::new)
                    .map_err(|e| match e {
                        tallydesk_ocr::EngineError::ModelMissing(_) => no_models(&dirs),
                        other => DeskError::new(ErrorCode::OcrUnavailable, other.to_string()),
                    })
            })
            .await
            .cloned()
    }

    /// Reads every file in `paths` (folders expanded) into a draft expense of the desk's
    /// user, reporting each step to `progress`. A file that fails gets its error; the others
    /// go on.
    pub async fn scan(&self, desk: &Desk, paths: &[PathBuf], progress: impl Fn(ScanEvent)) {
        let files = expand(paths);
        progress(ScanEvent::Started {
            files: files
                .iter()
                .map(|p| ScanFile {
                    name: display_name(p),
                    path: p.display().to_string(),
                })
                .collect(),
        });
        let (mut read, mut failed) = (0, 0);
        for (index, path) in (0u32..).zip(&files) {
            match self
                .scan_one(desk, path, |stage, fraction| {
                    progress(ScanEvent::Progress {
                        index,
                        stage,
                        fraction,
                    })
                })
                .await
            {
                Ok(expense) => {
                    read += 1;
                    progress(ScanEvent::Read {
                        index,
                        expense: Box::new(expense),
                    });
                }
                Err(error) => {
                    failed += 1;
                    tracing::info!(file = %path.display(), code = ?error.code, "receipt not read");
                    progress(ScanEvent::Failed { index, error });
                }
            }
        }
        progress(ScanEvent::Finished { read, failed });
    }

    async fn scan_one(
        &self,
        desk: &Desk,
        path: &Path,
        step: impl Fn(ScanStage, f32),
    ) -> DeskResult<Expense> {
        let _turn = self.busy.lock().await;
        if self.engine.get().is_none() {
            step(ScanStage::LoadingModels, 0.0);
        }
        let engine = self.engine().await?;
        step(ScanStage::OpeningImage, 0.05);
        let bytes = tokio::fs::read(path).await.map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => image_error(ImageError::NotFound),
            _ => image_error(ImageError::Io(e)),
        })?;
        let (image, bytes) = tokio::task::spawn_blocking(move || {
            tallydesk_ocr::image_input::decode_image(&bytes).map(|image| (image, bytes))
        })
        .await
        .map_err(|e| DeskError::new(ErrorCode::Internal, e.to_string()))?
        .map_err(image_error)?;
        step(ScanStage::ReadingText, 0.15);
        let (width, height) = image.dimensions();
        let lines = tokio::task::spawn_blocking(move || engine.read(&image))
            .await
            .map_err(|e| DeskError::new(ErrorCode::Internal, e.to_string()))?
            .map_err(|e| DeskError::new(ErrorCode::OcrUnavailable, e.to_string()))?;
        step(ScanStage::FindingFields, 0.9);
        let mut options = self.options.clone();
        options.today.get_or_insert(desk.now().date_naive());
        let scanned = scanned_receipt(
            &lines,
            &options,
            ReceiptImage {
                sha256: sha256_hex(&bytes),
                media_type: media_type(&bytes).to_owned(),
                width,
                height,
            },
            bytes,
            display_name(path),
        );
        step(ScanStage::Saving, 0.95);
        desk.create_draft(&scanned).await
    }
}

fn no_models(dirs: &[PathBuf]) -> DeskError {
    DeskError::new(
        ErrorCode::OcrUnavailable,
        format!(
            "the receipt reader's models are missing (looked in {}); run scripts/fetch-models or reinstall Tallydesk",
            dirs.iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    )
}

fn image_error(e: ImageError) -> DeskError {
    DeskError {
        code: ErrorCode::UnreadableFile,
        message: e.to_string(),
        field: Some(e.code().to_owned()),
    }
}

fn display_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

/// The media type of an image from its first bytes.
pub fn media_type(bytes: &[u8]) -> &'static str {
    match bytes {
        [0xff, 0xd8, ..] => "image/jpeg",
        [0x89, b'P', b'N', b'G', ..] => "image/png",
        [
            b'R',
            b'I',
            b'F',
            b'F',
            _,
            _,
            _,
            _,
            b'W',
            b'E',
            b'B',
            b'P',
            ..,
        ] => "image/webp",
        [b'G', b'I', b'F', ..] => "image/gif",
        [b'B', b'M', ..] => "image/bmp",
        [b'I', b'I', 42, 0, ..] | [b'M', b'M', 0, 42, ..] => "image/tiff",
        _ => "application/octet-stream",
    }
}

/// Turns what the engine read into a draft's fields and the reading kept for review.
fn scanned_receipt(
    lines: &[TextLine],
    options: &ParseOptions,
    image: ReceiptImage,
    image_bytes: Vec<u8>,
    source_name: String,
) -> ScannedReceipt {
    let parsed = receipt::parse(
        &lines.iter().map(receipt::Line::from).collect::<Vec<_>>(),
        options,
    );
    // Read from the receipt, else the locale's.
    let currency = currency_or_usd(
        parsed
            .currency
            .as_ref()
            .map(|c| c.value.as_str())
            .or(options.default_currency.as_deref()),
    );
    // Amounts with a finer fraction than the currency has are left for the person to type.
    let minor = |a: &receipt::Amount| {
        a.minor_units(currency.exponent())
            .map(|m| currency.format_amount(m))
    };
    let amount = |f: &Option<Field<receipt::Amount>>| f.as_ref().and_then(|f| minor(&f.value));
    let mut fields = Vec::new();
    let mut source = |name: String, confidence: f32, from: &[usize]| {
        fields.push(FieldSource {
            field: name,
            confidence,
            uncertain: confidence < UNCERTAIN_BELOW,
            lines: from.iter().map(|i| *i as u32).collect(),
        })
    };
    macro_rules! note {
        ($name:literal, $field:expr) => {
            if let Some(f) = &$field {
                source($name.to_owned(), f.confidence, &f.lines);
            }
        };
    }
    note!("merchant", parsed.merchant);
    note!("spent_on", parsed.date);
    note!("total", parsed.total);
    note!("subtotal", parsed.subtotal);
    note!("tax", parsed.tax);
    note!("currency", parsed.currency);
    let mut items = Vec::new();
    for item in &parsed.items {
        let Some(amount) = minor(&item.amount) else {
            continue;
        };
        source(
            format!("items.{}", items.len()),
            item.confidence,
            &item.lines,
        );
        items.push(ExpenseItem {
            description: item.description.clone(),
            quantity: item.quantity.map(|q| q.normalize().to_string()),
            amount,
        });
    }
    let input = ExpenseInput {
        merchant: parsed.merchant.as_ref().map(|m| m.value.clone()),
        spent_on: parsed.date.as_ref().map(|d| d.value.to_string()),
        currency: currency.as_str().to_owned(),
        total: amount(&parsed.total),
        subtotal: amount(&parsed.subtotal),
        tax: amount(&parsed.tax),
        category: "other".to_owned(),
        items,
        note: None,
        version: 1,
    };
    let reading = Reading {
        width: image.width,
        height: image.height,
        lines: lines
            .iter()
            .map(|l| ReadLine {
                text: l.text.clone(),
                confidence: l.confidence,
                quad: l.quad.0.iter().flat_map(|p| [p.x, p.y]).collect(),
            })
            .collect(),
        fields,
    };
    ScannedReceipt {
        image,
        image_bytes,
        source_name,
        input,
        reading,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_names_from_the_webview_stay_inside_the_folder() {
        let dir = Path::new("/data/receipts");
        let sha = "ab".repeat(32);
        assert_eq!(image_path(dir, &sha), Some(dir.join("ab").join(&sha)),);
        for bad in [
            "../etc/passwd",
            "",
            &"AB".repeat(32),
            &"ab".repeat(33),
            &format!("{}/x", "a".repeat(62)),
        ] {
            assert_eq!(image_path(dir, bad), None, "{bad:?}");
        }
    }

    #[test]
    fn folders_are_searched_for_receipts_and_files_are_kept_as_given() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        std::fs::create_dir_all(root.join("march/.thumbs")).unwrap();
        for f in [
            "b.jpg",
            "a.PNG",
            "notes.txt",
            "march/c.jpeg",
            "march/.thumbs/d.jpg",
            ".e.jpg",
        ] {
            std::fs::write(root.join(f), b"x").unwrap();
        }
        let given = root.join("notes.txt");
        let found = expand(&[root.to_owned(), given.clone()]);
        assert_eq!(
            found,
            vec![
                root.join("a.PNG"),
                root.join("b.jpg"),
                root.join("march/c.jpeg"),
                given
            ]
        );
    }

    #[test]
    fn storing_an_image_twice_keeps_one_file() {
        let tmp = tempfile::tempdir().unwrap();
        let sha = sha256_hex(b"receipt");
        let a = store_image(tmp.path(), &sha, b"receipt").unwrap();
        let b = store_image(tmp.path(), &sha, b"receipt").unwrap();
        assert_eq!(a, b);
        assert_eq!(std::fs::read(&a).unwrap(), b"receipt");
        let left: Vec<_> = std::fs::read_dir(a.parent().unwrap()).unwrap().collect();
        assert_eq!(left.len(), 1, "no temporary files left behind");
    }
}
