//! Cosine nearest neighbours over L2-normalised embeddings: of a sample of the split, or of
//! any embedding (query by example: an image from outside the data set embedded with the
//! run's eval transform).

use serde::{Deserialize, Serialize};

use super::InspectError;

/// One neighbour: a sample index and its cosine similarity to the query.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Neighbour {
    /// Sample index.
    pub index: usize,
    /// Cosine similarity in `[-1, 1]`.
    pub similarity: f32,
}

/// Embeddings normalised to unit length, searched exhaustively (fast enough for tens of
/// thousands of samples).
#[derive(Clone, Debug, Default)]
pub struct NeighbourIndex {
    unit: Vec<f32>,
    dim: usize,
}

impl NeighbourIndex {
    /// An index over row-major `embeddings` `[N x dim]`. A zero row stays zero (similarity 0
    /// to everything).
    pub fn new(embeddings: &[f32], dim: usize) -> Result<Self, InspectError> {
        if dim == 0 || !embeddings.len().is_multiple_of(dim) {
            return Err(InspectError::Invalid(format!(
                "{} values do not form rows of {dim}",
                embeddings.len()
            )));
        }
        let unit = embeddings.chunks(dim).flat_map(normalised).collect();
        Ok(Self { unit, dim })
    }

    /// Number of indexed samples.
    pub fn len(&self) -> usize {
        self.unit.len() / self.dim.max(1)
    }

    /// Whether the index is empty.
    pub fn is_empty(&self) -> bool {
        self.unit.is_empty()
    }

    /// The `k` samples most similar to `query` (any length-`dim` embedding), most similar
    /// first, ties by index.
    pub fn query(&self, query: &[f32], k: usize) -> Result<Vec<Neighbour>, InspectError> {
        if query.len() != self.dim {
            return Err(InspectError::Invalid(format!(
                "the query has {} values, the embeddings {}",
                query.len(),
                self.dim
            )));
        }
        let q = normalised(query);
        let mut all: Vec<Neighbour> = self
            .unit
            .chunks(self.dim)
            .enumerate()
            .map(|(index, row)| Neighbour {
                index,
                similarity: dot(row, &q) as f32,
            })
            .collect();
        all.sort_by(|a, b| {
            b.similarity
                .total_cmp(&a.similarity)
                .then(a.index.cmp(&b.index))
        });
        all.truncate(k);
        Ok(all)
    }

    /// The `k` nearest neighbours of sample `index`, itself included (normally first).
    pub fn of_sample(&self, index: usize, k: usize) -> Result<Vec<Neighbour>, InspectError> {
        let row = self
            .unit
            .get(index * self.dim..(index + 1) * self.dim)
            .ok_or_else(|| {
                InspectError::Invalid(format!("sample {index} of {} is out of range", self.len()))
            })?
            .to_vec();
        self.query(&row, k)
    }
}

fn dot(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(&x, &y)| f64::from(x) * f64::from(y))
        .sum()
}

fn normalised(row: &[f32]) -> Vec<f32> {
    let norm = dot(row, row).sqrt();
    if norm > 0.0 {
        row.iter().map(|&v| (f64::from(v) / norm) as f32).collect()
    } else {
        row.to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosine_neighbours_ignore_length_and_rank_by_angle() {
        // Sample 1 is sample 0 scaled (same direction), sample 2 is orthogonal.
        let index = NeighbourIndex::new(&[1.0, 0.0, 5.0, 0.1, 0.0, 2.0], 2).unwrap();
        let n = index.of_sample(0, 3).unwrap();
        assert_eq!(n.iter().map(|x| x.index).collect::<Vec<_>>(), vec![0, 1, 2]);
        assert!((n[0].similarity - 1.0).abs() < 1e-6);
        assert!(n[2].similarity.abs() < 1e-6);
        // Sample 1 leans towards the diagonal; 0 and 2 tie and keep index order.
        let q = index.query(&[2.0, 2.0], 3).unwrap();
        assert_eq!(q.iter().map(|x| x.index).collect::<Vec<_>>(), vec![1, 0, 2]);
        assert!(index.query(&[1.0], 1).is_err());
        assert!(index.of_sample(3, 1).is_err());
        assert!(NeighbourIndex::new(&[1.0, 2.0, 3.0], 2).is_err());
    }
}
