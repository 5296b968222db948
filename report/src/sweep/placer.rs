//! Where labels go on a chart without covering each other: a greedy placer over pixel boxes,
//! deterministic (the first free candidate, in a fixed order).

/// A box in pixels: left, top, width, height.
pub(super) type Rect = (i32, i32, i32, i32);

/// Estimated width in pixels of `s` drawn at plotters size `size` (the SVG gets `size / 1.24`
/// px): no font metrics here, so a wide sans-serif's 0.65 em per character, to be safe.
pub(super) fn text_w(s: &str, size: f64) -> i32 {
    (s.chars().count() as f64 * size / 1.24 * 0.65).ceil() as i32
}

/// The boxes taken so far.
#[derive(Debug, Default)]
pub(super) struct Placer {
    taken: Vec<Rect>,
}

fn overlaps(a: Rect, b: Rect) -> bool {
    a.0 < b.0 + b.2 && b.0 < a.0 + a.2 && a.1 < b.1 + b.3 && b.1 < a.1 + a.3
}

/// Where a `w`×`h` label may go around the point `(x, y)`: right above, right below, left
/// above, left below.
fn around((x, y): (i32, i32), w: i32, h: i32) -> [(i32, i32); 4] {
    const GAP: i32 = 7;
    [
        (x + GAP, y - GAP - h),
        (x + GAP, y + GAP),
        (x - GAP - w, y - GAP - h),
        (x - GAP - w, y + GAP),
    ]
}

impl Placer {
    /// Marks `r` as taken (a marker, say), so that labels avoid it.
    pub(super) fn take(&mut self, r: Rect) {
        self.taken.push(r);
    }

    fn free(&self, r: Rect) -> bool {
        !self.taken.iter().any(|t| overlaps(*t, r))
    }

    /// The top-left corner of a `w`×`h` label beside `at` that covers nothing taken, now
    /// taken; `None` when every place around `at` is.
    pub(super) fn near(&mut self, at: (i32, i32), w: i32, h: i32) -> Option<(i32, i32)> {
        let spot = around(at, w, h)
            .into_iter()
            .find(|(x, y)| self.free((*x, *y, w, h)))?;
        self.take((spot.0, spot.1, w, h));
        Some(spot)
    }

    /// Like [`Placer::near`], but a label that must be drawn: when every place around `at`
    /// is taken, the first free one a row further down, or at worst right above `at`.
    pub(super) fn must(&mut self, at: (i32, i32), w: i32, h: i32) -> (i32, i32) {
        if let Some(spot) = self.near(at, w, h) {
            return spot;
        }
        let first = around(at, w, h)[0];
        let spot = (1..12)
            .map(|row| (first.0, first.1 + row * h))
            .find(|(x, y)| self.free((*x, *y, w, h)))
            .unwrap_or(first);
        self.take((spot.0, spot.1, w, h));
        spot
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_do_not_cover_each_other() {
        let mut p = Placer::default();
        assert_eq!(p.near((100, 100), 40, 10), Some((107, 83)));
        assert_eq!(p.near((100, 100), 40, 10), Some((107, 107)));
        assert_eq!(p.near((100, 100), 40, 10), Some((53, 83)));
        assert_eq!(p.near((100, 100), 40, 10), Some((53, 107)));
        assert_eq!(p.near((100, 100), 40, 10), None);
        // A label that must be drawn goes a row down from the first place.
        assert_eq!(p.must((100, 100), 40, 10), (107, 93));
    }
}
