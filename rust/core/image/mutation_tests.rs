//! Hostile input: random mutations of valid images must decode or fail, never panic.

use super::test_support::*;
use super::{decode_into_unguarded, probe_codec};

/// splitmix64: a deterministic stream for the mutation test.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn mutate(rng: &mut Rng, data: &mut Vec<u8>) {
    for _ in 0..=rng.below(3) {
        let at = rng.below(data.len());
        match rng.below(7) {
            0 => data[at] ^= 1 << rng.below(8),
            1 => data[at] = rng.next() as u8,
            2 => data.truncate(at.max(1)),
            3 => data
                .splice(at..at, (0..rng.below(16)).map(|_| rng.next() as u8))
                .for_each(drop),
            4 => drop(data.drain(at..(at + rng.below(32)).min(data.len()))),
            5 => data[at] = 0xFF,
            _ => {
                let end = (at + rng.below(64)).min(data.len());
                let copy = data[at..end].to_vec();
                let to = rng.below(data.len());
                data.splice(to..to, copy).for_each(drop);
            }
        }
        if data.is_empty() {
            data.push(0);
        }
    }
}

/// Random mutations of valid images: every call returns Ok or Err, none panics (decoders are
/// called without the production panic guard so that a decoder bug fails here).
#[test]
fn mutated_images_never_panic() {
    let interlaced = raw_png(9, 7, 6, 4, &[77; 9 * 7 * 4], true);
    let seeds: [&[u8]; 8] = [
        PHOTO,
        PHOTO_PROGRESSIVE,
        GRAY,
        SOLID_CMYK,
        RGBA_PNG,
        PALETTE_PNG,
        SOLID,
        &interlaced,
    ];
    let mut rng = Rng(0x5EED);
    let (mut ok, mut failed) = (0, 0);
    for _ in 0..5000 {
        let mut data = seeds[rng.below(seeds.len())].to_vec();
        mutate(&mut rng, &mut data);
        let Ok(probe) = probe_codec(&data) else {
            failed += 1;
            continue;
        };
        // Mutated headers may announce up to 2^28 pixels: decode only what a test can afford.
        if probe.info.width * probe.info.height > 1 << 16 {
            continue;
        }
        let mut out = vec![0; probe.info.byte_len()];
        match decode_into_unguarded(&data, &probe, &mut out) {
            Ok(_) => {
                ok += 1;
                let (w, h) = (1 + rng.below(40), 1 + rng.below(40));
                let info = probe.info;
                resized(&out, (info.width, info.height, info.channels), (w, h));
            }
            Err(_) => failed += 1,
        }
    }
    assert!(ok > 500 && failed > 500, "ok {ok}, failed {failed}");
}
