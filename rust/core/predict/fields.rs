//! Field numbers of the messages the codec reads and writes, one module per message, as the protos
//! declare them (`protos/`: tensorflow_serving/apis/predict.proto and model.proto,
//! tensorflow/core/framework/tensor.proto and tensor_shape.proto, google/protobuf/wrappers.proto).

/// `PredictRequest`.
pub mod predict_request {
    pub const MODEL_SPEC: u32 = 1;
    pub const INPUTS: u32 = 2;
    pub const OUTPUT_FILTER: u32 = 3;
}

/// `PredictResponse`.
pub mod predict_response {
    pub const OUTPUTS: u32 = 1;
    pub const MODEL_SPEC: u32 = 2;
}

/// An entry of a protobuf `map<string, TensorProto>` (`inputs`, `outputs`).
pub mod map_entry {
    pub const KEY: u32 = 1;
    pub const VALUE: u32 = 2;
}

/// `ModelSpec` (`version` and `version_label` are a oneof).
pub mod model_spec {
    pub const NAME: u32 = 1;
    pub const VERSION: u32 = 2;
    pub const VERSION_LABEL: u32 = 4;
}

/// `google.protobuf.Int64Value`.
pub mod int64_value {
    pub const VALUE: u32 = 1;
}

/// `TensorProto`: the header fields and the typed `*_val` fields this server reads.
pub mod tensor {
    pub const DTYPE: u32 = 1;
    pub const TENSOR_SHAPE: u32 = 2;
    pub const TENSOR_CONTENT: u32 = 4;
    pub const FLOAT_VAL: u32 = 5;
    pub const DOUBLE_VAL: u32 = 6;
    pub const INT_VAL: u32 = 7;
    pub const STRING_VAL: u32 = 8;
    pub const INT64_VAL: u32 = 10;
    pub const BOOL_VAL: u32 = 11;
    pub const HALF_VAL: u32 = 13;
    pub const UINT32_VAL: u32 = 16;
    pub const UINT64_VAL: u32 = 17;
}

/// `TensorShapeProto`.
pub mod tensor_shape {
    pub const DIM: u32 = 2;
    pub const UNKNOWN_RANK: u32 = 3;
}

/// `TensorShapeProto.Dim`.
pub mod dim {
    pub const SIZE: u32 = 1;
}
