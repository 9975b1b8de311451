//! `ovms_rs_core`: the per-request kernels of ovms_rs, in plain Rust over slices, with no interpreter
//! and no transport: `cargo test -p ovms_rs_core` and the fuzz targets compile no pyo3, numpy, tokio
//! or tonic. The extension crate (`ovms_rs`, `rust/lib.rs`) is their Python face: the
//! `#[pyfunction]`s, numpy, and the conversion of [`error::Error`] to Python exceptions.

pub mod dtype;
pub mod error;
pub mod image;
pub mod json;
pub mod layout;
pub mod parallel;
pub mod predict;
pub mod tfrecord;
