//! An append-only plot series with min/max decimation, so a chart of 100k steps draws a few
//! thousand points: once a series outgrows its budget, consecutive points are grouped into
//! buckets and each bucket is drawn as its lowest and highest point (spikes stay visible).
//! Buckets double in size whenever their count exceeds the budget; rebuilding then costs
//! one pass over the points, so appending stays O(1) amortised.

use std::borrow::Cow;

use egui_plot::PlotPoint;

/// Points drawn per series at most (plus one partial bucket).
pub const DEFAULT_MAX_POINTS: usize = 2000;

/// An append-only series of `(x, y)` points with a decimated view for plotting.
#[derive(Clone, Debug)]
pub struct Series {
    raw: Vec<PlotPoint>,
    /// Raw points per bucket (1 while the series is within budget).
    bucket: usize,
    /// Min and max point of every full bucket, in x order (empty while within budget).
    decimated: Vec<PlotPoint>,
    max_points: usize,
}

impl Default for Series {
    fn default() -> Self {
        Self::with_max_points(DEFAULT_MAX_POINTS)
    }
}

impl Series {
    /// An empty series drawing at most about `max_points` points (at least 4).
    pub fn with_max_points(max_points: usize) -> Self {
        Self {
            raw: Vec::new(),
            bucket: 1,
            decimated: Vec::new(),
            max_points: max_points.max(4),
        }
    }

    /// Appends a point; non-finite values are kept but never drawn.
    pub fn push(&mut self, x: f64, y: f64) {
        self.raw.push(PlotPoint::new(x, y));
        let n = self.raw.len();
        if n <= self.max_points {
            return;
        }
        if self.bucket == 1 {
            self.bucket = 2;
            self.rebuild();
        } else if n.is_multiple_of(self.bucket) {
            let start = n - self.bucket;
            push_min_max(&mut self.decimated, &self.raw[start..]);
        }
        if self.decimated.len() > self.max_points {
            self.bucket *= 2;
            self.rebuild();
        }
    }

    fn rebuild(&mut self) {
        self.decimated.clear();
        for chunk in self.raw.chunks_exact(self.bucket) {
            push_min_max(&mut self.decimated, chunk);
        }
    }

    /// Number of points appended.
    pub fn len(&self) -> usize {
        self.raw.len()
    }

    /// Whether no point was appended.
    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }

    /// The last point appended.
    pub fn last(&self) -> Option<[f64; 2]> {
        self.raw.last().map(|p| [p.x, p.y])
    }

    /// Every point appended.
    pub fn raw(&self) -> &[PlotPoint] {
        &self.raw
    }

    /// The points to draw: all of them within budget, else the min/max of each full bucket
    /// followed by the points of the partial last bucket.
    pub fn plot_points(&self) -> Cow<'_, [PlotPoint]> {
        if self.bucket == 1 {
            let finite = self.raw.iter().all(|p| p.y.is_finite());
            if finite {
                return Cow::Borrowed(&self.raw);
            }
            return Cow::Owned(
                self.raw
                    .iter()
                    .copied()
                    .filter(|p| p.y.is_finite())
                    .collect(),
            );
        }
        let full = self.raw.len() / self.bucket * self.bucket;
        let mut points = self.decimated.clone();
        points.extend(self.raw[full..].iter().filter(|p| p.y.is_finite()));
        Cow::Owned(points)
    }
}

/// Appends the lowest and highest finite point of `chunk`, in x order (one point when they
/// are the same; none when no value is finite).
fn push_min_max(out: &mut Vec<PlotPoint>, chunk: &[PlotPoint]) {
    let finite = chunk.iter().enumerate().filter(|(_, p)| p.y.is_finite());
    let mut low: Option<(usize, PlotPoint)> = None;
    let mut high: Option<(usize, PlotPoint)> = None;
    for (i, p) in finite {
        if low.is_none_or(|(_, l)| p.y < l.y) {
            low = Some((i, *p));
        }
        if high.is_none_or(|(_, h)| p.y > h.y) {
            high = Some((i, *p));
        }
    }
    if let (Some((i, l)), Some((j, h))) = (low, high) {
        if i == j {
            out.push(l);
        } else if i < j {
            out.extend([l, h]);
        } else {
            out.extend([h, l]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_small_series_is_drawn_as_is() {
        let mut s = Series::with_max_points(100);
        for i in 0..50 {
            s.push(i as f64, (i * i) as f64);
        }
        s.push(50.0, f64::NAN);
        assert_eq!(s.len(), 51);
        let points = s.plot_points();
        assert_eq!(points.len(), 50, "the NaN point is not drawn");
        assert_eq!(points[49].y, 49.0 * 49.0);
    }

    #[test]
    fn a_long_series_keeps_its_extremes_within_budget_and_in_x_order() {
        let max = 1000;
        let mut s = Series::with_max_points(max);
        let n = 100_003;
        for i in 0..n {
            let x = i as f64;
            // A slow wave with two single-point spikes.
            let y = match i {
                31_337 => 50.0,
                77_777 => -40.0,
                _ => (x / 5000.0).sin(),
            };
            s.push(x, y);
        }
        let points = s.plot_points();
        assert!(points.len() <= max + s.bucket, "{} points", points.len());
        assert!(points.len() >= max / 2, "{} points", points.len());
        assert!(points.windows(2).all(|w| w[0].x < w[1].x), "x order");
        // The spikes survive with their exact positions.
        assert!(points.iter().any(|p| p.x == 31_337.0 && p.y == 50.0));
        assert!(points.iter().any(|p| p.x == 77_777.0 && p.y == -40.0));
        // The wave's range survives too.
        let top = points
            .iter()
            .filter(|p| p.y < 2.0)
            .map(|p| p.y)
            .fold(f64::MIN, f64::max);
        assert!(top > 0.999, "{top}");
        // The last point (in the partial bucket) is drawn.
        assert_eq!(points.last().map(|p| p.x), Some((n - 1) as f64));
        assert_eq!(s.len(), n);
    }
}
