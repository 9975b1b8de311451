//! TensorFlow `DataType` <-> numpy dtype <-> OVMS precision name <-> element size.

/// The subset of `tensorflow.DataType` the server handles (values are the wire enum numbers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DType {
    Float = 1,
    Double = 2,
    Int32 = 3,
    UInt8 = 4,
    Int16 = 5,
    Int8 = 6,
    String = 7,
    Int64 = 9,
    Bool = 10,
    BFloat16 = 14,
    UInt16 = 17,
    Half = 19,
    UInt32 = 22,
    UInt64 = 23,
}

/// Which typed `*_val` field of TensorProto carries a dtype's values (TensorFlow's rules).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValField {
    Float,
    Double,
    Int,
    Int64,
    Bool,
    Half,
    UInt32,
    UInt64,
    String,
}

impl DType {
    /// Every dtype served, in wire order (`_native.dtype_table()`).
    pub const ALL: [DType; 14] = [
        DType::Float,
        DType::Double,
        DType::Int32,
        DType::UInt8,
        DType::Int16,
        DType::Int8,
        DType::String,
        DType::Int64,
        DType::Bool,
        DType::BFloat16,
        DType::UInt16,
        DType::Half,
        DType::UInt32,
        DType::UInt64,
    ];

    pub fn from_wire(v: u64) -> Option<DType> {
        use DType::*;
        Some(match v {
            1 => Float,
            2 => Double,
            3 => Int32,
            4 => UInt8,
            5 => Int16,
            6 => Int8,
            7 => String,
            9 => Int64,
            10 => Bool,
            14 => BFloat16,
            17 => UInt16,
            19 => Half,
            22 => UInt32,
            23 => UInt64,
            _ => return None,
        })
    }

    /// Bytes per element in `tensor_content` (strings have none).
    pub fn size(self) -> usize {
        use DType::*;
        match self {
            Double | Int64 | UInt64 => 8,
            Float | Int32 | UInt32 => 4,
            Int16 | UInt16 | Half | BFloat16 => 2,
            UInt8 | Int8 | Bool => 1,
            String => 0,
        }
    }

    /// numpy dtype string; bfloat16 has no numpy type, so it travels as its raw 16-bit pattern.
    pub fn numpy(self) -> &'static str {
        use DType::*;
        match self {
            Float => "<f4",
            Double => "<f8",
            Int32 => "<i4",
            UInt8 => "u1",
            Int16 => "<i2",
            Int8 => "i1",
            String => "O",
            Int64 => "<i8",
            Bool => "?",
            BFloat16 => "<u2",
            UInt16 => "<u2",
            Half => "<f2",
            UInt32 => "<u4",
            UInt64 => "<u8",
        }
    }

    /// OVMS's precision name (as error messages spell it).
    pub fn precision(self) -> &'static str {
        use DType::*;
        match self {
            Float => "FP32",
            Double => "FP64",
            Int32 => "I32",
            UInt8 => "U8",
            Int16 => "I16",
            Int8 => "I8",
            String => "STRING",
            Int64 => "I64",
            Bool => "BOOL",
            BFloat16 => "BF16",
            UInt16 => "U16",
            Half => "FP16",
            UInt32 => "U32",
            UInt64 => "U64",
        }
    }

    pub fn val_field(self) -> ValField {
        use DType::*;
        match self {
            Float => ValField::Float,
            Double => ValField::Double,
            Int32 | UInt8 | Int16 | Int8 | UInt16 => ValField::Int,
            Int64 => ValField::Int64,
            Bool => ValField::Bool,
            Half | BFloat16 => ValField::Half,
            UInt32 => ValField::UInt32,
            UInt64 => ValField::UInt64,
            String => ValField::String,
        }
    }

    /// numpy dtype `kind` + itemsize -> wire dtype, for building responses.
    pub fn from_numpy(kind: u8, itemsize: usize) -> Option<DType> {
        use DType::*;
        Some(match (kind, itemsize) {
            (b'f', 4) => Float,
            (b'f', 8) => Double,
            (b'f', 2) => Half,
            (b'i', 1) => Int8,
            (b'i', 2) => Int16,
            (b'i', 4) => Int32,
            (b'i', 8) => Int64,
            (b'u', 1) => UInt8,
            (b'u', 2) => UInt16,
            (b'u', 4) => UInt32,
            (b'u', 8) => UInt64,
            (b'b', 1) => Bool,
            _ => return None,
        })
    }
}

impl ValField {
    /// The TensorProto field's name.
    pub fn name(self) -> &'static str {
        match self {
            ValField::Float => "float_val",
            ValField::Double => "double_val",
            ValField::Int => "int_val",
            ValField::Int64 => "int64_val",
            ValField::Bool => "bool_val",
            ValField::Half => "half_val",
            ValField::UInt32 => "uint32_val",
            ValField::UInt64 => "uint64_val",
            ValField::String => "string_val",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_numbers_roundtrip() {
        for v in 0..32u64 {
            if let Some(d) = DType::from_wire(v) {
                assert_eq!(d as u64, v);
            }
        }
        assert_eq!(DType::from_wire(8), None); // complex64 is not served
    }

    #[test]
    fn all_is_every_wire_dtype_once_in_order() {
        let served: Vec<DType> = (0..64u64).filter_map(DType::from_wire).collect();
        assert_eq!(served, DType::ALL);
    }

    #[test]
    fn numpy_mapping_is_consistent_with_sizes() {
        for d in [
            DType::Float,
            DType::Double,
            DType::Int8,
            DType::UInt64,
            DType::Half,
            DType::Bool,
        ] {
            let np = d.numpy();
            let kind = match np.trim_start_matches(['<', '|']).as_bytes()[0] {
                b'?' => b'b',
                k => k,
            };
            assert_eq!(DType::from_numpy(kind, d.size()), Some(d), "{np}");
        }
    }
}
