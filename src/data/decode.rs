//! Decoding every supported file into what the pipeline needs: 8-bit RGB images (after
//! windowing for 16-bit and DICOM), masks of class indices, and the stored values
//! themselves ([`RawImage`]) for the window/level control and for checks.
//!
//! Formats: JPEG, PNG (8/16-bit; gray, RGB, RGBA, palette), TIFF (8/16-bit, float), BMP,
//! WebP through the `image` crate with the EXIF orientation applied, and DICOM through
//! [`super::dicom`]. The format is recognised from the content, not the file name.

use std::path::Path;

use image::{DynamicImage, GrayImage, ImageDecoder, ImageError, ImageFormat, RgbImage};

use super::DataError;
use super::mask::{self, MaskEncoding};
use super::window::{self, Window, WindowSetting};

/// A file format the data layer reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum FileFormat {
    Png,
    Jpeg,
    Tiff,
    Bmp,
    WebP,
    Dicom,
}

impl FileFormat {
    /// Recognises the format from the first bytes of a file (the DICOM "DICM" magic at
    /// offset 128, else the image signatures); `None` when it is none of ours.
    pub fn sniff(bytes: &[u8]) -> Option<FileFormat> {
        if dicom_magic(bytes) {
            return Some(FileFormat::Dicom);
        }
        match image::guess_format(bytes).ok()? {
            ImageFormat::Png => Some(FileFormat::Png),
            ImageFormat::Jpeg => Some(FileFormat::Jpeg),
            ImageFormat::Tiff => Some(FileFormat::Tiff),
            ImageFormat::Bmp => Some(FileFormat::Bmp),
            ImageFormat::WebP => Some(FileFormat::WebP),
            _ => None,
        }
    }

    /// Whether a file name looks like an image of a supported format (by extension).
    pub fn has_image_extension(path: &Path) -> bool {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        ext.is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.as_str()))
    }
}

/// The file extensions (lower case) of the image formats read.
pub const IMAGE_EXTENSIONS: &[&str] = &[
    "png", "jpg", "jpeg", "jpe", "jfif", "tif", "tiff", "bmp", "webp", "dcm", "dicom",
];

/// Whether the bytes carry the DICOM file magic "DICM" after the 128-byte preamble.
fn dicom_magic(bytes: &[u8]) -> bool {
    bytes.get(128..132) == Some(b"DICM".as_slice())
}

/// The stored values of one image, before any windowing.
#[derive(Clone, Debug, PartialEq)]
pub struct RawImage {
    /// Width in pixels (after the EXIF orientation is applied).
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// 1 (gray) or 3 (RGB); alpha is dropped.
    pub channels: u8,
    /// `width * height * channels` values, row-major, channels interleaved. For DICOM these
    /// are modality values (RescaleSlope/Intercept applied, e.g. Hounsfield units).
    pub values: Vec<f32>,
    /// Bits per stored sample: 8, 16 (or DICOM's BitsStored), 32 for float TIFF.
    pub bit_depth: u8,
    /// The range the stored values can take (`[0, 255]`, `[0, 65535]`, DICOM's stored range
    /// after rescale); [`RawImage::data_range`] gives the range actually present.
    pub value_range: (f32, f32),
    /// The first WindowCenter/WindowWidth pair of a DICOM file.
    pub dicom_window: Option<Window>,
    /// Whether a modality rescale other than identity was applied (DICOM).
    pub rescaled: bool,
    /// MONOCHROME1: low values are bright; the 8-bit rendering is inverted.
    pub invert: bool,
    /// The file's format.
    pub format: FileFormat,
}

impl RawImage {
    /// The smallest and largest finite value present, or `None` when there is none.
    pub fn data_range(&self) -> Option<(f32, f32)> {
        self.values
            .iter()
            .copied()
            .filter(|v| v.is_finite())
            .fold(None, |acc, v| match acc {
                None => Some((v, v)),
                Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
            })
    }

    /// Whether the 8-bit rendering is the stored values unchanged (8-bit data without a
    /// DICOM window or rescale): such images are never windowed.
    pub fn passes_through(&self) -> bool {
        self.bit_depth <= 8 && self.dicom_window.is_none() && !self.rescaled
    }
}

/// Decodes an image file to 8-bit RGB, applying `window` to 16-bit and DICOM data. 8-bit
/// images pass through unchanged (gray is replicated, alpha dropped).
pub fn load_rgb8(path: &Path, window: &WindowSetting) -> Result<RgbImage, DataError> {
    let bytes = read_bytes(path)?;
    match decode_bytes(&bytes, path)? {
        Decoded::Image(image) if is_8bit(&image) => Ok(image.into_rgb8()),
        Decoded::Image(image) => Ok(window::render_rgb8(
            &raw_from_dynamic(image, format_of(&bytes)),
            window,
        )),
        Decoded::Dicom(raw) => Ok(window::render_rgb8(&raw, window)),
    }
}

