//! Compressed requests (`grpc-encoding: gzip | deflate`), as grpcio's server accepts them. Replies are
//! always sent uncompressed, which every client must accept.

use std::io::Read;

use bytes::Bytes;
use http::HeaderMap;

use super::framing::code;

/// What a message's compressed flag refers to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    Identity,
    Gzip,
    /// gRPC's "deflate" is zlib-wrapped (RFC 1950), as grpc-core writes it.
    Deflate,
}

pub fn request_encoding(headers: &HeaderMap) -> Result<Encoding, (i32, String)> {
    let Some(value) = headers.get("grpc-encoding") else {
        return Ok(Encoding::Identity);
    };
    match value.to_str().unwrap_or("?") {
        "identity" => Ok(Encoding::Identity),
        "gzip" => Ok(Encoding::Gzip),
        "deflate" => Ok(Encoding::Deflate),
        other => Err((
            code::UNIMPLEMENTED,
            format!("Compression algorithm '{other}' is not supported"),
        )),
    }
}

/// Decompresses `chunks` (one message), refusing output beyond `limit` bytes before producing it all.
pub fn decompress(
    encoding: Encoding,
    chunks: &[Bytes],
    limit: usize,
) -> Result<Vec<u8>, (i32, String)> {
    let compressed = chunks.concat();
    let reader: Box<dyn Read> = match encoding {
        Encoding::Gzip => Box::new(flate2::read::GzDecoder::new(&compressed[..])),
        Encoding::Deflate => Box::new(flate2::read::ZlibDecoder::new(&compressed[..])),
        Encoding::Identity => {
            return Err((
                code::INTERNAL,
                "Compressed message without grpc-encoding".into(),
            ))
        }
    };
    let mut out = Vec::new();
    reader
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| {
            (
                code::INTERNAL,
                format!("Failed to decompress the request: {e}"),
            )
        })?;
    if out.len() > limit {
        return Err((
            code::RESOURCE_EXHAUSTED,
            format!(
                "Received message larger than max (more than {limit} bytes after decompression)"
            ),
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn zlib(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn gzip_and_deflate_round_trip_across_chunks() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        for (encoding, packed) in [
            (Encoding::Gzip, gzip(&data)),
            (Encoding::Deflate, zlib(&data)),
        ] {
            let (a, b) = packed.split_at(packed.len() / 2);
            let chunks = [Bytes::copy_from_slice(a), Bytes::copy_from_slice(b)];
            assert_eq!(decompress(encoding, &chunks, data.len()).unwrap(), data);
        }
    }

    #[test]
    fn a_bomb_stops_at_the_limit() {
        let packed = gzip(&vec![0u8; 10 << 20]);
        assert!(packed.len() < 64 << 10);
        let err = decompress(Encoding::Gzip, &[Bytes::from(packed)], 1 << 20).unwrap_err();
        assert_eq!(err.0, code::RESOURCE_EXHAUSTED);
    }

    #[test]
    fn corrupt_data_is_an_error() {
        let err = decompress(Encoding::Gzip, &[Bytes::from_static(b"not gzip")], 1024).unwrap_err();
        assert_eq!(err.0, code::INTERNAL);
    }

    #[test]
    fn encodings_from_headers() {
        let mut h = HeaderMap::new();
        assert_eq!(request_encoding(&h), Ok(Encoding::Identity));
        h.insert("grpc-encoding", "gzip".parse().unwrap());
        assert_eq!(request_encoding(&h), Ok(Encoding::Gzip));
        h.insert("grpc-encoding", "snappy".parse().unwrap());
        assert_eq!(request_encoding(&h).unwrap_err().0, code::UNIMPLEMENTED);
    }
}
