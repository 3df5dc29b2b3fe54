//! The segmentation side of the Inspector on the GUI's side: one image's overlay layers
//! (prediction, ground truth, difference) as egui images, made on a worker from the core's
//! [`SegImage`] (the jobs themselves are [`crate::inspect::segmentation`]).

use image::RgbaImage;

use crate::inspect::InspectError;
use crate::inspect::overlay::{OverlayStyle, overlay_layers};
use crate::inspect::segmentation::SegImage;
use crate::runtime::inspect_seg::SegLayerPixels;

/// The overlay layers of `image`, filled or as outlines.
pub fn seg_layers(image: &SegImage, outline: bool) -> Result<SegLayerPixels, InspectError> {
    let style = if outline {
        OverlayStyle::Outline
    } else {
        OverlayStyle::Filled
    };
    let layers = overlay_layers(&image.predicted, &image.truth, style, 1.0)?;
    let colour = |rgba: &RgbaImage| {
        let size = [rgba.width() as usize, rgba.height() as usize];
        egui::ColorImage::from_rgba_unmultiplied(size, rgba.as_raw())
    };
    Ok(SegLayerPixels {
        prediction: colour(&layers.prediction),
        ground_truth: colour(&layers.ground_truth),
        difference: colour(&layers.difference),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inspect::segmentation::test_image as image;

    #[test]
    fn layers_are_colour_images_of_the_mask_size() {
        let one = image("a", &[1, 0, 0, 0], &[0, 1, 0, 0]);
        let layers = seg_layers(&one, false).unwrap();
        assert_eq!(layers.difference.size, [2, 2]);
        let [r, g, b] = crate::inspect::overlay::FALSE_POSITIVE;
        assert_eq!(
            layers.difference.pixels[0],
            egui::Color32::from_rgba_unmultiplied(r, g, b, 255)
        );
        assert_eq!(layers.prediction.pixels[3].a(), 0);
    }
}
