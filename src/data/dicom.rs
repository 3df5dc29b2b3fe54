//! DICOM decoding through the dicom-rs crates (`dicom-object`, `dicom-pixeldata`):
//! single-frame images in the native, deflated, RLE and JPEG (baseline, extended, lossless)
//! transfer syntaxes; MONOCHROME1/2 with RescaleSlope/Intercept applied and the first
//! WindowCenter/WindowWidth kept; RGB and YBR_FULL colour. Anything else (JPEG 2000,
//! JPEG-LS, multi-frame, palette colour) is refused with a message naming the file.

use std::path::Path;

use dicom_dictionary_std::tags;
use dicom_pixeldata::{PhotometricInterpretation, PixelDecoder, PixelRepresentation};

use super::DataError;
use super::decode::{FileFormat, RawImage};
use super::window::Window;

/// Transfer syntaxes this build decodes, by UID.
const DECODABLE: &[&str] = &[
    "1.2.840.10008.1.2",
    "1.2.840.10008.1.2.1",
    "1.2.840.10008.1.2.2",
    "1.2.840.10008.1.2.1.99",
    "1.2.840.10008.1.2.5",
    "1.2.840.10008.1.2.4.50",
    "1.2.840.10008.1.2.4.51",
    "1.2.840.10008.1.2.4.57",
    "1.2.840.10008.1.2.4.70",
];

/// Names of common transfer syntaxes for messages.
const NAMES: &[(&str, &str)] = &[
    ("1.2.840.10008.1.2.4.80", "JPEG-LS Lossless"),
    ("1.2.840.10008.1.2.4.81", "JPEG-LS Lossy"),
    ("1.2.840.10008.1.2.4.90", "JPEG 2000 Lossless"),
    ("1.2.840.10008.1.2.4.91", "JPEG 2000"),
    ("1.2.840.10008.1.2.4.92", "JPEG 2000 Part 2 Lossless"),
    ("1.2.840.10008.1.2.4.93", "JPEG 2000 Part 2"),
    ("1.2.840.10008.1.2.4.100", "MPEG2 video"),
    ("1.2.840.10008.1.2.4.102", "MPEG-4 video"),
    ("1.2.840.10008.1.2.4.110", "JPEG XL Lossless"),
    ("1.2.840.10008.1.2.4.112", "JPEG XL"),
    (
        "1.2.840.10008.1.2.4.201",
        "High-Throughput JPEG 2000 Lossless",
    ),
    ("1.2.840.10008.1.2.4.203", "High-Throughput JPEG 2000"),
];

/// Whether this build decodes pixel data in the given transfer syntax.
pub fn transfer_syntax_supported(uid: &str) -> bool {
    DECODABLE.contains(&clean_uid(uid))
}

fn clean_uid(uid: &str) -> &str {
    uid.trim_end_matches(['\0', ' '])
}

