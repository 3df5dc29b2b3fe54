//! A generated COCO detection folder shared by the detection tests: shapes (squares, disks,
//! triangles in three colours) on noisy grey, every fifth image without objects, and one
//! corrupt PNG that the annotations name. Included with `#[path]`.
#![allow(dead_code, clippy::unwrap_used)] // Each test crate uses a part; tests may panic.

use std::path::Path;

use image::{Rgb, RgbImage};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};

pub const CLASSES: [&str; 3] = ["square", "disk", "triangle"];

/// `count` images of 80 x 64 px with up to three shapes each (every fifth image without
/// any), written as `images/*.png` and a COCO `annotations.json` (category ids 1..3, image
/// ids from 1), plus one corrupt PNG that the annotations name too.
pub fn coco_folder(root: &Path, count: usize) {
    let images_dir = root.join("images");
    std::fs::create_dir_all(&images_dir).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let (w, h) = (80u32, 64u32);
    let mut images = Vec::new();
    let mut annotations = Vec::new();
    for i in 0..count {
        let mut image = RgbImage::from_fn(w, h, |_, _| {
            let v = rng.gen_range(90..140u8);
            Rgb([v, v, v])
        });
        let objects = if i % 5 == 4 { 0 } else { rng.gen_range(1..=3) };
        for _ in 0..objects {
            let class = rng.gen_range(0..3usize);
            let side = rng.gen_range(14..26u32);
            let (x0, y0) = (rng.gen_range(0..w - side), rng.gen_range(0..h - side));
            let colour = [Rgb([230, 40, 30]), Rgb([30, 200, 60]), Rgb([40, 60, 240])][class];
            for y in y0..y0 + side {
                for x in x0..x0 + side {
                    let (u, v) = (
                        (x - x0) as f32 / side as f32 - 0.5,
                        (y - y0) as f32 / side as f32,
                    );
                    let inside = match class {
                        0 => true,
                        1 => u * u + (v - 0.5) * (v - 0.5) <= 0.25,
                        _ => u.abs() <= v / 2.0,
                    };
                    if inside {
                        image.put_pixel(x, y, colour);
                    }
                }
            }
            annotations.push(json!({
                "id": annotations.len() + 1,
                "image_id": i + 1,
                "category_id": class + 1,
                "bbox": [x0, y0, side, side],
                "area": side * side,
                "iscrowd": 0,
            }));
        }
        let name = format!("scene {i}.png");
        image.save(images_dir.join(&name)).unwrap();
        images.push(json!({"id": i + 1, "file_name": name, "width": w, "height": h}));
    }
    std::fs::write(images_dir.join("broken.png"), b"\x89PNG\r\n\x1a\nnope").unwrap();
    images.push(json!({"id": count + 1, "file_name": "broken.png", "width": w, "height": h}));
    let categories: Vec<Value> = CLASSES
        .iter()
        .enumerate()
        .map(|(i, name)| json!({"id": i + 1, "name": name}))
        .collect();
    let coco = json!({"images": images, "annotations": annotations, "categories": categories});
    std::fs::write(
        root.join("annotations.json"),
        serde_json::to_vec_pretty(&coco).unwrap(),
    )
    .unwrap();
}
