//! Text recognition: each detected line is cut out along its own orientation, scaled to the
//! model's height, batched, and the model's per-column character probabilities are decoded
//! greedily (CTC: best label per column, repeats merged, blanks dropped).

use std::sync::atomic::{AtomicUsize, Ordering};

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
/// Upper bound on pixels in one batch, to bound memory.
const BATCH_PIXELS: usize = 8 * LINE_HEIGHT * 640;
const MAX_BATCH: usize = 16;
/// The fixed cost of one run of the model, in columns of line image that cost as much: about
/// 4 ms against 0.13 ms per column on one core.
const RUN_COST_COLUMNS: usize = 32;

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
///
/// Lines are batched by width (see [`plan_batches`]) and the batches are run side by side,
/// one per core: a whole batch per thread keeps the cores busier than
/// splitting each of the model's many small operations between them.
pub fn recognize(
    model: &Model,
    alphabet: &Alphabet,
    image: &RgbImage,
    boxes: &[OrientedBox],
) -> anyhow::Result<Vec<Recognized>> {
    let widths: Vec<usize> = boxes.iter().map(line_width).collect();
    let mut batches = plan_batches(&widths);
    // Longest first, so that no long batch is left running alone at the end.
    batches.sort_by_key(|b| std::cmp::Reverse(b.len() * batch_width(b, &widths)));
    let next = AtomicUsize::new(0);
    let workers = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .min(batches.len());
    let read: Vec<anyhow::Result<Vec<(usize, Recognized)>>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                scope.spawn(|| {
                    let mut out = Vec::new();
                    loop {
                        let k = next.fetch_add(1, Ordering::Relaxed);
                        let Some(batch) = batches.get(k) else {
                            return Ok(out);
                        };
                        // Inside rten's pool: the batch runs on one of its threads, and idle
                        // threads help with its operations.
                        let lines = rten::thread_pool().run(|| {
                            recognize_batch(model, alphabet, image, boxes, &widths, batch)
                        })?;
                        out.extend(batch.iter().copied().zip(lines));
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    });
    let mut results = vec![Recognized::default(); boxes.len()];
    for worker in read {
        for (i, r) in worker? {
            results[i] = r;
        }
    }
    Ok(results)
}

/// Runs the model on one batch of lines (indices into `boxes`) and decodes each line.
fn recognize_batch(
    model: &Model,
    alphabet: &Alphabet,
    image: &RgbImage,
    boxes: &[OrientedBox],
    widths: &[usize],
    batch: &[usize],
) -> anyhow::Result<Vec<Recognized>> {
    let width = batch_width(batch, widths);
    let mut input = NdTensor::<f32, 4>::zeros([batch.len(), 3, LINE_HEIGHT, width]);
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
    Ok(batch
        .iter()
        .enumerate()
        .map(|(slot, &i)| {
            // Columns past the line's own width are padding.
            let used = (steps * widths[i]).div_ceil(width).clamp(1, steps);
            decode(probs.slice((slot, ..used)), alphabet)
        })
        .collect())
}

/// The width a batch of lines is padded to.
fn batch_width(batch: &[usize], widths: &[usize]) -> usize {
    batch
        .iter()
        .map(|&i| widths[i])
        .max()
        .unwrap_or(0)
        .max(MIN_WIDTH)
}

/// Groups lines (given by their widths) into batches so that the model sees as few columns
/// of padding as possible, weighed against the fixed cost of each run: the optimal split of
/// the lines sorted by width into runs of consecutive lines, each padded to its widest.
pub fn plan_batches(widths: &[usize]) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..widths.len()).collect();
    order.sort_by_key(|&i| widths[i]);
    let padded = |k: usize| widths[order[k]].max(MIN_WIDTH);
    // cost[j]: least cost of the first j lines; start[j]: where the last batch of them starts.
    let n = order.len();
    let mut cost = vec![0usize; n + 1];
    let mut start = vec![0usize; n + 1];
    for j in 1..=n {
        cost[j] = usize::MAX;
        for i in (0..j).rev() {
            let lines = j - i;
            let columns = lines * padded(j - 1);
            if lines > 1 && (lines > MAX_BATCH || columns * LINE_HEIGHT > BATCH_PIXELS) {
                break;
            }
            let c = cost[i] + RUN_COST_COLUMNS + columns;
            if c < cost[j] {
                cost[j] = c;
                start[j] = i;
            }
        }
    }
    let mut batches = Vec::new();
    let mut j = n;
    while j > 0 {
        batches.push(order[start[j]..j].to_vec());
        j = start[j];
    }
    batches.reverse();
    batches
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_line_is_in_exactly_one_batch_within_the_memory_bound() {
        let widths: Vec<usize> = (0..200).map(|i| 20 + (i * 37) % 900).collect();
        let batches = plan_batches(&widths);
        let mut seen = vec![0; widths.len()];
        for b in &batches {
            for &i in b {
                seen[i] += 1;
            }
            assert!(
                b.len() == 1
                    || (b.len() <= MAX_BATCH
                        && b.len() * batch_width(b, &widths) * LINE_HEIGHT <= BATCH_PIXELS),
                "a batch of several lines must fit the memory bound"
            );
        }
        assert!(seen.iter().all(|&n| n == 1), "each line is read once");
    }

    #[test]
    fn lines_of_one_width_share_batches_and_short_lines_are_not_padded_to_long_ones() {
        let widths = [300; 8].into_iter().chain([100; 8]).collect::<Vec<_>>();
        let batches = plan_batches(&widths);
        assert_eq!(batches.len(), 2, "one run per width is cheapest");
        for b in &batches {
            let w = widths[b[0]];
            assert!(
                b.iter().all(|&i| widths[i] == w),
                "mixing widths would pad the short lines"
            );
        }
    }
}
