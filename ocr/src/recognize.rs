//! Text recognition: each detected line is cut out along its own orientation, scaled to the
//! model's height, batched, and the model's per-column character probabilities are decoded
//! greedily (CTC: best label per column, repeats merged, blanks dropped).

use image::RgbImage;
use rten::Model;
use rten_tensor::prelude::*;
use rten_tensor::{NdTensor, NdTensorView};

use crate::geometry::OrientedBox;

/// Input height of the PP-OCR recognition models.
pub const LINE_HEIGHT: usize = 48;
/// Narrowest batch width. PaddleOCR pads every line to 320 pixels; padding short lines less
/// is much faster and reads the same in our measurements.
const MIN_WIDTH: usize = 128;
/// Widest line image; longer lines are squeezed.
const MAX_WIDTH: usize = 2048;
/// Upper bound on pixels in one batch, to bound memory and keep batches of short lines large.
const BATCH_PIXELS: usize = 8 * LINE_HEIGHT * 640;
const MAX_BATCH: usize = 16;

/// One recognised line: its text, the mean probability of its characters, and for each
/// character its centre along the box (0 = start of the box, 1 = end).
#[derive(Clone, Debug, Default)]
pub struct Recognized {
    pub text: String,
    pub confidence: f32,
    pub char_positions: Vec<f32>,
    /// Fraction of the box's length, around each character, that it covers (half a column).
    pub column_width: f32,
}

/// The recognition model's alphabet: label 0 is the CTC blank, labels 1..=n the model's
/// characters, and label n + 1 a space.
#[derive(Clone, Debug)]
pub struct Alphabet {
    chars: Vec<char>,
}

impl Alphabet {
    /// From the newline-separated character list stored in the PP-OCR model's metadata.
    pub fn from_metadata(list: &str) -> Alphabet {
        let mut chars: Vec<char> = list
            .split('\n')
            .map(|s| s.trim_end_matches('\r'))
            .filter_map(|s| s.chars().next())
            .collect();
        chars.push(' ');
        Alphabet { chars }
    }

    /// Number of labels the model must output (characters + blank).
    pub fn labels(&self) -> usize {
        self.chars.len() + 1
    }

    fn char(&self, label: usize) -> Option<char> {
        label
            .checked_sub(1)
            .and_then(|i| self.chars.get(i))
            .copied()
    }
}

/// Recognises the text in each box of `image`. Results are in the order of `boxes`.
pub fn recognize(
    model: &Model,
    alphabet: &Alphabet,
    image: &RgbImage,
    boxes: &[OrientedBox],
) -> anyhow::Result<Vec<Recognized>> {
    let widths: Vec<usize> = boxes.iter().map(line_width).collect();
    let mut order: Vec<usize> = (0..boxes.len()).collect();
    order.sort_by_key(|&i| widths[i]);

    let mut results = vec![Recognized::default(); boxes.len()];
    let mut start = 0;
    while start < order.len() {
        // Lines are sorted by width, so the last one in a batch sets its width.
        let mut end = start + 1;
        while end < order.len()
            && end - start < MAX_BATCH
            && (end - start + 1) * widths[order[end]].max(MIN_WIDTH) * LINE_HEIGHT <= BATCH_PIXELS
        {
            end += 1;
        }
        let batch = &order[start..end];
        let batch_width = widths[order[end - 1]].max(MIN_WIDTH);
        let mut input = NdTensor::<f32, 4>::zeros([batch.len(), 3, LINE_HEIGHT, batch_width]);
        for (slot, &i) in batch.iter().enumerate() {
            sample_line(image, &boxes[i], widths[i], input.slice_mut((slot,)));
        }
        let output = model.run_one(input.view().into(), None)?;
        let probs: NdTensor<f32, 3> = output.try_into()?;
        let [_, steps, labels] = probs.shape();
        anyhow::ensure!(
            labels == alphabet.labels(),
            "recognition model has {labels} labels, its alphabet {}",
            alphabet.labels()
        );
        for (slot, &i) in batch.iter().enumerate() {
            // Columns past the line's own width are padding.
            let used = (steps * widths[i]).div_ceil(batch_width).clamp(1, steps);
            results[i] = decode(probs.slice((slot, ..used)), alphabet);
        }
        start = end;
    }
    Ok(results)
}

