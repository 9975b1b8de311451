//! PNG: header probing and decoding with the `png` crate, converted to OpenCV's 8-bit channel layout.

use std::io::Cursor;

use super::{check_size, parsing_failed, Codec, ImageInfo, Probe};
use crate::error::Result;

fn png_reader(data: &[u8]) -> Result<png::Reader<Cursor<&[u8]>>> {
    let mut decoder = png::Decoder::new(Cursor::new(data));
    // Raw samples: the channel rules below are OpenCV's, not the png crate's EXPAND.
    decoder.set_transformations(png::Transformations::IDENTITY);
    decoder.set_ignore_text_chunk(true);
    decoder.set_ignore_iccp_chunk(true);
    decoder.read_info().map_err(|_| parsing_failed())
}

fn has_trns(info: &png::Info) -> bool {
    info.trns.as_deref().is_some_and(|t| !t.is_empty())
}

pub(super) fn probe_png(data: &[u8]) -> Result<Probe> {
    let reader = png_reader(data)?;
    let header = reader.info();
    let width = usize::try_from(header.width).map_err(|_| parsing_failed())?;
    let height = usize::try_from(header.height).map_err(|_| parsing_failed())?;
    check_size(width, height)?;
    let channels = match header.color_type {
        png::ColorType::Grayscale => 1,
        png::ColorType::GrayscaleAlpha | png::ColorType::Rgba => 4,
        png::ColorType::Rgb | png::ColorType::Indexed => {
            if header.color_type == png::ColorType::Indexed && header.palette.is_none() {
                return Err(parsing_failed());
            }
            if has_trns(header) {
                4
            } else {
                3
            }
        }
    };
    Ok(Probe {
        info: ImageInfo {
            width,
            height,
            channels,
        },
        codec: Codec::Png,
    })
}

/// Converts raw PNG rows (no filter byte, big-endian samples) to OpenCV's 8-bit channel layout.
struct PngRows {
    color: png::ColorType,
    bits: usize,
    width: usize,
    channels: usize,
    /// Palette as BGRA; entries past the PLTE are black and past the tRNS opaque, as in libpng.
    palette: Box<[[u8; 4]; 256]>,
    /// The tRNS colour key of an RGB image, in the image's sample depth.
    key: Option<[u16; 3]>,
}

impl PngRows {
    fn new(info: &png::Info, channels: usize) -> PngRows {
        let mut palette = Box::new([[0, 0, 0, 255]; 256]);
        if let Some(plte) = info.palette.as_deref() {
            for (entry, rgb) in palette.iter_mut().zip(plte.chunks_exact(3)) {
                *entry = [rgb[2], rgb[1], rgb[0], 255];
            }
        }
        let trns = info.trns.as_deref().unwrap_or_default();
        let mut key = None;
        match info.color_type {
            png::ColorType::Indexed => {
                palette
                    .iter_mut()
                    .zip(trns)
                    .for_each(|(entry, &a)| entry[3] = a);
            }
            png::ColorType::Rgb => {
                // The png crate keeps 16-bit keys as read and the low bytes of 8-bit ones (libpng too).
                key = match (info.bit_depth, trns) {
                    (png::BitDepth::Sixteen, &[r0, r1, g0, g1, b0, b1, ..]) => Some([
                        u16::from_be_bytes([r0, r1]),
                        u16::from_be_bytes([g0, g1]),
                        u16::from_be_bytes([b0, b1]),
                    ]),
                    (png::BitDepth::Eight, &[r, g, b, ..]) => Some([r.into(), g.into(), b.into()]),
                    _ => None,
                };
            }
            _ => {}
        }
        PngRows {
            color: info.color_type,
            bits: info.bit_depth as usize,
            width: info.width as usize,
            channels,
            palette,
            key,
        }
    }

    fn raw_len(&self) -> usize {
        (self.width * self.color.samples() * self.bits).div_ceil(8)
    }

    /// Sample `i` of a row packed at 1, 2 or 4 bits, most significant bits first.
    fn packed(&self, row: &[u8], i: usize) -> u8 {
        let bit = i * self.bits;
        let byte = row.get(bit / 8).copied().unwrap_or(0);
        (byte >> (8 - self.bits - bit % 8)) & ((1u8 << self.bits) - 1)
    }

