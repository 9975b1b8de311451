//! Fixtures and helpers shared by the image unit tests.

use super::resize::resize_bilinear;
use super::{decode, ImageInfo};
use crate::error::{Error, Result};

// Small images made with Pillow from /work/shared/data/images; also the fuzz target's seeds.
pub(super) const PHOTO: &[u8] = include_bytes!("../../../fuzz/seeds/photo_420.jpg"); // 48x32, 4:2:0
pub(super) const PHOTO_PROGRESSIVE: &[u8] =
    include_bytes!("../../../fuzz/seeds/photo_progressive.jpg");
pub(super) const GRAY: &[u8] = include_bytes!("../../../fuzz/seeds/gray.jpg"); // 24x16
pub(super) const SOLID: &[u8] = include_bytes!("../../../fuzz/seeds/solid_420.jpg"); // 16x16 of RGB (200, 100, 50)
pub(super) const SOLID_CMYK: &[u8] = include_bytes!("../../../fuzz/seeds/solid_cmyk.jpg"); // the same, as CMYK
pub(super) const RGBA_PNG: &[u8] = include_bytes!("../../../fuzz/seeds/rgba.png");
pub(super) const PALETTE_PNG: &[u8] = include_bytes!("../../../fuzz/seeds/palette.png");

/// The error `result` holds (it must hold one).
pub(super) fn error<T>(result: Result<T>) -> Error {
    match result {
        Ok(_) => panic!("expected an error, got Ok"),
        Err(e) => e,
    }
}

// --- a minimal PNG writer, for headers and layouts the png crate's encoder does not make ---

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], body: &[u8]) {
    out.extend((body.len() as u32).to_be_bytes());
    let start = out.len();
    out.extend(kind);
    out.extend(body);
    let crc = crc32(&out[start..]);
    out.extend(crc.to_be_bytes());
}

/// zlib stream of stored (uncompressed) deflate blocks.
fn zlib_stored(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x78, 0x01];
    let blocks: Vec<&[u8]> = data.chunks(65535).collect();
    for (i, block) in blocks.iter().enumerate() {
        out.push(u8::from(i + 1 == blocks.len()));
        let len = block.len() as u16;
        out.extend(len.to_le_bytes());
        out.extend((!len).to_le_bytes());
        out.extend(*block);
    }
    let (mut a, mut b) = (1u32, 0u32);
    for &x in data {
        a = (a + u32::from(x)) % 65521;
        b = (b + a) % 65521;
    }
    out.extend(((b << 16) | a).to_be_bytes());
    out
}

/// An 8-bit PNG (colour type `color`, `cn` samples per pixel), Adam7-interlaced when asked;
/// without pixels, only its IHDR and IEND.
pub(super) fn raw_png(
    width: u32,
    height: u32,
    color: u8,
    cn: usize,
    pixels: &[u8],
    interlaced: bool,
) -> Vec<u8> {
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend(width.to_be_bytes());
    ihdr.extend(height.to_be_bytes());
    ihdr.extend([8, color, 0, 0, u8::from(interlaced)]);
    chunk(&mut out, b"IHDR", &ihdr);
    let (w, h) = (width as usize, height as usize);
    let passes: &[(usize, usize, usize, usize)] = if interlaced {
        &[
            (0, 0, 8, 8),
            (4, 0, 8, 8),
            (0, 4, 4, 8),
            (2, 0, 4, 4),
            (0, 2, 2, 4),
            (1, 0, 2, 2),
            (0, 1, 1, 2),
        ]
    } else {
        &[(0, 0, 1, 1)]
    };
    if !pixels.is_empty() {
        let mut scanlines = Vec::new();
        for &(x0, y0, dx, dy) in passes {
            if x0 >= w || y0 >= h {
                continue;
            }
            for y in (y0..h).step_by(dy) {
                scanlines.push(0); // filter: none
                for x in (x0..w).step_by(dx) {
                    scanlines.extend(&pixels[(y * w + x) * cn..][..cn]);
                }
            }
        }
        chunk(&mut out, b"IDAT", &zlib_stored(&scanlines));
    }
    chunk(&mut out, b"IEND", &[]);
    out
}

pub(super) fn decoded(data: &[u8]) -> (ImageInfo, Vec<u8>) {
    decode(data).expect("decodes")
}

/// The photo with its SOF0 frame size replaced.
pub(super) fn jpeg_with_size(width: u16, height: u16) -> Vec<u8> {
    let mut data = PHOTO.to_vec();
    let sof = data.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
    data[sof + 5..sof + 7].copy_from_slice(&height.to_be_bytes());
    data[sof + 7..sof + 9].copy_from_slice(&width.to_be_bytes());
    data
}

/// A PNG header (with valid CRCs) announcing a size its data does not have.
pub(super) fn png_with_size(width: u32, height: u32) -> Vec<u8> {
    let mut data = raw_png(width, height, 2, 3, &[], false);
    let iend = data.len() - 12;
    let mut idat = Vec::new();
    chunk(&mut idat, b"IDAT", &zlib_stored(&[0, 1, 2, 3, 4, 5, 6]));
    data.splice(iend..iend, idat);
    data
}

pub(super) fn resized(
    src: &[u8],
    (sw, sh, cn): (usize, usize, usize),
    (dw, dh): (usize, usize),
) -> Vec<u8> {
    let mut dst = vec![0; dw * dh * cn];
    resize_bilinear(src, sw, sh, cn, &mut dst, dw, dh);
    dst
}
