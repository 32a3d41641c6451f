//! Text detection: the PP-OCR DB (differentiable binarisation) model gives a per-pixel text
//! probability map; the post-processing turns it into oriented boxes around text lines
//! (threshold → dilate → contours → minimum-area rectangles → score → unclip).

use image::RgbImage;
use rten::Model;
use rten_imageproc::{RetrievalMode, find_contours, min_area_rect};
use rten_tensor::prelude::*;
use rten_tensor::{NdTensor, NdTensorView};

use crate::geometry::Point;

/// Post-processing parameters, as PaddleOCR tunes them for the DB models.
#[derive(Clone, Debug)]
pub struct DetectParams {
    /// A pixel is text when its probability exceeds this.
    pub threshold: f32,
    /// A box is kept when the mean probability inside it exceeds this.
    pub box_threshold: f32,
    /// How far boxes are grown: the DB model predicts shrunk text kernels.
    pub unclip_ratio: f32,
    /// Boxes whose short side is under this many map pixels are dropped.
    pub min_size: f32,
    pub max_candidates: usize,
}

impl Default for DetectParams {
    fn default() -> DetectParams {
        DetectParams {
            threshold: 0.3,
            box_threshold: 0.5,
            unclip_ratio: 1.6,
            min_size: 3.,
            max_candidates: 1000,
        }
    }
}

/// A detected text region as a rotated rectangle in the input image's pixels. `long_axis` is
/// a unit vector along the rectangle's longer side; its sign is arbitrary.
#[derive(Clone, Copy, Debug)]
pub struct DetectedBox {
    pub center: Point,
    pub long_axis: Point,
    pub length: f32,
    pub thickness: f32,
    pub score: f32,
}

/// Runs the detection model on `image` (already sized for detection; each side a multiple of
/// 32) and returns the boxes in `image` pixels.
pub fn detect(
    model: &Model,
    image: &RgbImage,
    params: &DetectParams,
) -> anyhow::Result<Vec<DetectedBox>> {
    let (width, height) = (image.width() as usize, image.height() as usize);
    let input = normalized_chw(image);
    let output = model.run_one(input.view().into(), None)?;
    let map: NdTensor<f32, 4> = output.try_into()?;
    let [_, _, map_h, map_w] = map.shape();
    anyhow::ensure!(
        map_h == height && map_w == width,
        "detection map is {map_w}×{map_h}, expected {width}×{height}"
    );
    let probs = map.slice((0, 0));
    Ok(boxes_from_map(probs, params))
}

/// HWC u8 → NCHW f32 scaled to [-1, 1], in the BGR channel order PaddleOCR models are trained on.
pub fn normalized_chw(image: &RgbImage) -> NdTensor<f32, 4> {
    let (w, h) = (image.width() as usize, image.height() as usize);
    let mut data = vec![0f32; 3 * w * h];
    let plane = w * h;
    for (i, px) in image.pixels().enumerate() {
        for c in 0..3 {
            // BGR: output channel 0 is blue.
            data[c * plane + i] = f32::from(px.0[2 - c]) / 127.5 - 1.;
        }
    }
    NdTensor::from_data([1, 3, h, w], data)
}

/// The DB post-processing on a probability map.
pub fn boxes_from_map(probs: NdTensorView<f32, 2>, params: &DetectParams) -> Vec<DetectedBox> {
    let [h, w] = probs.shape();
    // Threshold and dilate with a 2×2 kernel (as PaddleOCR's use_dilation): a pixel is set when
    // it or its left, upper or upper-left neighbour is text.
    let text: Vec<bool> = probs.iter().map(|p| *p > params.threshold).collect();
    let mut mask = NdTensor::<bool, 2>::zeros([h, w]);
    for y in 0..h {
        for x in 0..w {
            let at = |yy: usize, xx: usize| text[yy * w + xx];
            let on = at(y, x)
                || (x > 0 && at(y, x - 1))
                || (y > 0 && at(y - 1, x))
                || (x > 0 && y > 0 && at(y - 1, x - 1));
            mask[[y, x]] = on;
        }
    }

    let contours = find_contours(mask.view(), RetrievalMode::External);
    let mut boxes = Vec::new();
    for contour in contours.iter().take(params.max_candidates) {
        let points: Vec<_> = contour.iter().map(|p| p.to_f32()).collect();
        let Some(rect) = min_area_rect(&points) else {
            continue;
        };
        let (rw, rh) = (rect.width(), rect.height());
        if rw.min(rh) < params.min_size {
            continue;
        }
        let score = mean_inside(probs, &rect);
        if score < params.box_threshold {
            continue;
        }
        // Unclip: offset the polygon outwards by area × ratio / perimeter. For a rectangle, the
        // minimum-area rectangle of the rounded offset grows each side by that distance.
        let distance = rw * rh * params.unclip_ratio / (2. * (rw + rh));
        let (rw, rh) = (rw + 2. * distance, rh + 2. * distance);
        if rw.min(rh) < params.min_size + 2. {
            continue;
        }
        let c = rect.center();
        let up = rect.up_axis();
        // up_axis runs along the height; the width axis is perpendicular to it.
        let width_axis = Point::new(-up.y, up.x);
        let height_axis = Point::new(up.x, up.y);
        let (long_axis, length, thickness) = if rw >= rh {
            (width_axis, rw, rh)
        } else {
            (height_axis, rh, rw)
        };
        // rten_imageproc points are (y, x); ours are (x, y).
        boxes.push(DetectedBox {
            center: Point::new(c.x, c.y),
            long_axis,
            length,
            thickness,
            score,
        });
    }
    boxes
}

/// Mean probability over the pixels inside `rect`.
fn mean_inside(probs: NdTensorView<f32, 2>, rect: &rten_imageproc::RotatedRect) -> f32 {
    let [h, w] = probs.shape();
    let corners = rect.corners();
    let (mut x0, mut y0, mut x1, mut y1) = (f32::MAX, f32::MAX, f32::MIN, f32::MIN);
    for p in corners {
        x0 = x0.min(p.x);
        y0 = y0.min(p.y);
        x1 = x1.max(p.x);
        y1 = y1.max(p.y);
    }
    let clamp = |v: f32, hi: usize| (v.max(0.) as usize).min(hi.saturating_sub(1));
    let (x0, x1) = (clamp(x0.floor(), w), clamp(x1.ceil(), w));
    let (y0, y1) = (clamp(y0.floor(), h), clamp(y1.ceil(), h));
    let (mut sum, mut n) = (0f32, 0u32);
    for y in y0..=y1 {
        for x in x0..=x1 {
            let p = rten_imageproc::PointF::from_yx(y as f32, x as f32);
            if rect.contains(p) {
                sum += probs[[y, x]];
                n += 1;
            }
        }
    }
    if n == 0 { 0. } else { sum / n as f32 }
}
