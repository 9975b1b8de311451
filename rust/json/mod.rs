//! The REST JSON codec's Python face (`py`); the codec itself is `ovms_rs_core::json`, re-exported
//! here under the names `py` uses.

pub use ovms_rs_core::json::{error, request, response, tensor};

pub mod py;
