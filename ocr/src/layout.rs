//! Grouping boxes on an upright page into rows.

use crate::geometry::Rect;

/// Assigns each box (given sorted by vertical centre) a row number. A box joins the current row
/// when its centre is within half a line height of the row's centre, where the line height is
/// the smaller of the box's and the row's typical height, so a tall box (a stamp, a
/// handwritten figure) cannot bridge two rows.
pub fn rows(boxes: impl IntoIterator<Item = Rect>) -> Vec<usize> {
    let mut out = Vec::new();
    let mut row = 0;
    // Centre (mean of members') and typical height (smallest member's) of the current row.
    let mut current: Option<(f32, f32, usize)> = None;
    for b in boxes {
        let (cy, h) = (b.center_y(), b.height().max(1.));
        current = match current {
            Some((row_cy, row_h, n)) if (cy - row_cy).abs() <= 0.5 * row_h.min(h) => {
                let n2 = n + 1;
                Some(((row_cy * n as f32 + cy) / n2 as f32, row_h.min(h), n2))
            }
            Some(_) => {
                row += 1;
                Some((cy, h, 1))
            }
            None => Some((cy, h, 1)),
        };
        out.push(row);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tall_box_does_not_join_two_rows() {
        let boxes = [
            Rect::new(0., 100., 50., 124.),    // TOTAL ROUNDED
            Rect::new(300., 100., 350., 125.), // RM 33.90
            Rect::new(150., 88., 200., 142.),  // a tall stamp
            Rect::new(0., 121., 50., 145.),    // CASH
            Rect::new(300., 121., 350., 146.), // RM 50.00
        ];
        let mut sorted = boxes.to_vec();
        sorted.sort_by(|a, b| a.center_y().total_cmp(&b.center_y()));
        let rows = rows(sorted.iter().copied());
        let row_of = |r: &Rect| rows[sorted.iter().position(|s| s == r).unwrap()];
        assert_eq!(
            row_of(&boxes[0]),
            row_of(&boxes[1]),
            "label and amount share a row"
        );
        assert_eq!(
            row_of(&boxes[3]),
            row_of(&boxes[4]),
            "cash and its amount share a row"
        );
        assert_ne!(
            row_of(&boxes[0]),
            row_of(&boxes[3]),
            "the stamp must not merge the rows"
        );
    }
}
