//! The OCR engine: loads the models and turns an image into text lines in reading order.

use std::path::{Path, PathBuf};

use image::RgbImage;
use image::imageops::FilterType;
use rten::{Model, ModelOptions};
use serde::Serialize;

use crate::detect::{self, DetectParams, DetectedBox};
use crate::geometry::{OrientedBox, Point, Quad, Rect};
use crate::recognize::{self, Alphabet, Recognized};

/// File names of the models inside the models directory (see `scripts/fetch-models`).
pub const DETECTION_MODEL: &str = "PP-OCRv6_det_small.onnx";
pub const RECOGNITION_MODEL: &str = "PP-OCRv6_rec_small.onnx";

/// Why the engine could not start or read an image.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("model file {} is missing: run scripts/fetch-models", .0.display())]
    ModelMissing(PathBuf),
    #[error("could not load model {}: {message}", path.display())]
    ModelInvalid { path: PathBuf, message: String },
    #[error("OCR failed: {0}")]
    Inference(String),
}

impl From<anyhow::Error> for EngineError {
    fn from(err: anyhow::Error) -> EngineError {
        EngineError::Inference(format!("{err:#}"))
    }
}

/// Tuning knobs; the defaults are what `eval` measures.
#[derive(Clone, Debug)]
pub struct EngineOptions {
    /// The longer side of the image given to the detector, in pixels.
    pub detection_max_side: u32,
    /// The shorter side of the image given to the detector is scaled up to at least this.
    pub detection_min_side: u32,
    /// Below this mean character confidence, the page is also read upside down and the better
    /// reading kept.
    pub flip_below_confidence: f32,
    /// Lines whose mean character confidence is below this are dropped.
    pub min_line_confidence: f32,
    pub detect: DetectParams,
}

impl Default for EngineOptions {
    fn default() -> EngineOptions {
        EngineOptions {
            detection_max_side: 960,
            detection_min_side: 640,
            flip_below_confidence: 0.85,
            min_line_confidence: 0.5,
            detect: DetectParams::default(),
        }
    }
}

/// A word inside a line, with its box in image pixels (estimated from the recogniser's
/// character positions).
#[derive(Clone, Debug, Serialize)]
pub struct Word {
    pub text: String,
    pub quad: Quad,
}

/// A line of text as read.
#[derive(Clone, Debug, Serialize)]
pub struct TextLine {
    pub text: String,
    /// Mean probability of the line's characters, 0..1.
    pub confidence: f32,
    /// Where the line is in the image, in image pixels (rotated with the text).
    pub quad: Quad,
    /// The line's box on the upright page: the page rotated and deskewed so that text runs left
    /// to right, in pixels. Rows and columns are found from these.
    pub upright: Rect,
    pub words: Vec<Word>,
}

/// Detects and recognises text with the PP-OCR models on rten.
pub struct Engine {
    detector: Model,
    recognizer: Model,
    alphabet: Alphabet,
    options: EngineOptions,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// Loads the models from `models_dir` (see `scripts/fetch-models`).
    pub fn load(models_dir: &Path) -> Result<Engine, EngineError> {
        Engine::load_with(models_dir, EngineOptions::default())
    }

    pub fn load_with(models_dir: &Path, options: EngineOptions) -> Result<Engine, EngineError> {
        let detector = load_model(&models_dir.join(DETECTION_MODEL))?;
        let rec_path = models_dir.join(RECOGNITION_MODEL);
        let recognizer = load_model(&rec_path)?;
        let list =
            recognizer
                .metadata()
                .get("character")
                .ok_or_else(|| EngineError::ModelInvalid {
                    path: rec_path.clone(),
                    message: "no character list in its metadata".into(),
                })?;
        let alphabet = Alphabet::from_metadata(list);
        Ok(Engine {
            detector,
            recognizer,
            alphabet,
            options,
        })
    }

    pub fn options(&self) -> &EngineOptions {
        &self.options
    }

