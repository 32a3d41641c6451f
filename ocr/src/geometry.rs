//! Points, axis-aligned rectangles and quadrilaterals in image pixels.

use serde::Serialize;

/// A point in image pixels (x to the right, y downwards).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Point {
    pub x: f32,
    pub y: f32,
}

impl Point {
    pub fn new(x: f32, y: f32) -> Point {
        Point { x, y }
    }
}

/// An axis-aligned rectangle.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Rect {
    pub left: f32,
    pub top: f32,
    pub right: f32,
    pub bottom: f32,
}

impl Rect {
    pub fn new(left: f32, top: f32, right: f32, bottom: f32) -> Rect {
        Rect {
            left,
            top,
            right,
            bottom,
        }
    }

    pub fn width(&self) -> f32 {
        self.right - self.left
    }

    pub fn height(&self) -> f32 {
        self.bottom - self.top
    }

    pub fn center_y(&self) -> f32 {
        (self.top + self.bottom) / 2.
    }

    /// The smallest rectangle holding both.
    pub fn union(&self, other: &Rect) -> Rect {
        Rect::new(
            self.left.min(other.left),
            self.top.min(other.top),
            self.right.max(other.right),
            self.bottom.max(other.bottom),
        )
    }

    /// Length of the overlap of the two vertical extents (0 when apart).
    pub fn vertical_overlap(&self, other: &Rect) -> f32 {
        (self.bottom.min(other.bottom) - self.top.max(other.top)).max(0.)
    }
}

/// Four corners of a (possibly rotated) box, clockwise from the top-left corner of the text as
/// read: top-left, top-right, bottom-right, bottom-left.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Quad(pub [Point; 4]);

impl Quad {
    /// The axis-aligned bounding rectangle.
    pub fn bounds(&self) -> Rect {
        let xs = self.0.map(|p| p.x);
        let ys = self.0.map(|p| p.y);
        Rect::new(
            xs.iter().copied().fold(f32::INFINITY, f32::min),
            ys.iter().copied().fold(f32::INFINITY, f32::min),
            xs.iter().copied().fold(f32::NEG_INFINITY, f32::max),
            ys.iter().copied().fold(f32::NEG_INFINITY, f32::max),
        )
    }

    pub fn scaled(&self, factor: f32) -> Quad {
        Quad(self.0.map(|p| Point::new(p.x * factor, p.y * factor)))
    }
}

/// An oriented text box: `origin` is the top-left corner of the text as read, `dir` the unit
/// vector along the baseline (left to right as read), `down` the unit vector from the top of the
/// text to its bottom; `width` runs along `dir`, `height` along `down`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OrientedBox {
    pub origin: Point,
    pub dir: Point,
    pub down: Point,
    pub width: f32,
    pub height: f32,
}

impl OrientedBox {
    /// The point at `(u, v)` in the box's own frame (u along the text, v downwards).
    pub fn at(&self, u: f32, v: f32) -> Point {
        Point::new(
            self.origin.x + u * self.dir.x + v * self.down.x,
            self.origin.y + u * self.dir.y + v * self.down.y,
        )
    }

    pub fn center(&self) -> Point {
        self.at(self.width / 2., self.height / 2.)
    }

    pub fn quad(&self) -> Quad {
        Quad([
            self.at(0., 0.),
            self.at(self.width, 0.),
            self.at(self.width, self.height),
            self.at(0., self.height),
        ])
    }

    /// The part of the box between `u0` and `u1` along the text.
    pub fn span(&self, u0: f32, u1: f32) -> OrientedBox {
        let u0 = u0.clamp(0., self.width);
        let u1 = u1.clamp(u0, self.width);
        OrientedBox {
            origin: self.at(u0, 0.),
            width: u1 - u0,
            ..*self
        }
    }

    /// The same box read the other way up (rotated by 180°).
    pub fn flipped(&self) -> OrientedBox {
        OrientedBox {
            origin: self.at(self.width, self.height),
            dir: Point::new(-self.dir.x, -self.dir.y),
            down: Point::new(-self.down.x, -self.down.y),
            ..*self
        }
    }
}
