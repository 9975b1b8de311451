//! The Predict codec's Python face (gRPC): `request` turns a PredictRequest parsed by
//! `ovms_rs_core::predict::tensor_proto` into Python objects (`parse_predict_request`, `RequestInput`,
//! which the REST JSON codec makes too; `strings` holds a DT_STRING input's entries as spans of the
//! request) and `response` writes the reply from numpy outputs
//! (`build_predict_response`). The wire format and the parsing itself are the core crate's.

pub use ovms_rs_core::predict::{tensor_proto, wire};

pub mod request;
pub mod response;
pub mod strings;
