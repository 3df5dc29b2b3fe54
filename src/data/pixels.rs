//! 8-bit pixel buffers and the low-level operations the loader and augmentation share:
//! resizing (fast_image_resize), small rotations, the eight flips/quarter turns as index
//! walks, and the final fused write to normalised CHW floats.
//!
//! Grey images stay one channel until that final write, which saves two thirds of the
//! resizing work and cache memory for X-ray, CT and microscopy data.

use fast_image_resize as fir;
use image::{GrayImage, RgbImage};

/// A resize that could not run (inconsistent buffer sizes; a bug rather than bad data).
#[derive(Debug, thiserror::Error)]
#[error("image resize failed: {0}")]
pub struct ResizeFailed(String);

/// An 8-bit image with one (grey) or three (RGB) channels.
#[derive(Clone, Debug, PartialEq)]
pub enum Pixels {
    Gray(GrayImage),
    Rgb(RgbImage),
}

impl Pixels {
    /// Width and height in pixels.
    pub fn dimensions(&self) -> (u32, u32) {
        match self {
            Pixels::Gray(image) => image.dimensions(),
            Pixels::Rgb(image) => image.dimensions(),
        }
    }

    /// 1 or 3.
    pub fn channels(&self) -> usize {
        match self {
            Pixels::Gray(_) => 1,
            Pixels::Rgb(_) => 3,
        }
    }

    /// Interleaved samples, row-major.
    pub fn as_raw(&self) -> &[u8] {
        match self {
            Pixels::Gray(image) => image.as_raw(),
            Pixels::Rgb(image) => image.as_raw(),
        }
    }

    /// As RGB (grey values repeated).
    pub fn to_rgb8(&self) -> RgbImage {
        match self {
            Pixels::Rgb(image) => image.clone(),
            Pixels::Gray(image) => {
                let mut rgb = RgbImage::new(image.width(), image.height());
                for (out, &v) in rgb.as_mut().chunks_exact_mut(3).zip(image.as_raw()) {
                    out.fill(v);
                }
                rgb
            }
        }
    }

    /// Resizes (a crop of) the image with antialiased bilinear filtering, like torchvision's
    /// `Resize` on PIL images.
    pub fn resized(
        &self,
        crop: Option<CropBox>,
        width: u32,
        height: u32,
    ) -> Result<Pixels, ResizeFailed> {
        let (w, h) = self.dimensions();
        let bilinear = fir::ResizeAlg::Convolution(fir::FilterType::Bilinear);
        let fail = || ResizeFailed("buffer size".into());
        Ok(match self {
            Pixels::Gray(image) => {
                let data = resize_raw(
                    image.as_raw(),
                    w,
                    h,
                    fir::PixelType::U8,
                    bilinear,
                    crop,
                    width,
                    height,
                )?;
                Pixels::Gray(GrayImage::from_raw(width, height, data).ok_or_else(fail)?)
            }
            Pixels::Rgb(image) => {
                let data = resize_raw(
                    image.as_raw(),
                    w,
                    h,
                    fir::PixelType::U8x3,
                    bilinear,
                    crop,
                    width,
                    height,
                )?;
                Pixels::Rgb(RgbImage::from_raw(width, height, data).ok_or_else(fail)?)
            }
        })
    }

    /// Rotates about the centre (bilinear; outside is black).
    pub fn rotated(&self, degrees: f32) -> Pixels {
        let (w, h) = self.dimensions();
        let data = rotate_bilinear(self.as_raw(), w, h, self.channels(), degrees);
        match self {
            Pixels::Gray(_) => Pixels::Gray(GrayImage::from_raw(w, h, data).unwrap_or_default()),
            Pixels::Rgb(_) => Pixels::Rgb(RgbImage::from_raw(w, h, data).unwrap_or_default()),
        }
    }
}

/// A crop rectangle in source pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CropBox {
    pub left: u32,
    pub top: u32,
    pub width: u32,
    pub height: u32,
}

/// Resizes (a crop of) a mask with nearest-neighbour sampling, so class indices survive.
pub fn resize_mask(
    src: &GrayImage,
    crop: Option<CropBox>,
    width: u32,
    height: u32,
) -> Result<GrayImage, ResizeFailed> {
    let (w, h) = src.dimensions();
    let data = resize_raw(
        src.as_raw(),
        w,
        h,
        fir::PixelType::U8,
        fir::ResizeAlg::Nearest,
        crop,
        width,
        height,
    )?;
    GrayImage::from_raw(width, height, data).ok_or_else(|| ResizeFailed("buffer size".into()))
}

#[allow(clippy::too_many_arguments)]
fn resize_raw(
    src: &[u8],
    src_width: u32,
    src_height: u32,
    pixel_type: fir::PixelType,
    algorithm: fir::ResizeAlg,
    crop: Option<CropBox>,
    width: u32,
    height: u32,
) -> Result<Vec<u8>, ResizeFailed> {
    let fail = |e: &dyn std::fmt::Display| ResizeFailed(e.to_string());
    let source =
        fir::images::ImageRef::new(src_width, src_height, src, pixel_type).map_err(|e| fail(&e))?;
    let mut dest = fir::images::Image::new(width, height, pixel_type);
    let mut options = fir::ResizeOptions::new().resize_alg(algorithm);
    if let Some(c) = crop {
        let [left, top, w, h] = [c.left, c.top, c.width, c.height].map(f64::from);
        options = options.crop(left, top, w, h);
    }
    fir::Resizer::new()
        .resize(&source, &mut dest, &options)
        .map_err(|e| fail(&e))?;
    Ok(dest.into_vec())
}