/// Decodes a mask file to one class index per pixel. The encoding is guessed per file: a
/// mask holding only 0 and 255 is read as binary (255 becomes 1), anything else as class
/// indices. Prefer [`load_mask_with`] and the data set's detected encoding.
pub fn load_mask(path: &Path) -> Result<GrayImage, DataError> {
    let (width, height, values) = load_mask_values(path)?;
    let encoding = match mask::classify_values(&mask::distinct_values(&values)) {
        Some(MaskEncoding::Binary0255) => MaskEncoding::Binary0255,
        _ => MaskEncoding::ClassIndex { classes: 256 },
    };
    mask_image(path, width, height, &values, encoding)
}

/// Decodes a mask file to one class index per pixel under a known encoding (binary 0/255
/// maps 255 to 1; class indices are kept).
pub fn load_mask_with(path: &Path, encoding: MaskEncoding) -> Result<GrayImage, DataError> {
    let (width, height, values) = load_mask_values(path)?;
    mask_image(path, width, height, &values, encoding)
}

fn mask_image(
    path: &Path,
    width: u32,
    height: u32,
    values: &[u16],
    encoding: MaskEncoding,
) -> Result<GrayImage, DataError> {
    let mapped: Vec<u8> = values.iter().map(|&v| encoding.class_of(v)).collect();
    GrayImage::from_raw(width, height, mapped).ok_or_else(|| DataError::Mask {
        path: path.to_owned(),
        reason: "the mask's size does not match its data".to_owned(),
    })
}

/// Decodes a mask file to its stored values (`width`, `height`, one value per pixel). Gray
/// masks of 8 or 16 bits are read as they are; an RGB mask is accepted when it is gray.
pub fn load_mask_values(path: &Path) -> Result<(u32, u32, Vec<u16>), DataError> {
    let bytes = read_bytes(path)?;
    mask_values_of(path, decode_bytes(&bytes, path)?)
}

/// The stored values of an already decoded mask file (see [`load_mask_values`]).
pub fn mask_values_of(path: &Path, decoded: Decoded) -> Result<(u32, u32, Vec<u16>), DataError> {
    let image = match decoded {
        Decoded::Image(image) => image,
        Decoded::Dicom(raw) => return mask_from_raw(path, &raw),
    };
    let (width, height) = (image.width(), image.height());
    let mask_err = |reason: &str| DataError::Mask {
        path: path.to_owned(),
        reason: reason.to_owned(),
    };
    let values: Vec<u16> = match image {
        DynamicImage::ImageLuma8(img) => img.into_raw().into_iter().map(u16::from).collect(),
        DynamicImage::ImageLumaA8(img) => img.pixels().map(|p| u16::from(p.0[0])).collect(),
        DynamicImage::ImageLuma16(img) => img.into_raw(),
        DynamicImage::ImageLumaA16(img) => img.pixels().map(|p| p.0[0]).collect(),
        DynamicImage::ImageRgb8(img) => gray_of(img.pixels().map(|p| p.0.map(u16::from)))
            .ok_or_else(|| mask_err(COLOUR_MASK))?,
        DynamicImage::ImageRgba8(img) => gray_of(
            img.pixels()
                .map(|p| [p.0[0], p.0[1], p.0[2]].map(u16::from)),
        )
        .ok_or_else(|| mask_err(COLOUR_MASK))?,
        DynamicImage::ImageRgb16(img) => {
            gray_of(img.pixels().map(|p| p.0)).ok_or_else(|| mask_err(COLOUR_MASK))?
        }
        DynamicImage::ImageRgba16(img) => gray_of(img.pixels().map(|p| [p.0[0], p.0[1], p.0[2]]))
            .ok_or_else(|| mask_err(COLOUR_MASK))?,
        _ => return Err(mask_err("floating-point masks are not supported")),
    };
    Ok((width, height, values))
}

const COLOUR_MASK: &str =
    "a colour mask (its red, green and blue differ); save masks as one channel of class indices";

fn gray_of(pixels: impl Iterator<Item = [u16; 3]>) -> Option<Vec<u16>> {
    pixels
        .map(|[r, g, b]| (r == g && g == b).then_some(r))
        .collect()
}