    /// Reads the text in `image`: lines in reading order, on pages in any of the four
    /// orientations and moderately skewed.
    #[tracing::instrument(skip_all, err)]
    pub fn read(&self, image: &RgbImage) -> Result<Vec<TextLine>, EngineError> {
        let (det_image, scale) = detection_input(image, &self.options);
        let t0 = std::time::Instant::now();
        let found = detect::detect(&self.detector, &det_image, &self.options.detect)?;
        tracing::debug!(
            width = det_image.width(),
            height = det_image.height(),
            boxes = found.len(),
            elapsed = ?t0.elapsed(),
            "detected text"
        );
        drop(det_image);
        if found.is_empty() {
            return Ok(Vec::new());
        }
        // Back to the full image's pixels: recognition samples the full-resolution image.
        let found: Vec<DetectedBox> = found
            .into_iter()
            .map(|b| DetectedBox {
                center: Point::new(b.center.x / scale, b.center.y / scale),
                length: b.length / scale,
                thickness: b.thickness / scale,
                ..b
            })
            .collect();

        let dir = text_direction(&found);
        let boxes: Vec<OrientedBox> = found.iter().map(|b| orient(b, dir)).collect();
        let t0 = std::time::Instant::now();
        let mut reading = recognize::recognize(&self.recognizer, &self.alphabet, image, &boxes)?;
        tracing::debug!(
            lines = boxes.len(),
            confidence = mean_confidence(&reading),
            elapsed = ?t0.elapsed(),
            "recognised text"
        );
        let mut boxes = boxes;
        if mean_confidence(&reading) < self.options.flip_below_confidence {
            let flipped: Vec<OrientedBox> = boxes.iter().map(OrientedBox::flipped).collect();
            let other = recognize::recognize(&self.recognizer, &self.alphabet, image, &flipped)?;
            if mean_confidence(&other) > mean_confidence(&reading) {
                reading = other;
                boxes = flipped;
            }
        }
        Ok(assemble(&boxes, reading, self.options.min_line_confidence))
    }
}

fn load_model(path: &Path) -> Result<Model, EngineError> {
    if !path.is_file() {
        return Err(EngineError::ModelMissing(path.to_owned()));
    }
    // Prepacked weights skip re-laying out each convolution's weights on every run: 3–7% less
    // time for a few MB more memory.
    ModelOptions::with_all_ops()
        .prepack_weights(true)
        .load_file(path)
        .map_err(|err| EngineError::ModelInvalid {
            path: path.to_owned(),
            message: err.to_string(),
        })
}

/// The image scaled for detection (each side padded to a multiple of 32, with white) and the
/// scale factor from image to detection pixels.
fn detection_input(image: &RgbImage, options: &EngineOptions) -> (RgbImage, f32) {
    let (w, h) = (image.width() as f32, image.height() as f32);
    let mut scale = 1f32;
    if w.min(h) * scale < options.detection_min_side as f32 {
        scale = options.detection_min_side as f32 / w.min(h);
    }
    if w.max(h) * scale > options.detection_max_side as f32 {
        scale = options.detection_max_side as f32 / w.max(h);
    }
    let sw = ((w * scale).round() as u32).max(1);
    let sh = ((h * scale).round() as u32).max(1);
    let scaled = if (sw, sh) == (image.width(), image.height()) {
        image.clone()
    } else if scale < 1. {
        image::imageops::thumbnail(image, sw, sh)
    } else {
        image::imageops::resize(image, sw, sh, FilterType::Triangle)
    };
    let pw = sw.div_ceil(32) * 32;
    let ph = sh.div_ceil(32) * 32;
    let mut padded = RgbImage::from_pixel(pw, ph, image::Rgb([255, 255, 255]));
    image::imageops::replace(&mut padded, &scaled, 0, 0);
    // Exact per-axis factors differ by rounding only; use the horizontal one.
    (padded, sw as f32 / w)
}

