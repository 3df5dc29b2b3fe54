//! Training engine: metrics and the segmentation loss (the loop and its events live beside).

pub mod metrics;
pub mod segmentation;