    fn convert(&self, raw: &[u8], out: &mut [u8]) -> Result<()> {
        if raw.len() < self.raw_len() || out.len() != self.width * self.channels {
            return Err(parsing_failed());
        }
        let step = if self.bits == 16 { 2 } else { 1 }; // bytes per sample; keep the high byte
        match self.color {
            png::ColorType::Grayscale if self.bits >= 8 => {
                out.iter_mut()
                    .zip(raw.chunks_exact(step))
                    .for_each(|(o, s)| *o = s[0]);
            }
            png::ColorType::Grayscale => {
                // 1/2/4-bit gray scales to 0..255 (libpng's expand_gray_1_2_4_to_8).
                let scale = 255 / ((1u8 << self.bits) - 1);
                for (i, o) in out.iter_mut().enumerate() {
                    *o = self.packed(raw, i) * scale;
                }
            }
            png::ColorType::GrayscaleAlpha => {
                for (o, s) in out.chunks_exact_mut(4).zip(raw.chunks_exact(2 * step)) {
                    o.copy_from_slice(&[s[0], s[0], s[0], s[step]]);
                }
            }
            png::ColorType::Rgb => {
                for (o, s) in out
                    .chunks_exact_mut(self.channels)
                    .zip(raw.chunks_exact(3 * step))
                {
                    o[..3].copy_from_slice(&[s[2 * step], s[step], s[0]]);
                    if self.channels == 4 {
                        let sample = |i: usize| {
                            if step == 2 {
                                u16::from_be_bytes([s[2 * i], s[2 * i + 1]])
                            } else {
                                u16::from(s[i])
                            }
                        };
                        let keyed = self.key == Some([sample(0), sample(1), sample(2)]);
                        o[3] = if keyed { 0 } else { 255 };
                    }
                }
            }
            png::ColorType::Rgba => {
                for (o, s) in out.chunks_exact_mut(4).zip(raw.chunks_exact(4 * step)) {
                    o.copy_from_slice(&[s[2 * step], s[step], s[0], s[3 * step]]);
                }
            }
            png::ColorType::Indexed => {
                for (i, o) in out.chunks_exact_mut(self.channels).enumerate() {
                    let index = if self.bits == 8 {
                        raw[i]
                    } else {
                        self.packed(raw, i)
                    };
                    o.copy_from_slice(&self.palette[usize::from(index)][..self.channels]);
                }
            }
        }
        Ok(())
    }
}

