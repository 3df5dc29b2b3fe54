//! Segmentation mask encodings: binary 0/1, binary 0/255, or class indices. The encoding of
//! a data set is detected from its masks (shown in the report) and can be overridden in the
//! project.

use serde::{Deserialize, Serialize};

/// How the values of a data set's masks encode classes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MaskEncoding {
    /// Background 0, foreground 1.
    Binary01,
    /// Background 0, foreground 255 (read as class 1).
    Binary0255,
    /// One class index per pixel, `0..classes`.
    ClassIndex { classes: u16 },
}

impl MaskEncoding {
    /// The number of classes the encoding has, background included.
    pub fn classes(self) -> u16 {
        match self {
            MaskEncoding::Binary01 | MaskEncoding::Binary0255 => 2,
            MaskEncoding::ClassIndex { classes } => classes,
        }
    }

    /// Whether a stored value is one the encoding allows.
    pub fn allows(self, value: u16) -> bool {
        match self {
            MaskEncoding::Binary01 => value <= 1,
            MaskEncoding::Binary0255 => value == 0 || value == 255,
            MaskEncoding::ClassIndex { classes } => value < classes,
        }
    }

    /// The class index of a stored value (values the encoding does not allow are mapped to
    /// the nearest sensible class; the scan reports such masks).
    pub fn class_of(self, value: u16) -> u8 {
        match self {
            MaskEncoding::Binary01 => u8::from(value > 0),
            MaskEncoding::Binary0255 => u8::from(value >= 128),
            MaskEncoding::ClassIndex { .. } => value.min(255) as u8,
        }
    }

    /// How the encoding reads in the report.
    pub fn describe(self) -> String {
        match self {
            MaskEncoding::Binary01 => "binary 0/1".to_owned(),
            MaskEncoding::Binary0255 => "binary 0/255".to_owned(),
            MaskEncoding::ClassIndex { classes } => format!("class indices 0..{classes}"),
        }
    }
}

/// The sorted distinct values of a mask.
pub fn distinct_values(values: &[u16]) -> Vec<u16> {
    let mut seen = vec![false; usize::from(u16::MAX) + 1];
    for &v in values {
        seen[usize::from(v)] = true;
    }
    seen.iter()
        .enumerate()
        .filter_map(|(v, &s)| s.then_some(v as u16))
        .collect()
}

/// The encoding one mask's distinct values suggest: `None` for an all-background mask (it
/// fits every encoding).
pub fn classify_values(distinct: &[u16]) -> Option<MaskEncoding> {
    let max = distinct.iter().copied().max()?;
    if max == 0 {
        None
    } else if distinct.iter().all(|&v| v <= 1) {
        Some(MaskEncoding::Binary01)
    } else if distinct.iter().all(|&v| v == 0 || v == 255) {
        Some(MaskEncoding::Binary0255)
    } else {
        Some(MaskEncoding::ClassIndex {
            classes: max.saturating_add(1),
        })
    }
}

/// The encoding of a data set: the one most of its masks suggest (binary first on a tie);
/// when that is class indices, `classes` covers the largest index of those masks. `None`
/// when every mask is empty or there are no masks.
pub fn detect_encoding<'a>(masks: impl IntoIterator<Item = &'a [u16]>) -> Option<MaskEncoding> {
    let (mut b01, mut b255, mut class_masks, mut classes) = (0usize, 0usize, 0usize, 0u16);
    for distinct in masks {
        match classify_values(distinct) {
            Some(MaskEncoding::Binary01) => b01 += 1,
            Some(MaskEncoding::Binary0255) => b255 += 1,
            Some(MaskEncoding::ClassIndex { classes: c }) => {
                class_masks += 1;
                classes = classes.max(c);
            }
            None => {}
        }
    }
    if b01 + b255 + class_masks == 0 {
        None
    } else if b255 >= b01 && b255 >= class_masks {
        Some(MaskEncoding::Binary0255)
    } else if b01 >= class_masks {
        Some(MaskEncoding::Binary01)
    } else {
        Some(MaskEncoding::ClassIndex {
            classes: classes.max(2),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detection_follows_the_majority_and_flags_the_rest() {
        let a: &[u16] = &[0, 255];
        let b: &[u16] = &[0];
        let c: &[u16] = &[0, 1];
        let d: &[u16] = &[0, 1, 2, 7];
        assert_eq!(
            detect_encoding([a, a, b, c]),
            Some(MaskEncoding::Binary0255)
        );
        assert_eq!(detect_encoding([c, c, a]), Some(MaskEncoding::Binary01));
        assert_eq!(
            detect_encoding([d, d, c]),
            Some(MaskEncoding::ClassIndex { classes: 8 })
        );
        assert_eq!(detect_encoding([b, b]), None);
        assert!(!MaskEncoding::Binary0255.allows(1));
        assert!(MaskEncoding::ClassIndex { classes: 3 }.allows(2));
        assert_eq!(distinct_values(&[5, 0, 5, 65535]), vec![0, 5, 65535]);
    }
}