/// The dominant direction of text lines as a unit vector with a non-negative x (or pointing
/// down when vertical). Long thin boxes vote with their length.
fn text_direction(boxes: &[DetectedBox]) -> Point {
    const BINS: usize = 180;
    let mut hist = [0f32; BINS];
    let mut any = false;
    for b in boxes {
        if b.length < 2. * b.thickness {
            continue;
        }
        any = true;
        let deg = angle_deg(b.long_axis);
        hist[(deg.round() as usize) % BINS] += b.length;
    }
    if !any {
        return Point::new(1., 0.);
    }
    // Smooth over ±2° (circularly: 0° and 179° are neighbours) and take the peak.
    let smoothed: Vec<f32> = (0..BINS)
        .map(|i| (0..5).map(|k| hist[(i + BINS + k - 2) % BINS]).sum())
        .collect();
    let peak = (0..BINS)
        .max_by(|&a, &b| smoothed[a].total_cmp(&smoothed[b]))
        .unwrap_or(0) as f32;
    // Refine: length-weighted mean of the angles within 4° of the peak.
    let (mut sum, mut weight) = (0f32, 0f32);
    for b in boxes {
        if b.length < 2. * b.thickness {
            continue;
        }
        let mut delta = angle_deg(b.long_axis) - peak;
        if delta > 90. {
            delta -= 180.;
        } else if delta < -90. {
            delta += 180.;
        }
        if delta.abs() <= 4. {
            sum += delta * b.length;
            weight += b.length;
        }
    }
    let deg = peak + if weight > 0. { sum / weight } else { 0. };
    let rad = deg.to_radians();
    let (s, c) = rad.sin_cos();
    // deg in [0, 180): 0..45 and 135..180 are near-horizontal; choose the rightward sense then.
    if c.abs() >= s.abs() {
        if c >= 0. {
            Point::new(c, s)
        } else {
            Point::new(-c, -s)
        }
    } else {
        // Near-vertical: text reading downwards (page turned 90° clockwise).
        if s >= 0. {
            Point::new(c, s)
        } else {
            Point::new(-c, -s)
        }
    }
}

/// Angle of an axis in degrees, in [0, 180).
fn angle_deg(axis: Point) -> f32 {
    let mut deg = axis.y.atan2(axis.x).to_degrees();
    if deg < 0. {
        deg += 180.;
    }
    if deg >= 180. {
        deg -= 180.;
    }
    deg
}

/// A detected box as an oriented box reading along `dir`: its own angle when it is a clear line
/// near the page's direction, else the page's direction.
fn orient(b: &DetectedBox, dir: Point) -> OrientedBox {
    let axis = if b.length >= 1.5 * b.thickness {
        let dot = b.long_axis.x * dir.x + b.long_axis.y * dir.y;
        if dot.abs() >= 15f32.to_radians().cos() {
            if dot >= 0. {
                b.long_axis
            } else {
                Point::new(-b.long_axis.x, -b.long_axis.y)
            }
        } else {
            dir
        }
    } else {
        dir
    };
    let down = Point::new(-axis.y, axis.x);
    // The rectangle's corners, projected on the new axes.
    let along = Point::new(b.long_axis.x * b.length / 2., b.long_axis.y * b.length / 2.);
    let across = Point::new(
        -b.long_axis.y * b.thickness / 2.,
        b.long_axis.x * b.thickness / 2.,
    );
    let (mut u0, mut u1, mut v0, mut v1) = (f32::MAX, f32::MIN, f32::MAX, f32::MIN);
    for (sa, sb) in [(1., 1.), (1., -1.), (-1., 1.), (-1., -1.)] {
        let p = Point::new(
            b.center.x + sa * along.x + sb * across.x,
            b.center.y + sa * along.y + sb * across.y,
        );
        let u = p.x * axis.x + p.y * axis.y;
        let v = p.x * down.x + p.y * down.y;
        u0 = u0.min(u);
        u1 = u1.max(u);
        v0 = v0.min(v);
        v1 = v1.max(v);
    }
    OrientedBox {
        origin: Point::new(u0 * axis.x + v0 * down.x, u0 * axis.y + v0 * down.y),
        dir: axis,
        down,
        width: u1 - u0,
        height: v1 - v0,
    }
}

