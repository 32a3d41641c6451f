//! Grouping boxes on an upright page into rows.

use crate::geometry::Rect;

/// Assigns each box (given sorted by vertical centre) a row number: a box joins the row above
/// when it overlaps that row's vertical extent by at least half of the smaller height.
pub fn rows(boxes: impl IntoIterator<Item = Rect>) -> Vec<usize> {
    let mut out = Vec::new();
    let mut row_extent: Option<Rect> = None;
    let mut row = 0;
    for b in boxes {
        match row_extent {
            Some(extent) if joins(&extent, &b) => {
                row_extent = Some(Rect::new(
                    extent.left.min(b.left),
                    // Keep the row's band from drifting: average it with the new box.
                    (extent.top + b.top) / 2.,
                    extent.right.max(b.right),
                    (extent.bottom + b.bottom) / 2.,
                ));
            }
            Some(_) => {
                row += 1;
                row_extent = Some(b);
            }
            None => row_extent = Some(b),
        }
        out.push(row);
    }
    out
}

fn joins(row: &Rect, b: &Rect) -> bool {
    let overlap = row.vertical_overlap(b);
    let smaller = row.height().min(b.height()).max(1.);
    overlap >= 0.5 * smaller
}
