//! Event time: timestamp assignment and watermark generation.

mod strategy;
mod timestamps_operator;

pub use strategy::WatermarkStrategy;