fn mask_from_raw(path: &Path, raw: &RawImage) -> Result<(u32, u32, Vec<u16>), DataError> {
    let ok = raw.channels == 1
        && raw
            .values
            .iter()
            .all(|v| v.fract() == 0.0 && (0.0..=65535.0).contains(v));
    if !ok {
        return Err(DataError::Mask {
            path: path.to_owned(),
            reason: "a DICOM mask must be one channel of whole non-negative values".to_owned(),
        });
    }
    let values = raw.values.iter().map(|&v| v as u16).collect();
    Ok((raw.width, raw.height, values))
}

/// Decodes any supported file to its stored values, with the DICOM window when present.
pub fn decode_raw(path: &Path) -> Result<RawImage, DataError> {
    let bytes = read_bytes(path)?;
    match decode_bytes(&bytes, path)? {
        Decoded::Image(image) => Ok(raw_from_dynamic(image, format_of(&bytes))),
        Decoded::Dicom(raw) => Ok(raw),
    }
}

/// A decoded file: an image from the `image` crate, or a DICOM file's values.
#[derive(Debug)]
pub enum Decoded {
    /// JPEG, PNG, TIFF, BMP or WebP, EXIF orientation applied.
    Image(DynamicImage),
    /// A single-frame DICOM image.
    Dicom(RawImage),
}

impl Decoded {
    /// Width and height in pixels.
    pub fn dimensions(&self) -> (u32, u32) {
        match self {
            Decoded::Image(image) => (image.width(), image.height()),
            Decoded::Dicom(raw) => (raw.width, raw.height),
        }
    }
}

/// Reads a whole file; an empty file is an error of its own.
pub fn read_bytes(path: &Path) -> Result<Vec<u8>, DataError> {
    let bytes = std::fs::read(path).map_err(|source| DataError::Read {
        path: path.to_owned(),
        source,
    })?;
    if bytes.is_empty() {
        return Err(DataError::Empty {
            path: path.to_owned(),
        });
    }
    Ok(bytes)
}

/// Decodes a file's bytes: recognises the format from the content, checks that JPEG and PNG
/// files are complete, decodes, applies the EXIF orientation. A decoder that panics on a
/// damaged file (the DICOM RLE decoder does on some, `tests/fixtures/hostile/`) gives a
/// decode error naming the file, as any other damage does.
pub fn decode_bytes(bytes: &[u8], path: &Path) -> Result<Decoded, DataError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        decode_unguarded(bytes, path)
    }))
    .unwrap_or_else(|panic| {
        let message = panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        Err(DataError::Decode {
            path: path.to_owned(),
            reason: format!("the decoder failed on damaged data: {message}"),
        })
    })
}

fn decode_unguarded(bytes: &[u8], path: &Path) -> Result<Decoded, DataError> {
    if bytes.is_empty() {
        return Err(DataError::Empty {
            path: path.to_owned(),
        });
    }
    let dicom_by_name = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("dcm") || e.eq_ignore_ascii_case("dicom"));
    let format = match FileFormat::sniff(bytes) {
        Some(format) => format,
        None if dicom_by_name => FileFormat::Dicom,
        None => {
            return Err(DataError::NotAnImage {
                path: path.to_owned(),
                reason: not_an_image_reason(bytes),
            });
        }
    };
    if format == FileFormat::Dicom {
        // Before the parser reserves what a damaged length field declares.
        use super::dicom_lengths::{Damage, damage};
        match damage(bytes) {
            Some(Damage::LengthPastEnd(problem)) => {
                return Err(DataError::Truncated {
                    path: path.to_owned(),
                    reason: format!("the DICOM file ends inside an element: {problem}"),
                });
            }
            Some(Damage::Unreadable(problem)) => {
                return Err(DataError::Decode {
                    path: path.to_owned(),
                    reason: format!("a damaged DICOM file: {problem}"),
                });
            }
            None => {}
        }
        return match super::dicom::decode_dicom(path) {
            // Named .dcm but without the DICOM magic and unreadable as DICOM.
            Err(DataError::Decode { .. } | DataError::Truncated { .. }) if !dicom_magic(bytes) => {
                Err(DataError::NotAnImage {
                    path: path.to_owned(),
                    reason: format!("named as DICOM but {}", not_an_image_reason(bytes)),
                })
            }
            other => other.map(Decoded::Dicom),
        };
    }
    if let Some(reason) = missing_trailer(format, bytes) {
        return Err(DataError::Truncated {
            path: path.to_owned(),
            reason,
        });
    }
    decode_image(bytes, path).map(Decoded::Image)
}