/// Output pixel → source position (pixel indices, centres at integers) for a rotation.
fn inverse_rotation(w: u32, h: u32, degrees: f32) -> impl Fn(u32, u32) -> (f32, f32) {
    let (sin, cos) = degrees.to_radians().sin_cos();
    let (cx, cy) = ((w as f32 - 1.0) / 2.0, (h as f32 - 1.0) / 2.0);
    move |x, y| {
        let (dx, dy) = (x as f32 - cx, y as f32 - cy);
        (cx + cos * dx - sin * dy, cy + sin * dx + cos * dy)
    }
}

fn rotate_bilinear(src: &[u8], w: u32, h: u32, channels: usize, degrees: f32) -> Vec<u8> {
    let map = inverse_rotation(w, h, degrees);
    let mut out = vec![0u8; src.len()];
    let fetch = |x: f32, y: f32, c: usize| -> f32 {
        if x < 0.0 || y < 0.0 || x >= w as f32 || y >= h as f32 {
            return 0.0;
        }
        f32::from(src[(y as usize * w as usize + x as usize) * channels + c])
    };
    for y in 0..h {
        for x in 0..w {
            let (sx, sy) = map(x, y);
            let (x0, y0) = (sx.floor(), sy.floor());
            let (fx, fy) = (sx - x0, sy - y0);
            let at = (y as usize * w as usize + x as usize) * channels;
            for c in 0..channels {
                let top = fetch(x0, y0, c) + (fetch(x0 + 1.0, y0, c) - fetch(x0, y0, c)) * fx;
                let bottom = fetch(x0, y0 + 1.0, c)
                    + (fetch(x0 + 1.0, y0 + 1.0, c) - fetch(x0, y0 + 1.0, c)) * fx;
                out[at + c] = (top + (bottom - top) * fy).round().clamp(0.0, 255.0) as u8;
            }
        }
    }
    out
}

/// Rotates a mask exactly like [`Pixels::rotated`], with nearest-neighbour sampling
/// (outside is 0).
pub fn rotate_mask(src: &GrayImage, degrees: f32) -> GrayImage {
    let (w, h) = src.dimensions();
    let map = inverse_rotation(w, h, degrees);
    GrayImage::from_fn(w, h, |x, y| {
        let (sx, sy) = map(x, y);
        let (nx, ny) = ((sx + 0.5).floor(), (sy + 0.5).floor());
        if nx < 0.0 || ny < 0.0 || nx >= w as f32 || ny >= h as f32 {
            image::Luma([0])
        } else {
            *src.get_pixel(nx as u32, ny as u32)
        }
    })
}

/// One of the eight flips/rotations of a square: output `(y, x)` reads source
/// `(a, b)` = optionally swapped `(x, y)`, then optionally mirrored per axis.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Dihedral {
    pub transpose: bool,
    pub flip_y: bool,
    pub flip_x: bool,
}

impl Dihedral {
    /// Horizontal flip.
    pub const HFLIP: Dihedral = Dihedral {
        transpose: false,
        flip_y: false,
        flip_x: true,
    };
    /// Vertical flip.
    pub const VFLIP: Dihedral = Dihedral {
        transpose: false,
        flip_y: true,
        flip_x: false,
    };
    /// Counter-clockwise quarter turn (numpy's `rot90`).
    pub const ROT90: Dihedral = Dihedral {
        transpose: true,
        flip_y: false,
        flip_x: true,
    };

    fn map(self, y: i64, x: i64, size: i64) -> (i64, i64) {
        let (a, b) = if self.transpose { (x, y) } else { (y, x) };
        let a = if self.flip_y { size - 1 - a } else { a };
        let b = if self.flip_x { size - 1 - b } else { b };
        (a, b)
    }

    /// The transform equal to applying `self` to the image, then `next`.
    pub fn then(self, next: Dihedral) -> Dihedral {
        let all = (0..8).map(|bits| Dihedral {
            transpose: bits & 4 != 0,
            flip_y: bits & 2 != 0,
            flip_x: bits & 1 != 0,
        });
        let points = [(0, 0), (0, 1), (1, 0), (2, 1), (1, 2)];
        all.into_iter()
            .find(|d| {
                points.iter().all(|&(y, x)| {
                    let (a, b) = next.map(y, x, 3);
                    d.map(y, x, 3) == self.map(a, b, 3)
                })
            })
            .unwrap_or_default()
    }

