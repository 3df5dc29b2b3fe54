//! Decoding against reference readers: the set-up's 16-bit TIFF (tifffile) and DICOM files
//! (pydicom 3.0.2: modality values, window tags), DICOM files this build refuses, EXIF
//! orientation, palette and 16-bit files written by PIL/tifffile. The reference values are
//! computed by `tests/fixtures/data_ingest/reference.py` with the venv's Python, once per run.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests may panic on failure.

mod common;
mod data_support;

use std::path::PathBuf;

use data_support::{Reference, reference_dir};

use transfer_workbench::data::DataError;
use transfer_workbench::data::decode::{FileFormat, decode_raw, load_rgb8};
use transfer_workbench::data::window::{Window, WindowSetting};

fn sample(relative: &str) -> PathBuf {
    transfer_workbench::assets::require(format!("samples/{relative}"), "the sample images")
        .expect("run ./workbench.sh setup first")
}

fn assert_close(got: f32, want: f32, what: &str) {
    assert!((got - want).abs() <= 1e-3, "{what}: {got} != {want}");
}

#[test]
fn img2d_tif_decodes_to_its_uint16_values_and_auto_window_is_the_percentiles() {
    let reference = Reference::load("img2d");
    assert_eq!(reference.facts["dtype"], "uint16");
    let raw = decode_raw(&sample("tiff/img2d.tif")).unwrap();
    assert_eq!((raw.bit_depth, raw.format), (16, FileFormat::Tiff));
    assert_eq!(reference.compare(&raw), (0.0, 0.0));
    let (min, max) = raw.data_range().unwrap();
    assert_close(min, reference.f("min"), "min");
    assert_close(max, reference.f("max"), "max");
    assert_eq!(raw.value_range, (0.0, 65535.0));

    let window = WindowSetting::Auto.resolve(&raw);
    let (low, high) = window.range();
    assert_close(low, reference.f("p_low"), "0.5th percentile");
    assert_close(high, reference.f("p_high"), "99.5th percentile");
    // The 8-bit rendering saturates outside the window and is gray.
    let rgb = load_rgb8(&sample("tiff/img2d.tif"), &WindowSetting::Auto).unwrap();
    for (value, pixel) in raw.values.iter().zip(rgb.pixels()) {
        assert_eq!(pixel.0[0], window.apply_u8(*value));
        assert!(pixel.0[0] == pixel.0[1] && pixel.0[1] == pixel.0[2]);
        if *value <= low {
            assert_eq!(pixel.0[0], 0);
        }
        if *value >= high {
            assert_eq!(pixel.0[0], 255);
        }
    }
}

#[test]
fn ct_and_mr_dicom_decode_with_rescale_and_their_window_tags() {
    let ct_ref = Reference::load("CT_small");
    let ct = decode_raw(&sample("dicom/CT_small.dcm")).unwrap();
    assert_eq!(ct_ref.compare(&ct), (0.0, 0.0), "CT modality values");
    assert!(ct.rescaled && ct_ref.f("intercept") == -1024.0);
    assert_eq!(ct.data_range(), Some((ct_ref.f("min"), ct_ref.f("max"))));
    // No window tags: Auto falls back to the 0.5/99.5 percentiles.
    assert!(ct_ref.facts["window_center"].is_null() && ct.dicom_window.is_none());
    let (low, high) = WindowSetting::Auto.resolve(&ct).range();
    assert_close(low, ct_ref.f("p_low"), "CT 0.5th percentile");
    assert_close(high, ct_ref.f("p_high"), "CT 99.5th percentile");

    let mr_ref = Reference::load("MR_small");
    let mr = decode_raw(&sample("dicom/MR_small.dcm")).unwrap();
    assert_eq!(mr_ref.compare(&mr), (0.0, 0.0), "MR values");
    let tags = Window {
        center: mr_ref.f("window_center"),
        width: mr_ref.f("window_width"),
    };
    assert_eq!(
        tags,
        Window {
            center: 600.0,
            width: 1600.0
        }
    );
    assert_eq!(mr.dicom_window, Some(tags));
    assert_eq!(WindowSetting::Auto.resolve(&mr), tags);
    let rgb = load_rgb8(&sample("dicom/MR_small.dcm"), &WindowSetting::Auto).unwrap();
    for (value, pixel) in mr.values.iter().zip(rgb.pixels()) {
        assert_eq!(pixel.0, [tags.apply_u8(*value); 3]);
    }

    let rle = decode_raw(&sample("dicom/MR_small_RLE.dcm")).unwrap();
    assert_eq!(
        rle.values, mr.values,
        "RLE decodes equal to the native file"
    );
    assert_eq!(rle.dicom_window, mr.dicom_window);
}