/// Width of the line image at the model's height, keeping the box's aspect ratio.
fn line_width(b: &OrientedBox) -> usize {
    let aspect = b.width / b.height.max(1.);
    ((aspect * LINE_HEIGHT as f32).ceil() as usize).clamp(8, MAX_WIDTH)
}

/// Samples the box from the image into `out` (3 × LINE_HEIGHT × batch width, BGR, [-1, 1]),
/// averaging several samples per output pixel when shrinking.
fn sample_line(
    image: &RgbImage,
    b: &OrientedBox,
    width: usize,
    mut out: rten_tensor::NdTensorViewMut<f32, 3>,
) {
    let su = b.width / width as f32;
    let sv = b.height / LINE_HEIGHT as f32;
    let k = su.max(sv).ceil().clamp(1., 4.) as usize;
    let inv = 1. / (k * k) as f32;
    for y in 0..LINE_HEIGHT {
        for x in 0..width {
            let mut acc = [0f32; 3];
            for j in 0..k {
                for i in 0..k {
                    let u = (x as f32 + (i as f32 + 0.5) / k as f32) * su;
                    let v = (y as f32 + (j as f32 + 0.5) / k as f32) * sv;
                    let p = b.at(u, v);
                    let px = bilinear(image, p.x - 0.5, p.y - 0.5);
                    for c in 0..3 {
                        acc[c] += px[c];
                    }
                }
            }
            for c in 0..3 {
                out[[c, y, x]] = acc[2 - c] * inv / 127.5 - 1.;
            }
        }
    }
}

/// Bilinear sample with edge replication.
pub(crate) fn bilinear(image: &RgbImage, x: f32, y: f32) -> [f32; 3] {
    let (w, h) = (image.width() as i64, image.height() as i64);
    let x = x.clamp(0., (w - 1) as f32);
    let y = y.clamp(0., (h - 1) as f32);
    let (x0, y0) = (x.floor() as i64, y.floor() as i64);
    let (x1, y1) = ((x0 + 1).min(w - 1), (y0 + 1).min(h - 1));
    let (fx, fy) = (x - x0 as f32, y - y0 as f32);
    let get = |xx: i64, yy: i64| image.get_pixel(xx as u32, yy as u32).0;
    let (a, b, c, d) = (get(x0, y0), get(x1, y0), get(x0, y1), get(x1, y1));
    let mut out = [0f32; 3];
    for ch in 0..3 {
        let top = f32::from(a[ch]) * (1. - fx) + f32::from(b[ch]) * fx;
        let bottom = f32::from(c[ch]) * (1. - fx) + f32::from(d[ch]) * fx;
        out[ch] = top * (1. - fy) + bottom * fy;
    }
    out
}

/// Greedy CTC decoding of one line's `[steps, labels]` probabilities.
pub fn decode(probs: NdTensorView<f32, 2>, alphabet: &Alphabet) -> Recognized {
    let [steps, _] = probs.shape();
    let mut text = String::new();
    let mut confidences = Vec::new();
    let mut char_positions = Vec::new();
    let mut prev = 0;
    for t in 0..steps {
        let row = probs.slice((t,));
        let (label, p) = row
            .iter()
            .copied()
            .enumerate()
            .fold(
                (0, f32::MIN),
                |best, (i, p)| if p > best.1 { (i, p) } else { best },
            );
        if label != 0
            && label != prev
            && let Some(c) = alphabet.char(label)
        {
            text.push(c);
            confidences.push(p);
            char_positions.push((t as f32 + 0.5) / steps as f32);
        }
        prev = label;
    }
    let confidence = if confidences.is_empty() {
        0.
    } else {
        confidences.iter().sum::<f32>() / confidences.len() as f32
    };
    Recognized {
        text,
        confidence,
        char_positions,
        column_width: 0.5 / steps.max(1) as f32,
    }
}
