//! The TF Serving REST JSON codec, in plain Rust (no interpreter): predict bodies -> typed tensors
//! (`request`), outputs -> reply bodies (`response`). The extension's `json::py` is its Python face.

pub mod error;
mod fast;
mod number;
mod parallel;
pub mod request;
pub mod response;
pub mod tensor;

#[cfg(test)]
mod parallel_tests;
#[cfg(test)]
mod request_tests;