/// Mean character confidence over all lines, weighted by line length.
fn mean_confidence(reading: &[Recognized]) -> f32 {
    let (mut sum, mut n) = (0f32, 0usize);
    for r in reading {
        let chars = r.text.chars().filter(|c| !c.is_whitespace()).count();
        sum += r.confidence * chars as f32;
        n += chars;
    }
    if n == 0 { 0. } else { sum / n as f32 }
}

/// Builds the text lines, in reading order, from the boxes and their readings.
fn assemble(boxes: &[OrientedBox], reading: Vec<Recognized>, min_confidence: f32) -> Vec<TextLine> {
    // The upright frame: coordinates along the page's text direction and down the page.
    let dir = page_direction(boxes);
    let down = Point::new(-dir.y, dir.x);
    let mut lines = Vec::new();
    for (b, r) in boxes.iter().zip(reading) {
        let text = r.text.trim();
        if text.is_empty() || r.confidence < min_confidence {
            continue;
        }
        let c = b.center();
        let (u, v) = (c.x * dir.x + c.y * dir.y, c.x * down.x + c.y * down.y);
        let upright = Rect::new(
            u - b.width / 2.,
            v - b.height / 2.,
            u + b.width / 2.,
            v + b.height / 2.,
        );
        let words = words_of(b, &r);
        lines.push(TextLine {
            text: text.to_owned(),
            confidence: r.confidence,
            quad: b.quad(),
            upright,
            words,
        });
    }
    // Shift the upright frame so the page starts at (0, 0).
    let (min_u, min_v) = lines.iter().fold((f32::MAX, f32::MAX), |(mu, mv), l| {
        (mu.min(l.upright.left), mv.min(l.upright.top))
    });
    for l in &mut lines {
        l.upright = Rect::new(
            l.upright.left - min_u,
            l.upright.top - min_v,
            l.upright.right - min_u,
            l.upright.bottom - min_v,
        );
    }
    reading_order(&mut lines);
    lines
}

/// Length-weighted mean direction of the boxes.
fn page_direction(boxes: &[OrientedBox]) -> Point {
    let (mut x, mut y) = (0f32, 0f32);
    for b in boxes {
        x += b.dir.x * b.width;
        y += b.dir.y * b.width;
    }
    let n = (x * x + y * y).sqrt();
    if n > 0. {
        Point::new(x / n, y / n)
    } else {
        Point::new(1., 0.)
    }
}

/// Sorts lines top to bottom by rows, and left to right within a row.
pub fn reading_order(lines: &mut [TextLine]) {
    lines.sort_by(|a, b| a.upright.center_y().total_cmp(&b.upright.center_y()));
    let rows = crate::layout::rows(lines.iter().map(|l| l.upright));
    let mut keyed: Vec<(usize, f32, TextLine)> = Vec::with_capacity(lines.len());
    for (i, l) in lines.iter().enumerate() {
        keyed.push((rows[i], l.upright.left, l.clone()));
    }
    keyed.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)));
    for (slot, (_, _, l)) in lines.iter_mut().zip(keyed) {
        *slot = l;
    }
}

/// Splits a line into words at spaces, placing each from its characters' positions.
fn words_of(b: &OrientedBox, r: &Recognized) -> Vec<Word> {
    let mut words = Vec::new();
    let chars: Vec<char> = r.text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        if chars[i].is_whitespace() {
            i += 1;
            continue;
        }
        let start = i;
        while i < chars.len() && !chars[i].is_whitespace() {
            i += 1;
        }
        let (p0, p1) = (r.char_positions[start], r.char_positions[i - 1]);
        let pad = 2. * r.column_width;
        let span = b.span((p0 - pad) * b.width, (p1 + pad) * b.width);
        words.push(Word {
            text: chars[start..i].iter().collect(),
            quad: span.quad(),
        });
    }
    words
}