#[test]
fn colour_dicom_decodes_to_rgb() {
    let native_ref = Reference::load("examples_rgb_color");
    let native = decode_raw(&sample("dicom/examples_rgb_color.dcm")).unwrap();
    assert_eq!(native_ref.compare(&native), (0.0, 0.0));
    assert!(native.passes_through());

    let jpeg_ref = Reference::load("SC_rgb_jpeg_dcmtk");
    let jpeg = decode_raw(&sample("dicom/SC_rgb_jpeg_dcmtk.dcm")).unwrap();
    let (max, mean) = jpeg_ref.compare(&jpeg);
    eprintln!("SC_rgb_jpeg_dcmtk vs pydicom: max {max}, mean {mean}");
    // Two JPEG decoders (jpeg-decoder here, Pillow in pydicom) round differently.
    assert!(
        mean <= 1.0 && max <= 8.0,
        "JPEG DICOM differs: max {max}, mean {mean}"
    );
    let rgb = load_rgb8(&sample("dicom/SC_rgb_jpeg_dcmtk.dcm"), &WindowSetting::Auto).unwrap();
    assert_eq!(rgb.dimensions(), (100, 100));
}

#[test]
fn monochrome1_renders_inverted() {
    let dir = reference_dir();
    let mr = load_rgb8(&sample("dicom/MR_small.dcm"), &WindowSetting::Auto).unwrap();
    let inverted = load_rgb8(&dir.join("mr_monochrome1.dcm"), &WindowSetting::Auto).unwrap();
    assert!(decode_raw(&dir.join("mr_monochrome1.dcm")).unwrap().invert);
    for (a, b) in mr.pixels().zip(inverted.pixels()) {
        assert_eq!(a.0[0], 255 - b.0[0]);
    }
}

#[test]
fn unsupported_and_odd_dicom_files_give_clear_errors_naming_the_file() {
    let dir = reference_dir();
    let j2k = decode_raw(&dir.join("mr_jpeg2000.dcm")).unwrap_err();
    assert!(matches!(j2k, DataError::UnsupportedDicom { .. }), "{j2k}");
    let text = j2k.to_string();
    assert!(
        text.contains("JPEG 2000") && text.contains("1.2.840.10008.1.2.4.90"),
        "{text}"
    );
    assert!(text.ends_with("mr_jpeg2000.dcm"), "{text}");

    let multi = load_rgb8(&dir.join("mr_multiframe.dcm"), &WindowSetting::Auto).unwrap_err();
    assert!(
        matches!(multi, DataError::UnsupportedDicom { .. }),
        "{multi}"
    );
    assert!(multi.to_string().contains("multi-frame"), "{multi}");
    assert!(multi.to_string().ends_with("mr_multiframe.dcm"), "{multi}");

    let empty = decode_raw(&dir.join("no_pixels.dcm")).unwrap_err();
    assert!(matches!(empty, DataError::NotAnImage { .. }), "{empty}");
    assert!(empty.to_string().ends_with("no_pixels.dcm"), "{empty}");
}

#[test]
fn exif_orientation_is_honoured() {
    let path = reference_dir().join("exif_rot6.jpg");
    let reference = Reference::load("exif_rot6");
    assert_eq!(reference.shape(), vec![40, 20, 3], "PIL shows it rotated");
    let raw = decode_raw(&path).unwrap();
    let (max, mean) = reference.compare(&raw);
    eprintln!("exif_rot6.jpg vs PIL exif_transpose: max {max}, mean {mean}");
    assert!(
        mean <= 3.0,
        "mean difference {mean} (max {max}) to PIL's exif_transpose"
    );
    // Stored 40x20 with red top-left; displayed 20x40 with red top-right (90° clockwise).
    let rgb = load_rgb8(&path, &WindowSetting::Auto).unwrap();
    assert_eq!(rgb.dimensions(), (20, 40));
    let near = |p: [u8; 3], want: [u8; 3]| p.iter().zip(want).all(|(a, b)| a.abs_diff(b) <= 40);
    assert!(
        near(rgb.get_pixel(15, 5).0, [255, 0, 0]),
        "{:?}",
        rgb.get_pixel(15, 5)
    );
    assert!(near(rgb.get_pixel(15, 35).0, [0, 255, 0]));
    assert!(near(rgb.get_pixel(4, 5).0, [0, 0, 255]));
    assert!(near(rgb.get_pixel(4, 35).0, [255, 255, 255]));
}

#[test]
fn palette_and_16_bit_files_from_other_writers_decode_exactly() {
    let dir = reference_dir();
    let palette = decode_raw(&dir.join("palette.png")).unwrap();
    assert_eq!(palette.bit_depth, 8);
    assert_eq!(Reference::load("palette").compare(&palette), (0.0, 0.0));

    let gray16 = decode_raw(&dir.join("gray16.png")).unwrap();
    assert_eq!((gray16.bit_depth, gray16.channels), (16, 1));
    assert_eq!(Reference::load("gray16").compare(&gray16), (0.0, 0.0));

    let rgb16 = decode_raw(&dir.join("rgb16.tif")).unwrap();
    assert_eq!((rgb16.bit_depth, rgb16.channels), (16, 3));
    assert_eq!(Reference::load("rgb16").compare(&rgb16), (0.0, 0.0));
    let manual = WindowSetting::Manual {
        center: 32768.0,
        width: 65536.0,
    };
    let rgb = load_rgb8(&dir.join("rgb16.tif"), &manual).unwrap();
    let first = &rgb16.values[..3];
    let expected: Vec<u8> = first
        .iter()
        .map(|v| (v / 65536.0 * 255.0).round() as u8)
        .collect();
    assert_eq!(rgb.get_pixel(0, 0).0.to_vec(), expected);
}