    /// How a `size`-square output walks a source of row width `width_px` starting at
    /// `(top, left)`.
    pub fn view(self, size: u32, width_px: u32, top: u32, left: u32) -> SourceView {
        let (s, w) = (i64::from(size), i64::from(width_px));
        let origin = i64::from(top) * w
            + i64::from(left)
            + if self.flip_y { (s - 1) * w } else { 0 }
            + if self.flip_x { s - 1 } else { 0 };
        let step_a = if self.flip_y { -w } else { w };
        let step_b = if self.flip_x { -1 } else { 1 };
        let (dy, dx) = if self.transpose {
            (step_b, step_a)
        } else {
            (step_a, step_b)
        };
        SourceView { origin, dy, dx }
    }
}

/// Output pixel `(y, x)` reads source pixel index `origin + y * dy + x * dx`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SourceView {
    pub origin: i64,
    pub dy: i64,
    pub dx: i64,
}

/// Per-channel tables from a byte to the value the model sees (tone change and
/// normalisation fused).
pub type NormLut = [[f32; 256]; 3];

/// Writes `size`² pixels of `src`, walked by `view`, as three normalised planes (CHW).
pub fn write_chw(src: &Pixels, view: SourceView, size: u32, lut: &NormLut, out: &mut [f32]) {
    let plane = (size * size) as usize;
    let (red, rest) = out.split_at_mut(plane);
    let (green, blue) = rest.split_at_mut(plane);
    let s = size as usize;
    let data = src.as_raw();
    let grey = src.channels() == 1;
    for y in 0..s {
        let row_start = view.origin + y as i64 * view.dy;
        let range = y * s..(y + 1) * s;
        let rows = red[range.clone()]
            .iter_mut()
            .zip(&mut green[range.clone()])
            .zip(&mut blue[range]);
        for (x, ((r, g), b)) in rows.enumerate() {
            let index = (row_start + x as i64 * view.dx) as usize;
            let (vr, vg, vb) = if grey {
                let v = usize::from(data[index]);
                (v, v, v)
            } else {
                let at = 3 * index;
                (
                    usize::from(data[at]),
                    usize::from(data[at + 1]),
                    usize::from(data[at + 2]),
                )
            };
            *r = lut[0][vr];
            *g = lut[1][vg];
            *b = lut[2][vb];
        }
    }
}

/// Writes `size`² mask values walked by `view`.
pub fn write_mask(src: &[u8], view: SourceView, size: u32, out: &mut [u8]) {
    let s = size as usize;
    for (y, row) in out.chunks_exact_mut(s).enumerate() {
        let row_start = view.origin + y as i64 * view.dy;
        for (x, value) in row.iter_mut().enumerate() {
            *value = src[(row_start + x as i64 * view.dx) as usize];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dihedral_composition_matches_applying_in_turn() {
        let size = 4u32;
        let source: Vec<u8> = (0..size * size).map(|v| v as u8).collect();
        let apply = |d: Dihedral, src: &[u8]| {
            let mut out = vec![0u8; src.len()];
            write_mask(src, d.view(size, size, 0, 0), size, &mut out);
            out
        };
        let ops = [Dihedral::HFLIP, Dihedral::VFLIP, Dihedral::ROT90];
        for first in ops {
            for second in ops {
                let stepwise = apply(second, &apply(first, &source));
                assert_eq!(apply(first.then(second), &source), stepwise);
            }
        }
        // numpy.rot90 of [[0, 1], [2, 3]] is [[1, 3], [0, 2]].
        let mut out = vec![0u8; 4];
        write_mask(&[0, 1, 2, 3], Dihedral::ROT90.view(2, 2, 0, 0), 2, &mut out);
        assert_eq!(out, [1, 3, 0, 2]);
    }

    #[test]
    fn grey_and_rgb_images_write_the_same_planes() {
        let grey = GrayImage::from_fn(6, 5, |x, y| image::Luma([(x * 40 + y) as u8]));
        let rgb = Pixels::Gray(grey.clone()).to_rgb8();
        let lut: NormLut = [std::array::from_fn(|v| v as f32); 3];
        let view = Dihedral::ROT90.view(4, 6, 1, 1);
        let (mut a, mut b) = (vec![0.0; 48], vec![0.0; 48]);
        write_chw(&Pixels::Gray(grey), view, 4, &lut, &mut a);
        write_chw(&Pixels::Rgb(rgb), view, 4, &lut, &mut b);
        assert_eq!(a, b);
        // Quarter turn of the 4x4 crop at (1, 1): output (0, 0) reads crop (0, 3) = (x 4, y 1).
        assert_eq!(a[0], 161.0);
    }

    #[test]
    fn resizing_grey_and_rgb_agree() {
        let grey = GrayImage::from_fn(60, 40, |x, y| image::Luma([((x * 4) ^ y) as u8]));
        let crop = Some(CropBox {
            left: 5,
            top: 3,
            width: 40,
            height: 30,
        });
        let a = Pixels::Gray(grey.clone()).resized(crop, 16, 16).unwrap();
        let b = Pixels::Rgb(Pixels::Gray(grey).to_rgb8())
            .resized(crop, 16, 16)
            .unwrap();
        assert_eq!(a.to_rgb8(), b.to_rgb8());
        assert_eq!(a.rotated(7.0).to_rgb8(), b.rotated(7.0).to_rgb8());
    }
}