fn decode_image(bytes: &[u8], path: &Path) -> Result<DynamicImage, DataError> {
    let image_err = |err: ImageError| classify_image_error(err, path);
    let reader = image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|source| DataError::Read {
            path: path.to_owned(),
            source,
        })?;
    let mut decoder = reader.into_decoder().map_err(image_err)?;
    let (width, height) = decoder.dimensions();
    check_decoded_size(width, height, decoder.total_bytes(), path)?;
    // A damaged EXIF block only loses the orientation, not the image.
    let orientation = decoder
        .orientation()
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut image = DynamicImage::from_decoder(decoder).map_err(image_err)?;
    image.apply_orientation(orientation);
    Ok(image)
}

/// The most bytes one image may take decoded (16,384 px square in 8-bit RGB is 768 MiB): a
/// header that declares more is refused before anything is allocated, so a small file that
/// claims billions of pixels (a decompression bomb, or damage) cannot exhaust the memory.
pub const MAX_DECODED_BYTES: u64 = 1 << 30;

/// Refuses an image of `width` x `height` pixels whose decoded pixels take `bytes`, when
/// that passes [`MAX_DECODED_BYTES`].
pub(crate) fn check_decoded_size(
    width: u32,
    height: u32,
    bytes: u64,
    path: &Path,
) -> Result<(), DataError> {
    if bytes <= MAX_DECODED_BYTES {
        return Ok(());
    }
    Err(DataError::Decode {
        path: path.to_owned(),
        reason: format!(
            "the image declares {width} x {height} pixels ({:.1} GiB decoded), more than the \
             {} GiB one image may take: the file is damaged or not meant to be decoded whole",
            bytes as f64 / f64::from(1u32 << 30),
            MAX_DECODED_BYTES >> 30
        ),
    })
}

fn classify_image_error(err: ImageError, path: &Path) -> DataError {
    let path = path.to_owned();
    let reason = err.to_string();
    let eof = match &err {
        ImageError::IoError(io) => io.kind() == std::io::ErrorKind::UnexpectedEof,
        _ => super::dicom::looks_truncated(&reason),
    };
    if eof {
        DataError::Truncated { path, reason }
    } else {
        DataError::Decode { path, reason }
    }
}

/// JPEG must end (after its last start-of-scan) with an end-of-image marker and PNG with an
/// IEND chunk; a file cut short misses them even when a lenient decoder would fill in gray.
fn missing_trailer(format: FileFormat, bytes: &[u8]) -> Option<String> {
    match format {
        FileFormat::Jpeg => {
            if bytes.ends_with(&[0xFF, 0xD9]) {
                return None;
            }
            let last_marker = |marker: u8| bytes.windows(2).rposition(|w| w == [0xFF, marker]);
            let eoi = last_marker(0xD9);
            let sos = last_marker(0xDA);
            match (sos, eoi) {
                (Some(s), Some(e)) if e > s => None,
                (None, Some(_)) => None,
                _ => Some("the JPEG end-of-image marker is missing".to_owned()),
            }
        }
        FileFormat::Png => {
            let tail = &bytes[bytes.len().saturating_sub(4096)..];
            if tail.windows(4).any(|w| w == b"IEND") {
                None
            } else {
                Some("the PNG IEND chunk is missing".to_owned())
            }
        }
        _ => None,
    }
}

fn not_an_image_reason(bytes: &[u8]) -> String {
    let head = &bytes[..bytes.len().min(512)];
    let text = head
        .iter()
        .all(|&b| b.is_ascii_graphic() || b.is_ascii_whitespace() || b >= 0x80);
    if text {
        "it holds text".to_owned()
    } else {
        "unknown content".to_owned()
    }
}

fn format_of(bytes: &[u8]) -> FileFormat {
    FileFormat::sniff(bytes).unwrap_or(FileFormat::Dicom)
}

fn is_8bit(image: &DynamicImage) -> bool {
    matches!(
        image,
        DynamicImage::ImageLuma8(_)
            | DynamicImage::ImageLumaA8(_)
            | DynamicImage::ImageRgb8(_)
            | DynamicImage::ImageRgba8(_)
    )
}

