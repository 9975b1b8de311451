//! The Predict codec (gRPC) over the request's bytes: `wire` is the protobuf wire format, `fields`
//! the messages' field numbers,
//! `tensor_proto` parses a PredictRequest (sizes checked before anything is allocated) and
//! `response` writes a PredictResponse. The extension's `predict` module turns them into Python
//! objects.

pub mod fields;
pub mod response;
pub mod tensor_proto;
pub mod wire;