/// Decodes a single-frame DICOM file to modality values.
pub fn decode_dicom(path: &Path) -> Result<RawImage, DataError> {
    let unsupported = |reason: String| DataError::UnsupportedDicom {
        path: path.to_owned(),
        reason,
    };
    let obj = dicom_object::OpenFileOptions::new()
        .open_file(path)
        .map_err(|e| open_error(path, &with_causes(&e)))?;
    let uid = clean_uid(obj.meta().transfer_syntax()).to_owned();
    if !transfer_syntax_supported(&uid) {
        let name = NAMES
            .iter()
            .find(|(u, _)| *u == uid)
            .map_or("an unknown transfer syntax", |(_, n)| n);
        return Err(unsupported(format!(
            "transfer syntax {name} ({uid}) is not supported; convert the file to an uncompressed or JPEG baseline transfer syntax"
        )));
    }
    if obj.get(tags::PIXEL_DATA).is_none() {
        return Err(DataError::NotAnImage {
            path: path.to_owned(),
            reason: "a DICOM file without pixel data".to_owned(),
        });
    }
    let frames = obj
        .get(tags::NUMBER_OF_FRAMES)
        .and_then(|e| e.to_int::<i64>().ok())
        .unwrap_or(1);
    if frames > 1 {
        return Err(unsupported(format!(
            "multi-frame image with {frames} frames; export single frames"
        )));
    }
    let number = |tag| {
        obj.get(tag)
            .and_then(|e| e.to_int::<u32>().ok())
            .unwrap_or(1)
    };
    let (rows, columns) = (number(tags::ROWS), number(tags::COLUMNS));
    let bytes = u64::from(rows)
        * u64::from(columns)
        * u64::from(number(tags::SAMPLES_PER_PIXEL))
        * u64::from(number(tags::BITS_ALLOCATED).div_ceil(8));
    super::decode::check_decoded_size(columns, rows, bytes, path)?;
    if let Some(fragments) = obj
        .get(tags::PIXEL_DATA)
        .and_then(|e| e.value().fragments())
    {
        check_embedded_jpeg(fragments, columns, rows, path)?;
    }
    let pixel = obj
        .decode_pixel_data()
        .map_err(|e| decode_error(path, &with_causes(&e)))?;
    let (width, height) = (pixel.columns(), pixel.rows());
    let pi = pixel.photometric_interpretation().clone();
    let mut raw = RawImage {
        width,
        height,
        channels: 1,
        values: Vec::new(),
        bit_depth: pixel.bits_stored().clamp(1, 32) as u8,
        value_range: (0.0, 255.0),
        dicom_window: first_window(&pixel),
        rescaled: false,
        invert: pi == PhotometricInterpretation::Monochrome1,
        format: FileFormat::Dicom,
    };
    match pixel.samples_per_pixel() {
        1 if pi.is_monochrome() => mono_values(path, &pixel, &mut raw)?,
        3 => {
            raw.channels = 3;
            raw.values = colour_values(&pixel, &pi).map_err(unsupported)?;
            raw.value_range = (
                0.0,
                2f64.powi(i32::from(raw.bit_depth.min(16))) as f32 - 1.0,
            );
        }
        spp => {
            return Err(unsupported(format!(
                "photometric interpretation {pi} with {spp} samples per pixel"
            )));
        }
    }
    let expected = width as usize * height as usize * usize::from(raw.channels);
    if raw.values.len() != expected {
        return Err(DataError::Truncated {
            path: path.to_owned(),
            reason: format!(
                "{} pixel values for a {width}x{height} image",
                raw.values.len()
            ),
        });
    }
    Ok(raw)
}

/// The first WindowCenter/WindowWidth pair, when valid.
fn first_window(pixel: &dicom_pixeldata::DecodedPixelData<'_>) -> Option<Window> {
    pixel
        .window()
        .ok()
        .flatten()
        .and_then(|w| w.first().copied())
        .filter(|w| w.width.is_finite() && w.center.is_finite() && w.width > 0.0)
        .map(|w| Window {
            center: w.center as f32,
            width: w.width as f32,
        })
}

/// Modality values (rescale applied) and their possible range.
fn mono_values(
    path: &Path,
    pixel: &dicom_pixeldata::DecodedPixelData<'_>,
    raw: &mut RawImage,
) -> Result<(), DataError> {
    let rescale = pixel
        .rescale()
        .ok()
        .and_then(|r| r.first().copied())
        .map_or((1.0, 0.0), |r| (r.slope, r.intercept));
    raw.rescaled = rescale != (1.0, 0.0);
    raw.values = pixel
        .to_vec::<f32>()
        .map_err(|e| decode_error(path, &with_causes(&e)))?;
    let bits = i32::from(pixel.bits_stored().clamp(1, 31));
    let (lo, hi) = match pixel.pixel_representation() {
        PixelRepresentation::Signed => (-(2f64.powi(bits - 1)), 2f64.powi(bits - 1) - 1.0),
        PixelRepresentation::Unsigned => (0.0, 2f64.powi(bits) - 1.0),
    };
    let (a, b) = (lo * rescale.0 + rescale.1, hi * rescale.0 + rescale.1);
    raw.value_range = (a.min(b) as f32, a.max(b) as f32);
    Ok(())
}

/// RGB values of a colour image (planes interleaved, YBR_FULL converted).
fn colour_values(
    pixel: &dicom_pixeldata::DecodedPixelData<'_>,
    pi: &PhotometricInterpretation,
) -> Result<Vec<f32>, String> {
    let mut values: Vec<f32> = match pixel.bits_allocated() {
        8 => pixel
            .frame_data(0)
            .map_err(|e| e.to_string())?
            .iter()
            .map(|&v| f32::from(v))
            .collect(),
        16 => pixel
            .frame_data_ow(0)
            .map_err(|e| e.to_string())?
            .into_iter()
            .map(f32::from)
            .collect(),
        bits => return Err(format!("{bits} bits allocated per colour sample")),
    };
    if pixel.planar_configuration() == dicom_pixeldata::PlanarConfiguration::PixelFirst {
        values = interleave(&values);
    }
    match pi {
        PhotometricInterpretation::Rgb => {}
        PhotometricInterpretation::YbrFull => {
            let max = if pixel.bits_allocated() == 8 {
                255.0
            } else {
                65535.0
            };
            ybr_full_to_rgb(&mut values, max);
        }
        other => {
            return Err(format!(
                "photometric interpretation {other} is not supported"
            ));
        }
    }
    Ok(values)
}

