//! TFRecord reading, for TF Serving's warmup file (`assets.extra/tf_serving_warmup_requests`).
//!
//! A record is `length: u64 LE`, `masked crc32c(length bytes): u32 LE`, `data[length]`,
//! `masked crc32c(data): u32 LE`, with TensorFlow's mask `((crc >> 15) | (crc << 17)) + 0xa282ead8`.

const MASK_DELTA: u32 = 0xa282_ead8;

/// CRC-32C (Castagnoli, reflected polynomial 0x82f63b78), slicing by 8.
pub fn crc32c(data: &[u8]) -> u32 {
    static TABLES: std::sync::OnceLock<[[u32; 256]; 8]> = std::sync::OnceLock::new();
    let t = TABLES.get_or_init(|| {
        let mut t = [[0u32; 256]; 8];
        for i in 0..256u32 {
            let mut c = i;
            for _ in 0..8 {
                c = if c & 1 != 0 {
                    (c >> 1) ^ 0x82f6_3b78
                } else {
                    c >> 1
                };
            }
            t[0][i as usize] = c;
        }
        for i in 0..256 {
            for k in 1..8 {
                let prev = t[k - 1][i];
                t[k][i] = (prev >> 8) ^ t[0][(prev & 0xff) as usize];
            }
        }
        t
    });
    let mut crc = !0u32;
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let lo = crc ^ u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        crc = t[7][(lo & 0xff) as usize]
            ^ t[6][((lo >> 8) & 0xff) as usize]
            ^ t[5][((lo >> 16) & 0xff) as usize]
            ^ t[4][(lo >> 24) as usize]
            ^ t[3][c[4] as usize]
            ^ t[2][c[5] as usize]
            ^ t[1][c[6] as usize]
            ^ t[0][c[7] as usize];
    }
    for &b in chunks.remainder() {
        crc = (crc >> 8) ^ t[0][((crc ^ b as u32) & 0xff) as usize];
    }
    !crc
}

pub fn masked_crc32c(data: &[u8]) -> u32 {
    let crc = crc32c(data);
    crc.rotate_right(15).wrapping_add(MASK_DELTA)
}

/// The records of a TFRecord file as (offset, length) of their data; at most `limit` + 1 of them
/// (the caller reports "more than `limit`"). Errors name the record and what is wrong with it.
pub fn records(buf: &[u8], limit: usize) -> Result<Vec<(usize, usize)>, String> {
    let mut out = Vec::new();
    let mut pos = 0usize;
    while pos < buf.len() && out.len() <= limit {
        let n = out.len();
        let header = buf
            .get(pos..pos + 12)
            .ok_or_else(|| format!("record {n} at byte {pos}: truncated header"))?;
        let (len_bytes, len_crc) = header.split_at(8);
        if masked_crc32c(len_bytes) != u32::from_le_bytes(len_crc.try_into().unwrap()) {
            return Err(format!(
                "record {n} at byte {pos}: corrupted length (CRC mismatch)"
            ));
        }
        let len = u64::from_le_bytes(len_bytes.try_into().unwrap());
        let start = pos + 12;
        let end = usize::try_from(len)
            .ok()
            .and_then(|len| start.checked_add(len))
            .filter(|&end| end.checked_add(4).is_some_and(|e| e <= buf.len()))
            .ok_or_else(|| {
                format!("record {n} at byte {pos}: truncated data ({len} bytes declared)")
            })?;
        let data_crc = u32::from_le_bytes(buf[end..end + 4].try_into().unwrap());
        if masked_crc32c(&buf[start..end]) != data_crc {
            return Err(format!(
                "record {n} at byte {pos}: corrupted data (CRC mismatch)"
            ));
        }
        out.push((start, end - start));
        pos = end + 4;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(data: &[u8]) -> Vec<u8> {
        let len = (data.len() as u64).to_le_bytes();
        let mut out = len.to_vec();
        out.extend_from_slice(&masked_crc32c(&len).to_le_bytes());
        out.extend_from_slice(data);
        out.extend_from_slice(&masked_crc32c(data).to_le_bytes());
        out
    }

    #[test]
    fn crc32c_check_values() {
        assert_eq!(crc32c(b"123456789"), 0xe306_9283);
        assert_eq!(crc32c(b""), 0);
        assert_eq!(crc32c(&[0u8; 32]), 0x8a91_36aa);
        let long: Vec<u8> = (0..1000u32).map(|i| (i * 7) as u8).collect();
        let bytewise = long.iter().fold(!0u32, |crc, &b| {
            let mut c = crc ^ b as u32;
            for _ in 0..8 {
                c = if c & 1 != 0 {
                    (c >> 1) ^ 0x82f6_3b78
                } else {
                    c >> 1
                };
            }
            c
        });
        assert_eq!(crc32c(&long), !bytewise);
    }

    #[test]
    fn reads_records_and_stops_after_the_limit() {
        let mut file = frame(b"abc");
        file.extend(frame(b""));
        file.extend(frame(b"hello world"));
        let spans = records(&file, 10).unwrap();
        let got: Vec<&[u8]> = spans.iter().map(|&(o, l)| &file[o..o + l]).collect();
        assert_eq!(got, vec![&b"abc"[..], b"", b"hello world"]);
        assert_eq!(records(&file, 1).unwrap().len(), 2);
        assert!(records(&[], 10).unwrap().is_empty());
    }

    #[test]
    fn refuses_bad_framing() {
        let good = frame(b"abcdef");
        let mut bad_len = good.clone();
        bad_len[0] ^= 1;
        assert!(records(&bad_len, 10)
            .unwrap_err()
            .contains("corrupted length"));
        let mut bad_data = good.clone();
        bad_data[13] ^= 1;
        assert!(records(&bad_data, 10)
            .unwrap_err()
            .contains("corrupted data"));
        assert!(records(&good[..good.len() - 1], 10)
            .unwrap_err()
            .contains("truncated data"));
        assert!(records(&good[..5], 10)
            .unwrap_err()
            .contains("truncated header"));
        let mut huge = u64::MAX.to_le_bytes().to_vec();
        huge.extend_from_slice(&masked_crc32c(&u64::MAX.to_le_bytes()).to_le_bytes());
        assert!(records(&huge, 10).unwrap_err().contains("truncated data"));
    }
}