/// The stored values of a decoded image (alpha dropped, gray kept as one channel).
pub fn raw_from_dynamic(image: DynamicImage, format: FileFormat) -> RawImage {
    let (width, height) = (image.width(), image.height());
    let (channels, bit_depth, values): (u8, u8, Vec<f32>) = match image {
        DynamicImage::ImageLuma8(img) => {
            (1, 8, img.into_raw().into_iter().map(f32::from).collect())
        }
        DynamicImage::ImageLumaA8(img) => (1, 8, img.pixels().map(|p| f32::from(p.0[0])).collect()),
        DynamicImage::ImageLuma16(img) => {
            (1, 16, img.into_raw().into_iter().map(f32::from).collect())
        }
        DynamicImage::ImageLumaA16(img) => {
            (1, 16, img.pixels().map(|p| f32::from(p.0[0])).collect())
        }
        DynamicImage::ImageRgb16(img) => {
            (3, 16, img.into_raw().into_iter().map(f32::from).collect())
        }
        DynamicImage::ImageRgba16(img) => (
            3,
            16,
            img.pixels()
                .flat_map(|p| [p.0[0], p.0[1], p.0[2]].map(f32::from))
                .collect(),
        ),
        DynamicImage::ImageRgb32F(img) => (3, 32, img.into_raw()),
        DynamicImage::ImageRgba32F(img) => (
            3,
            32,
            img.pixels()
                .flat_map(|p| [p.0[0], p.0[1], p.0[2]])
                .collect(),
        ),
        other => (
            3,
            8,
            other
                .to_rgb8()
                .into_raw()
                .into_iter()
                .map(f32::from)
                .collect(),
        ),
    };
    let mut raw = RawImage {
        width,
        height,
        channels,
        values,
        bit_depth,
        value_range: (0.0, if bit_depth == 16 { 65535.0 } else { 255.0 }),
        dicom_window: None,
        rescaled: false,
        invert: false,
        format,
    };
    if bit_depth == 32 {
        raw.value_range = raw.data_range().unwrap_or((0.0, 1.0));
    }
    raw
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sixteen_bit_png_keeps_its_values_and_eight_bit_passes_through() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("deep.png");
        let img = image::ImageBuffer::<image::Luma<u16>, _>::from_fn(40, 40, |x, y| {
            image::Luma([(x * 1000 + y) as u16])
        });
        img.save(&path).unwrap();
        let raw = decode_raw(&path).unwrap();
        assert_eq!((raw.bit_depth, raw.channels), (16, 1));
        assert_eq!(raw.data_range(), Some((0.0, 39039.0)));
        let rgb = load_rgb8(
            &path,
            &WindowSetting::Manual {
                center: 20000.0,
                width: 2.0,
            },
        )
        .unwrap();
        assert_eq!(rgb.get_pixel(0, 0).0, [0, 0, 0]);
        assert_eq!(rgb.get_pixel(39, 0).0, [255, 255, 255]);

        let path8 = dir.path().join("rgba.png");
        image::RgbaImage::from_pixel(33, 35, image::Rgba([10, 20, 30, 0]))
            .save(&path8)
            .unwrap();
        let rgb = load_rgb8(
            &path8,
            &WindowSetting::Manual {
                center: 0.0,
                width: 1.0,
            },
        )
        .unwrap();
        assert_eq!(rgb.get_pixel(5, 5).0, [10, 20, 30]);
    }

    #[test]
    fn masks_map_0_255_to_binary_and_reject_colour() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.png");
        GrayImage::from_fn(8, 8, |x, _| image::Luma([if x < 4 { 0 } else { 255 }]))
            .save(&path)
            .unwrap();
        let mask = load_mask(&path).unwrap();
        assert_eq!(mask.get_pixel(0, 0).0, [0]);
        assert_eq!(mask.get_pixel(7, 0).0, [1]);
        let colour = dir.path().join("c.png");
        image::RgbImage::from_fn(8, 8, |x, _| image::Rgb([x as u8, 0, 0]))
            .save(&colour)
            .unwrap();
        let err = load_mask(&colour).unwrap_err();
        assert!(matches!(err, DataError::Mask { .. }), "{err}");
        assert!(err.to_string().ends_with("c.png"), "{err}");
    }

    #[test]
    fn empty_text_and_truncated_files_are_told_apart() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.png");
        std::fs::write(&empty, b"").unwrap();
        assert!(matches!(decode_raw(&empty), Err(DataError::Empty { .. })));
        let text = dir.path().join("notes.png");
        std::fs::write(&text, b"hello, not an image").unwrap();
        assert!(matches!(
            decode_raw(&text),
            Err(DataError::NotAnImage { .. })
        ));
        let png = dir.path().join("cut.png");
        image::RgbImage::from_fn(64, 64, |x, y| image::Rgb([x as u8, y as u8, 7]))
            .save(&png)
            .unwrap();
        let bytes = std::fs::read(&png).unwrap();
        std::fs::write(&png, &bytes[..bytes.len() / 2]).unwrap();
        assert!(matches!(decode_raw(&png), Err(DataError::Truncated { .. })));
    }
}