/// Planes `RRR.. GGG.. BBB..` to pixels `RGB RGB ..`.
fn interleave(planar: &[f32]) -> Vec<f32> {
    let plane = planar.len() / 3;
    (0..plane)
        .flat_map(|i| [planar[i], planar[plane + i], planar[2 * plane + i]])
        .collect()
}

/// Full-range YCbCr (ITU-R BT.601, as DICOM's YBR_FULL) to RGB, in place.
fn ybr_full_to_rgb(values: &mut [f32], max: f32) {
    let half = (max + 1.0) / 2.0;
    for px in values.chunks_exact_mut(3) {
        let (y, cb, cr) = (px[0], px[1] - half, px[2] - half);
        px[0] = (y + 1.402 * cr).clamp(0.0, max);
        px[1] = (y - 0.344_136 * cb - 0.714_136 * cr).clamp(0.0, max);
        px[2] = (y + 1.772 * cb).clamp(0.0, max);
    }
}

/// Whether an error message says the data ended early.
pub fn looks_truncated(message: &str) -> bool {
    let lower = message.to_ascii_lowercase();
    [
        "eof",
        "end of file",
        "unexpected end",
        "failed to fill whole buffer",
    ]
    .iter()
    .any(|needle| lower.contains(needle))
}

/// An error with its chain of causes, `outer: inner: ...`.
fn with_causes(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

fn open_error(path: &Path, message: &str) -> DataError {
    if looks_truncated(message) {
        DataError::Truncated {
            path: path.to_owned(),
            reason: format!("the DICOM data ends early: {message}"),
        }
    } else {
        DataError::Decode {
            path: path.to_owned(),
            reason: format!("not a readable DICOM file: {message}"),
        }
    }
}

fn decode_error(path: &Path, message: &str) -> DataError {
    if message.starts_with("Unsupported") || message.starts_with("Unknown transfer") {
        DataError::UnsupportedDicom {
            path: path.to_owned(),
            reason: message.to_owned(),
        }
    } else if looks_truncated(message) {
        DataError::Truncated {
            path: path.to_owned(),
            reason: message.to_owned(),
        }
    } else {
        DataError::Decode {
            path: path.to_owned(),
            reason: format!("DICOM pixel data: {message}"),
        }
    }
}

/// Refuses encapsulated pixel data whose JPEG header declares another size than the DICOM
/// header: the JPEG decoder allocates what its own header says (fuzzing found a 3 KB file
/// that made it ask for gigabytes). Fragments that are not JPEG (RLE) are left alone.
fn check_embedded_jpeg(
    fragments: &[Vec<u8>],
    columns: u32,
    rows: u32,
    path: &Path,
) -> Result<(), DataError> {
    for fragment in fragments.iter().take(4) {
        let mut decoder = jpeg_decoder::Decoder::new(fragment.as_slice());
        if decoder.read_info().is_err() {
            continue;
        }
        let Some(info) = decoder.info() else {
            continue;
        };
        let (width, height) = (u32::from(info.width), u32::from(info.height));
        if (width, height) != (columns, rows) {
            return Err(DataError::Decode {
                path: path.to_owned(),
                reason: format!(
                    "the embedded JPEG is {width} x {height} pixels where the DICOM header says \
                     {columns} x {rows}"
                ),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn planes_interleave_and_gray_ybr_stays_gray() {
        assert_eq!(
            interleave(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]),
            vec![1.0, 3.0, 5.0, 2.0, 4.0, 6.0]
        );
        let mut px = vec![100.0, 128.0, 128.0];
        ybr_full_to_rgb(&mut px, 255.0);
        for v in px {
            assert!((v - 100.0).abs() < 1e-3);
        }
        assert!(transfer_syntax_supported("1.2.840.10008.1.2.1\0"));
        assert!(!transfer_syntax_supported("1.2.840.10008.1.2.4.90"));
    }
}
