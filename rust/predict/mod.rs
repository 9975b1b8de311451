//! The Predict codec (gRPC): PredictRequest bytes -> model spec and inputs, outputs -> PredictResponse
//! bytes. `wire` is the protobuf wire format, `tensor_proto` parses a request in plain Rust (sizes
//! checked before anything is allocated), `request` turns it into Python objects
//! (`parse_predict_request`, `RequestInput`, which the REST JSON codec makes too) and `response`
//! writes the reply (`build_predict_response`).

pub mod request;
pub mod response;
pub mod tensor_proto;
pub mod wire;
