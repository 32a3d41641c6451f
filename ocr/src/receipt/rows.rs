//! The page as rows: lines that sit side by side joined left to right, with the words that mark
//! what a row is about.

use std::ops::Range;

use super::Line;
use crate::geometry::Rect;
use crate::layout;

/// A row of the page: the lines side by side, left to right.
#[derive(Clone, Debug)]
pub(super) struct Row {
    pub(super) text: String,
    pub(super) upper: String,
    /// Input line index and byte range in `text` of each part.
    pub(super) parts: Vec<(usize, Range<usize>)>,
    pub(super) bounds: Rect,
    pub(super) confidence: f32,
}

impl Row {
    pub(super) fn lines_in(&self, range: Range<usize>) -> Vec<usize> {
        self.parts
            .iter()
            .filter(|(_, r)| r.start < range.end && range.start < r.end)
            .map(|(i, _)| *i)
            .collect()
    }

    pub(super) fn lines(&self) -> Vec<usize> {
        self.parts.iter().map(|(i, _)| *i).collect()
    }

    pub(super) fn has(&self, word: &str) -> bool {
        has_word(&self.upper, word)
    }

    pub(super) fn has_any(&self, words: &[&str]) -> bool {
        words.iter().any(|w| self.has(w))
    }
}

/// Whether `upper` contains `word` not glued to letters on either side.
pub(super) fn has_word(upper: &str, word: &str) -> bool {
    let mut from = 0;
    while let Some(pos) = upper[from..].find(word) {
        let start = from + pos;
        let end = start + word.len();
        let before = upper[..start].chars().next_back();
        let after = upper[end..].chars().next();
        let letter = |c: Option<char>| c.is_some_and(char::is_alphabetic);
        if !letter(before) && !letter(after) {
            return true;
        }
        from = start + word.len().max(1);
    }
    false
}

pub(super) fn build_rows(lines: &[Line]) -> Vec<Row> {
    let mut order: Vec<usize> = (0..lines.len()).collect();
    order.sort_by(|&a, &b| {
        lines[a]
            .bounds
            .center_y()
            .total_cmp(&lines[b].bounds.center_y())
    });
    let row_of = layout::rows(order.iter().map(|&i| lines[i].bounds));
    let mut grouped: Vec<Vec<usize>> = Vec::new();
    for (k, &i) in order.iter().enumerate() {
        if grouped.len() <= row_of[k] {
            grouped.push(Vec::new());
        }
        grouped[row_of[k]].push(i);
    }
    grouped
        .into_iter()
        .map(|mut members| {
            members.sort_by(|&a, &b| lines[a].bounds.left.total_cmp(&lines[b].bounds.left));
            let mut text = String::new();
            let mut parts = Vec::new();
            let mut bounds = lines[members[0]].bounds;
            let mut confidence = 1f32;
            for &i in &members {
                if !text.is_empty() {
                    text.push(' ');
                }
                let start = text.len();
                text.push_str(lines[i].text.trim());
                parts.push((i, start..text.len()));
                bounds = bounds.union(&lines[i].bounds);
                confidence = confidence.min(lines[i].confidence);
            }
            Row {
                upper: text.to_uppercase(),
                text,
                parts,
                bounds,
                confidence,
            }
        })
        .collect()
}
