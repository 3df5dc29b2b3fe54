//! The app's colours, safe for colour-blind eyes: the Okabe–Ito palette for classes and the
//! series of a chart, blue and orange for right and wrong (each always with a mark, ✔ or ✖,
//! so colour is never the only cue), and the shading of a count (the confusion matrix).

use egui::Color32;

/// Okabe–Ito blue.
pub const BLUE: Color32 = Color32::from_rgb(0, 114, 178);
/// Okabe–Ito orange.
pub const ORANGE: Color32 = Color32::from_rgb(230, 159, 0);
/// Okabe–Ito bluish green.
pub const BLUISH_GREEN: Color32 = Color32::from_rgb(0, 158, 115);
/// Okabe–Ito vermillion.
pub const VERMILLION: Color32 = Color32::from_rgb(213, 94, 0);
/// Okabe–Ito sky blue.
pub const SKY_BLUE: Color32 = Color32::from_rgb(86, 180, 233);
/// Okabe–Ito reddish purple.
pub const REDDISH_PURPLE: Color32 = Color32::from_rgb(204, 121, 167);
/// Okabe–Ito yellow.
pub const YELLOW: Color32 = Color32::from_rgb(240, 228, 66);
/// A mid grey (Okabe–Ito's black would vanish on the dark theme).
pub const GREY: Color32 = Color32::from_rgb(153, 153, 153);

/// Colours of classes and series, by index (cycled): Okabe–Ito's eight, then two of Paul
/// Tol's muted scheme (sand, wine) for the ninth and tenth class.
const CATEGORICAL: [Color32; 10] = [
    BLUE,
    ORANGE,
    BLUISH_GREEN,
    VERMILLION,
    SKY_BLUE,
    REDDISH_PURPLE,
    YELLOW,
    GREY,
    Color32::from_rgb(221, 204, 119),
    Color32::from_rgb(136, 34, 85),
];

/// The colour of class `class` (also of the `class`-th series of a chart).
pub fn class_color(class: usize) -> Color32 {
    CATEGORICAL[class % CATEGORICAL.len()]
}

/// Whether a prediction was right or wrong, with the colour and mark it is shown with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The prediction names the true class.
    Right,
    /// It does not.
    Wrong,
}

impl Outcome {
    /// The outcome of predicting `predicted` for an image of class `truth`.
    pub fn of(truth: usize, predicted: usize) -> Self {
        if truth == predicted {
            Outcome::Right
        } else {
            Outcome::Wrong
        }
    }

    /// The mark shown beside the colour: ✔ or ✖.
    pub fn mark(self) -> &'static str {
        match self {
            Outcome::Right => "✔",
            Outcome::Wrong => "✖",
        }
    }

    /// "right" or "wrong".
    pub fn word(self) -> &'static str {
        match self {
            Outcome::Right => "right",
            Outcome::Wrong => "wrong",
        }
    }

    /// Blue for right, orange for wrong, in the shade readable on the theme's background.
    pub fn color(self, dark_mode: bool) -> Color32 {
        match (self, dark_mode) {
            (Outcome::Right, true) => SKY_BLUE,
            (Outcome::Right, false) => BLUE,
            (Outcome::Wrong, true) => ORANGE,
            (Outcome::Wrong, false) => VERMILLION,
        }
    }

    /// `text` after the mark, in the outcome's colour.
    pub fn rich(self, ui: &egui::Ui, text: &str) -> egui::RichText {
        egui::RichText::new(format!("{} {text}", self.mark()))
            .color(self.color(ui.visuals().dark_mode))
    }
}

/// `base` laid over `background` at `level` (0: the background, 1: `base`), for shading a
/// count: the larger the share, the stronger the colour.
pub fn shade(base: Color32, background: Color32, level: f32) -> Color32 {
    let t = level.clamp(0.0, 1.0);
    let mix = |b: u8, f: u8| (f32::from(b) + (f32::from(f) - f32::from(b)) * t).round() as u8;
    Color32::from_rgb(
        mix(background.r(), base.r()),
        mix(background.g(), base.g()),
        mix(background.b(), base.b()),
    )
}

/// Black or white, whichever reads better on `fill`.
pub fn text_on(fill: Color32) -> Color32 {
    let luminance =
        0.2126 * f32::from(fill.r()) + 0.7152 * f32::from(fill.g()) + 0.0722 * f32::from(fill.b());
    if luminance > 140.0 {
        Color32::BLACK
    } else {
        Color32::WHITE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_have_a_mark_and_no_red_green_pair() {
        assert_eq!(Outcome::of(2, 2), Outcome::Right);
        assert_eq!(Outcome::of(2, 1).mark(), "✖");
        for dark in [true, false] {
            let (right, wrong) = (Outcome::Right.color(dark), Outcome::Wrong.color(dark));
            // Right is blue-dominant and wrong red-dominant: told apart by their blue, which
            // red-green colour blindness keeps.
            assert!(right.b() > right.r() && wrong.r() > wrong.b());
        }
    }

    #[test]
    fn the_bundled_fonts_draw_the_marks() {
        let ctx = egui::Context::default();
        let mut output = ctx.run_ui(egui::RawInput::default(), |_| {});
        output.textures_delta.clear();
        let font = egui::FontId::proportional(14.0);
        assert!(ctx.fonts_mut(|f| f.has_glyphs(&font, "✔✖★")));
    }

    #[test]
    fn shades_run_from_the_background_to_the_colour() {
        let background = Color32::from_rgb(20, 20, 20);
        assert_eq!(shade(BLUE, background, 0.0), background);
        assert_eq!(shade(BLUE, background, 1.0), BLUE);
        assert_eq!(shade(BLUE, background, 7.0), BLUE);
        assert_eq!(text_on(YELLOW), Color32::BLACK);
        assert_eq!(text_on(background), Color32::WHITE);
    }

    #[test]
    fn ten_classes_get_ten_colours() {
        let colours: std::collections::HashSet<Color32> = (0..10).map(class_color).collect();
        assert_eq!(colours.len(), 10);
        assert_eq!(class_color(10), class_color(0));
    }
}
