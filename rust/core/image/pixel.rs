//! The element types a decoded batch may be written in: the model's precision, cast from the decoder's
//! 8-bit samples as numpy's `astype` casts them (0..255 stays 0..255, no scaling; int8 wraps).

use half::f16;

/// An element type a batch is decoded into.
pub trait Pixel: Copy + Default + Send + Sync {
    /// The sample `v` in this type, as numpy's `uint8.astype` gives it.
    fn from_u8(v: u8) -> Self;

    /// `dst` as bytes when this type is `u8` itself (decoded into directly, with no cast).
    fn as_u8_mut(_dst: &mut [Self]) -> Option<&mut [u8]> {
        None
    }
}

impl Pixel for u8 {
    fn from_u8(v: u8) -> Self {
        v
    }

    fn as_u8_mut(dst: &mut [u8]) -> Option<&mut [u8]> {
        Some(dst)
    }
}

macro_rules! cast_pixel {
    ($($t:ty),*) => {$(
        impl Pixel for $t {
            fn from_u8(v: u8) -> Self {
                v as $t // wraps for i8 (200 -> -56), as numpy's C cast does; exact for the others
            }
        }
    )*};
}
cast_pixel!(i8, u16, i16, u32, i32, u64, i64, f32, f64);

/// Every u8 as f16 (all exact), so the cast is a lookup rather than a software float conversion.
const F16_OF_U8: [f16; 256] = {
    let mut table = [f16::ZERO; 256];
    let mut i = 0;
    while i < 256 {
        table[i] = f16::from_f32_const(i as f32);
        i += 1;
    }
    table
};

impl Pixel for f16 {
    fn from_u8(v: u8) -> Self {
        F16_OF_U8[v as usize]
    }
}

/// Writes `src`'s samples into `dst` (same length) as `T`.
pub fn widen<T: Pixel>(src: &[u8], dst: &mut [T]) {
    debug_assert_eq!(src.len(), dst.len());
    for (d, &s) in dst.iter_mut().zip(src) {
        *d = T::from_u8(s);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn casts_as_numpy_astype() {
        let src = [0u8, 1, 127, 128, 200, 255];
        let mut out = [0i8; 6];
        widen(&src, &mut out);
        assert_eq!(out, [0, 1, 127, -128, -56, -1]);
        let mut out = [0f32; 6];
        widen(&src, &mut out);
        assert_eq!(out, [0.0, 1.0, 127.0, 128.0, 200.0, 255.0]);
        let mut out = [0u64; 6];
        widen(&src, &mut out);
        assert_eq!(out, [0, 1, 127, 128, 200, 255]);
        for v in 0..=255u8 {
            assert_eq!(f16::from_u8(v).to_f32(), f32::from(v));
        }
        assert!(u8::as_u8_mut(&mut [1u8][..]).is_some());
        assert!(f32::as_u8_mut(&mut [1f32][..]).is_none());
    }
}
