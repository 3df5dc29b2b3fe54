//! Where the Inspector stands (run, filter, position in the filtered list, grid or single
//! image, a detour outside the filter) and the back stack that following a neighbour, or a
//! point of the Embeddings tab, pushes it on, so "◀ Back" returns to it exactly.

use std::path::{Path, PathBuf};

use crate::ui::inspector::InspectFilter;

/// Places kept on the back stack; the oldest go beyond it.
const DEPTH: usize = 100;

/// How the Inspector shows the filtered images.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum InspectorMode {
    /// One image large, with its facts and neighbours.
    #[default]
    Single,
    /// A thumbnail grid of the filtered images.
    Grid,
}

/// Where the Inspector stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Place {
    /// The project folder.
    pub project: PathBuf,
    /// The run.
    pub run: String,
    /// The filter.
    pub filter: InspectFilter,
    /// The position in the filtered list.
    pub position: usize,
    /// Grid or single image.
    pub mode: InspectorMode,
    /// A sample shown outside the filter (the position is kept for returning to it).
    pub detour: Option<usize>,
}

/// Where a sample asked for lands in a filtered list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arrival {
    /// At this position of the list: the filter is kept.
    InList(usize),
    /// Outside the list: shown as a detour, the filter and position kept.
    Detour(usize),
}

impl Arrival {
    /// Where sample `index` lands in `list`.
    pub fn of(list: &[usize], index: usize) -> Self {
        match list.iter().position(|&i| i == index) {
            Some(position) => Arrival::InList(position),
            None => Arrival::Detour(index),
        }
    }
}

/// The places left by following neighbours, newest last.
#[derive(Debug, Default)]
pub struct BackStack {
    places: Vec<Place>,
}

impl BackStack {
    /// Remembers `place` (not twice in a row).
    pub fn push(&mut self, place: Place) {
        if self.places.last() == Some(&place) {
            return;
        }
        if self.places.len() == DEPTH {
            self.places.remove(0);
        }
        self.places.push(place);
    }

    /// The newest place, when it is in the project at `project`.
    pub fn peek(&self, project: &Path) -> Option<&Place> {
        self.places.last().filter(|p| p.project == project)
    }

    /// Takes the newest place, when it is in the project at `project`.
    pub fn pop(&mut self, project: &Path) -> Option<Place> {
        self.peek(project)?;
        self.places.pop()
    }

    /// Places kept.
    pub fn len(&self) -> usize {
        self.places.len()
    }

    /// Whether no place is kept.
    pub fn is_empty(&self) -> bool {
        self.places.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn place(project: &str, position: usize) -> Place {
        Place {
            project: PathBuf::from(project),
            run: "run-001".into(),
            filter: InspectFilter::Misclassified,
            position,
            mode: InspectorMode::Grid,
            detour: None,
        }
    }

    #[test]
    fn a_sample_lands_in_the_list_or_as_a_detour() {
        assert_eq!(Arrival::of(&[4, 7, 9], 7), Arrival::InList(1));
        assert_eq!(Arrival::of(&[4, 7, 9], 5), Arrival::Detour(5));
        assert_eq!(Arrival::of(&[], 0), Arrival::Detour(0));
    }

    #[test]
    fn back_returns_the_places_newest_first_within_the_project() {
        let mut back = BackStack::default();
        back.push(place("a", 1));
        back.push(place("a", 1));
        back.push(place("a", 3));
        assert_eq!(back.len(), 2, "a place is not kept twice in a row");
        assert!(
            back.peek(Path::new("b")).is_none(),
            "another project's place"
        );
        assert_eq!(back.pop(Path::new("a")), Some(place("a", 3)));
        assert_eq!(back.pop(Path::new("a")), Some(place("a", 1)));
        assert!(back.is_empty());
        for n in 0..DEPTH + 5 {
            back.push(place("a", n));
        }
        assert_eq!(back.len(), DEPTH);
        assert_eq!(
            back.pop(Path::new("a")).map(|p| p.position),
            Some(DEPTH + 4)
        );
    }
}