pub(super) fn decode_png(data: &[u8], info: ImageInfo, out: &mut [u8]) -> Result<()> {
    let mut reader = png_reader(data)?;
    let header = reader.info();
    let (width, interlaced) = (header.width, header.interlaced);
    if (width as usize, header.height as usize) != (info.width, info.height) {
        return Err(parsing_failed());
    }
    let rows = PngRows::new(header, info.channels);
    let out_rows = out.chunks_exact_mut(info.width * info.channels);
    if interlaced {
        let mut raw = vec![0; reader.output_buffer_size().ok_or_else(parsing_failed)?];
        reader.next_frame(&mut raw).map_err(|_| parsing_failed())?;
        let line = reader.output_line_size(width).ok_or_else(parsing_failed)?;
        for (src, dst) in raw.chunks_exact(line).zip(out_rows) {
            rows.convert(src, dst)?;
        }
    } else {
        for dst in out_rows {
            let row = reader.next_row().map_err(|_| parsing_failed())?;
            rows.convert(row.ok_or_else(parsing_failed)?.data(), dst)?;
        }
    }
    // OpenCV reads up to IEND (png_read_end) and fails a file cut short after the image data.
    reader.finish().map_err(|_| parsing_failed())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::test_support::*;
    use crate::image::{decode, PARSING_FAILED};

    fn encode_png(
        (width, height): (u32, u32),
        color: png::ColorType,
        depth: png::BitDepth,
        palette: Option<&[u8]>,
        trns: Option<&[u8]>,
        data: &[u8],
    ) -> Vec<u8> {
        let mut out = Vec::new();
        let mut encoder = png::Encoder::new(&mut out, width, height);
        encoder.set_color(color);
        encoder.set_depth(depth);
        if let Some(palette) = palette {
            encoder.set_palette(palette.to_vec());
        }
        if let Some(trns) = trns {
            encoder.set_trns(trns.to_vec());
        }
        let mut writer = encoder.write_header().unwrap();
        writer.write_image_data(data).unwrap();
        writer.finish().unwrap();
        out
    }

    #[test]
    fn png_channel_rules() {
        use png::BitDepth::*;
        use png::ColorType::*;
        let gray16 = [0x12, 0x34, 0xAB, 0xCD];
        let rgb = [1, 2, 3, 4, 5, 6];
        let rgb16 = [1, 0, 2, 0, 3, 0, 1, 0, 2, 0, 4, 0];
        let palette = [10, 20, 30, 40, 50, 60];
        #[rustfmt::skip]
        let cases: Vec<(Vec<u8>, usize, Vec<u8>)> = vec![
            (encode_png((2, 1), Grayscale, Eight, None, None, &[7, 250]), 1, vec![7, 250]),
            (encode_png((2, 1), Grayscale, Sixteen, None, None, &gray16), 1, vec![0x12, 0xAB]),
            (encode_png((3, 1), Grayscale, One, None, None, &[0b1010_0000]), 1, vec![255, 0, 255]),
            (encode_png((3, 1), Grayscale, Two, None, None, &[0b0001_1100]), 1, vec![0, 85, 255]),
            (encode_png((2, 1), Grayscale, Four, None, None, &[0x1F]), 1, vec![17, 255]),
            // OpenCV ignores a gray tRNS key: still one channel.
            (encode_png((2, 1), Grayscale, Eight, None, Some(&[0, 7]), &[7, 250]), 1, vec![7, 250]),
            (encode_png((1, 1), GrayscaleAlpha, Eight, None, None, &[9, 99]), 4, vec![9, 9, 9, 99]),
            (encode_png((1, 1), GrayscaleAlpha, Sixteen, None, None, &[9, 1, 99, 2]), 4, vec![9, 9, 9, 99]),
            (encode_png((2, 1), Rgb, Eight, None, None, &rgb), 3, vec![3, 2, 1, 6, 5, 4]),
            (encode_png((2, 1), Rgb, Eight, None, Some(&[0, 4, 0, 5, 0, 6]), &rgb), 4, vec![3, 2, 1, 255, 6, 5, 4, 0]),
            (encode_png((2, 1), Rgb, Sixteen, None, Some(&[1, 0, 2, 0, 3, 0]), &rgb16), 4, vec![3, 2, 1, 0, 4, 2, 1, 255]),
            (encode_png((1, 1), Rgba, Eight, None, None, &[1, 2, 3, 4]), 4, vec![3, 2, 1, 4]),
            (encode_png((1, 1), Rgba, Sixteen, None, None, &[1, 9, 2, 9, 3, 9, 4, 9]), 4, vec![3, 2, 1, 4]),
            (encode_png((2, 1), Indexed, Eight, Some(&palette), None, &[1, 0]), 3, vec![60, 50, 40, 30, 20, 10]),
            (encode_png((2, 1), Indexed, Eight, Some(&palette), Some(&[128]), &[1, 0]), 4, vec![60, 50, 40, 255, 30, 20, 10, 128]),
            // A 2-bit index past the palette is black, as libpng's zero-filled palette gives.
            (encode_png((3, 1), Indexed, Two, Some(&palette), None, &[0b0100_1100]), 3, vec![60, 50, 40, 30, 20, 10, 0, 0, 0]),
        ];
        for (i, (data, channels, expected)) in cases.into_iter().enumerate() {
            let (info, pixels) = decoded(&data);
            assert_eq!((info.channels, &pixels), (channels, &expected), "case {i}");
        }
    }

    #[test]
    fn png_interlaced_equals_progressive_rows() {
        let (w, h) = (13, 11);
        let pixels: Vec<u8> = (0..w * h * 3).map(|i| (i * 7 % 251) as u8).collect();
        let plain = decoded(&raw_png(w as u32, h as u32, 2, 3, &pixels, false));
        let interlaced = decoded(&raw_png(w as u32, h as u32, 2, 3, &pixels, true));
        assert_eq!(plain, interlaced);
        let bgr: Vec<u8> = pixels
            .chunks_exact(3)
            .flat_map(|p| [p[2], p[1], p[0]])
            .collect();
        assert_eq!(plain.1, bgr);
    }

    #[test]
    fn png_truncated_or_without_iend_fails() {
        for len in (1..RGBA_PNG.len()).step_by(7).chain([RGBA_PNG.len() - 1]) {
            assert_eq!(error(decode(&RGBA_PNG[..len])), PARSING_FAILED, "len {len}");
        }
        assert_eq!(
            decoded(RGBA_PNG).0,
            ImageInfo {
                width: 24,
                height: 16,
                channels: 4
            }
        );
        assert_eq!(
            decoded(PALETTE_PNG).0,
            ImageInfo {
                width: 24,
                height: 16,
                channels: 4
            }
        );
    }
}
