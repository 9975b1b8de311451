//! The TF Serving REST JSON codec, in plain Rust (no interpreter): predict bodies -> typed tensors
//! (`request`), outputs -> reply bodies (`response`). `py.rs` is its Python face.

pub mod error;
mod fast;
mod number;
pub mod py;
pub mod request;
pub mod response;
pub mod tensor;

#[cfg(test)]
mod request_tests;
