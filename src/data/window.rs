//! Intensity windowing for 16-bit images and DICOM: which window to use (stored in the
//! project) and how to apply it. The same setting is used in training, inspection and the
//! export's metadata.

use image::RgbImage;
use serde::{Deserialize, Serialize};

use super::decode::RawImage;

/// How a project's 16-bit / DICOM intensities are mapped to the model's input range.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub enum WindowSetting {
    /// The DICOM WindowCenter/WindowWidth tags where present, else percentiles 0.5–99.5.
    #[default]
    Auto,
    /// Per-image percentiles (e.g. 0.5 and 99.5) of the stored values.
    Percentiles { low: f32, high: f32 },
    /// A fixed window in the image's (rescaled) value units.
    Manual { center: f32, width: f32 },
}

/// A concrete window `[center - width/2, center + width/2]` mapped linearly to `[0, 1]`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Window {
    /// Window centre (level).
    pub center: f32,
    /// Window width (> 0).
    pub width: f32,
}

impl Window {
    /// Maps one value into `[0, 1]`.
    pub fn apply(&self, value: f32) -> f32 {
        let width = self.width.max(f32::EPSILON);
        ((value - (self.center - width / 2.0)) / width).clamp(0.0, 1.0)
    }
}

/// The default percentiles of [`WindowSetting::Auto`] without DICOM tags.
pub const AUTO_PERCENTILES: (f32, f32) = (0.5, 99.5);

impl WindowSetting {
    /// The concrete window for one image: the DICOM tags (Auto, when present), the image's
    /// own percentiles, or the manual window.
    pub fn resolve(&self, raw: &RawImage) -> Window {
        match *self {
            WindowSetting::Auto => raw.dicom_window.unwrap_or_else(|| {
                percentile_window(&raw.values, AUTO_PERCENTILES.0, AUTO_PERCENTILES.1)
            }),
            WindowSetting::Percentiles { low, high } => percentile_window(&raw.values, low, high),
            WindowSetting::Manual { center, width } => Window { center, width },
        }
    }
}

impl Window {
    /// The window spanning `[low, high]`.
    pub fn from_range(low: f32, high: f32) -> Window {
        Window {
            center: (low + high) / 2.0,
            width: high - low,
        }
    }

    /// The lowest and highest value of the window.
    pub fn range(&self) -> (f32, f32) {
        (
            self.center - self.width / 2.0,
            self.center + self.width / 2.0,
        )
    }

    /// Maps one value to 8 bits.
    pub fn apply_u8(&self, value: f32) -> u8 {
        (self.apply(value) * 255.0).round() as u8
    }
}

/// The window from the `low`..`high` percentiles (in percent) of the finite values.
pub fn percentile_window(values: &[f32], low: f32, high: f32) -> Window {
    let mut finite: Vec<f32> = values.iter().copied().filter(|v| v.is_finite()).collect();
    let (lo_pct, hi_pct) = (low.min(high), low.max(high));
    let lo = percentile(&mut finite, lo_pct).unwrap_or(0.0);
    let hi = percentile(&mut finite, hi_pct).unwrap_or(1.0);
    Window::from_range(lo, hi)
}

/// The `q`-th percentile (0–100) with linear interpolation between the closest ranks, as
/// NumPy's default; reorders `values`. `None` for an empty slice.
pub fn percentile(values: &mut [f32], q: f32) -> Option<f32> {
    let n = values.len();
    if n == 0 {
        return None;
    }
    let rank = f64::from(q.clamp(0.0, 100.0)) / 100.0 * (n - 1) as f64;
    let below = rank.floor() as usize;
    let frac = (rank - below as f64) as f32;
    let (_, &mut lower, rest) = values.select_nth_unstable_by(below, f32::total_cmp);
    let upper = if frac > 0.0 {
        rest.iter().copied().fold(f32::INFINITY, f32::min)
    } else {
        lower
    };
    Some(lower + frac * (upper - lower))
}

/// The 8-bit RGB rendering of stored values: unchanged for plain 8-bit data, else through
/// the window resolved from `setting`; MONOCHROME1 is inverted; gray is replicated.
pub fn render_rgb8(raw: &RawImage, setting: &WindowSetting) -> RgbImage {
    let map: Box<dyn Fn(f32) -> u8> = if raw.passes_through() {
        Box::new(|v: f32| v.clamp(0.0, 255.0).round() as u8)
    } else {
        let window = setting.resolve(raw);
        Box::new(move |v: f32| window.apply_u8(v))
    };
    let invert = raw.invert;
    let pixel = |v: f32| {
        let u = map(v);
        if invert { 255 - u } else { u }
    };
    let data: Vec<u8> = match raw.channels {
        1 => raw.values.iter().flat_map(|&v| [pixel(v); 3]).collect(),
        _ => raw.values.iter().map(|&v| pixel(v)).collect(),
    };
    RgbImage::from_raw(raw.width, raw.height, data)
        .unwrap_or_else(|| RgbImage::new(raw.width, raw.height))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::decode::FileFormat;

    fn raw(values: Vec<f32>, bit_depth: u8) -> RawImage {
        RawImage {
            width: values.len() as u32,
            height: 1,
            channels: 1,
            values,
            bit_depth,
            value_range: (0.0, 65535.0),
            dicom_window: None,
            rescaled: false,
            invert: false,
            format: FileFormat::Png,
        }
    }

    #[test]
    fn percentiles_interpolate_like_numpy() {
        // numpy.percentile(range(11), [0.5, 99.5, 50, 25]) = [0.05, 9.95, 5, 2.5]
        let values: Vec<f32> = (0..11).rev().map(|v| v as f32).collect();
        for (q, want) in [
            (0.5, 0.05),
            (99.5, 9.95),
            (50.0, 5.0),
            (25.0, 2.5),
            (100.0, 10.0),
        ] {
            let got = percentile(&mut values.clone(), q).unwrap();
            assert!((got - want).abs() < 1e-5, "{q}: {got} != {want}");
        }
        assert_eq!(percentile(&mut [], 50.0), None);
    }

    #[test]
    fn auto_prefers_dicom_tags_and_monochrome1_inverts() {
        let mut image = raw((0..=1000).map(|v| v as f32).collect(), 16);
        let auto = WindowSetting::Auto.resolve(&image);
        assert!((auto.range().0 - 5.0).abs() < 1e-3 && (auto.range().1 - 995.0).abs() < 1e-3);
        image.dicom_window = Some(Window {
            center: 100.0,
            width: 200.0,
        });
        assert_eq!(
            WindowSetting::Auto.resolve(&image),
            Window {
                center: 100.0,
                width: 200.0
            }
        );
        let rgb = render_rgb8(&image, &WindowSetting::Auto);
        assert_eq!(rgb.get_pixel(0, 0).0, [0, 0, 0]);
        assert_eq!(rgb.get_pixel(200, 0).0, [255, 255, 255]);
        image.invert = true;
        assert_eq!(
            render_rgb8(&image, &WindowSetting::Auto).get_pixel(0, 0).0,
            [255; 3]
        );
    }

    #[test]
    fn eight_bit_passes_through_whatever_the_setting() {
        let image = raw(vec![0.0, 17.0, 255.0], 8);
        let manual = WindowSetting::Manual {
            center: 0.0,
            width: 1.0,
        };
        let rgb = render_rgb8(&image, &manual);
        assert_eq!(rgb.get_pixel(1, 0).0, [17, 17, 17]);
    }
}
