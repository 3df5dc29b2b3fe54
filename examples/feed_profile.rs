use rand::SeedableRng;
use std::time::Instant;
use transfer_workbench::data::augment::*;
use transfer_workbench::model::Normalization;

fn t<R>(label: &str, reps: usize, mut f: impl FnMut() -> R) -> R {
    let start = Instant::now();
    let mut r = None;
    for _ in 0..reps {
        r = Some(f());
    }
    println!(
        "{label:40} {:8.2} ms",
        start.elapsed().as_secs_f64() * 1000.0 / reps as f64
    );
    r.unwrap()
}

fn main() {
    let dir = std::path::PathBuf::from(std::env::var("HOME").unwrap())
        .join(".cache/transfer-workbench/assets/data/pneumonia/NORMAL");
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    paths.sort();
    let reps = 3;
    let all = |label: &str, f: &mut dyn FnMut(&std::path::Path)| {
        t(label, reps, || {
            for p in &paths {
                f(p)
            }
        });
    };
    let bytes: Vec<Vec<u8>> = paths.iter().map(|p| std::fs::read(p).unwrap()).collect();
    println!("per 8 images:");
    all("image crate decode (zune) L8", &mut |p| {
        image::open(p).unwrap();
    });
    t("jpeg-decoder full", reps, || {
        for b in &bytes {
            jpeg_decoder::Decoder::new(&b[..]).decode().unwrap();
        }
    });
    t("jpeg-decoder 1/2", reps, || {
        for b in &bytes {
            let mut d = jpeg_decoder::Decoder::new(&b[..]);
            d.read_info().unwrap();
            let i = d.info().unwrap();
            d.scale(i.width / 2, i.height / 2).unwrap();
            d.decode().unwrap();
        }
    });
    t("jpeg-decoder 1/4", reps, || {
        for b in &bytes {
            let mut d = jpeg_decoder::Decoder::new(&b[..]);
            d.read_info().unwrap();
            let i = d.info().unwrap();
            d.scale(i.width / 4, i.height / 4).unwrap();
            d.decode().unwrap();
        }
    });
    let imgs: Vec<image::RgbImage> = paths
        .iter()
        .map(|p| image::open(p).unwrap().to_rgb8())
        .collect();
    let grays: Vec<image::GrayImage> = paths
        .iter()
        .map(|p| image::open(p).unwrap().to_luma8())
        .collect();
    let dyns: Vec<image::DynamicImage> = grays
        .iter()
        .map(|g| image::DynamicImage::ImageLuma8(g.clone()))
        .collect();
    t("clone L8", reps, || {
        for g in &grays {
            std::hint::black_box(g.clone());
        }
    });
    t("to_rgb8 only", reps, || {
        for d in &dyns {
            std::hint::black_box(d.to_rgb8());
        }
    });
    t("manual expand", reps, || {
        for g in &grays {
            let v: Vec<u8> = g.as_raw().iter().flat_map(|&x| [x, x, x]).collect();
            std::hint::black_box(v);
        }
    });
    t("zune from memory", reps, || {
        for b in &bytes {
            image::load_from_memory_with_format(b, image::ImageFormat::Jpeg).unwrap();
        }
    });
    t("to_rgb8 from L8", reps, || {
        for g in &grays {
            image::DynamicImage::ImageLuma8(g.clone()).to_rgb8();
        }
    });
    let cfg = AugmentConfig {
        crop_scale: [0.08, 1.0],
        brightness: 0.2,
        contrast: 0.2,
        ..Default::default()
    };
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    let mut out = vec![0f32; 3 * 224 * 224];
    t("augment_into full-res RGB", reps, || {
        for im in &imgs {
            let p = sample_params(&cfg, im.width(), im.height(), &mut rng);
            augment_into(im, None, &p, &Normalization::IMAGENET, &mut out, None).unwrap();
        }
    });
    t("resize full crop RGB -> 224", reps, || {
        for im in &imgs {
            resize_rgb(im, None, 224, 224).unwrap();
        }
    });
    let small: Vec<image::RgbImage> = imgs
        .iter()
        .map(|im| {
            let s = 448.0 / im.width().min(im.height()) as f32;
            resize_rgb(
                im,
                None,
                (im.width() as f32 * s) as u32,
                (im.height() as f32 * s) as u32,
            )
            .unwrap()
        })
        .collect();
    t("resize to working 448 RGB", reps, || {
        for im in &imgs {
            let s = 448.0 / im.width().min(im.height()) as f32;
            resize_rgb(
                im,
                None,
                (im.width() as f32 * s) as u32,
                (im.height() as f32 * s) as u32,
            )
            .unwrap();
        }
    });
    t("augment_into working 448 RGB", reps, || {
        for im in &small {
            let p = sample_params(&cfg, im.width(), im.height(), &mut rng);
            augment_into(im, None, &p, &Normalization::IMAGENET, &mut out, None).unwrap();
        }
    });
    t("write_chw 224 only", reps, || {
        for _ in &small {
            write_chw(
                &vec![0u8; 3 * 224 * 224],
                Dihedral::default().view(224, 224, 0, 0),
                224,
                &plain_lut(&Normalization::IMAGENET),
                &mut out,
            );
        }
    });
}
