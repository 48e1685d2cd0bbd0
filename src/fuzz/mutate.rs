//! A seeded mutation engine: from a corpus entry, a new input with a few random edits.
//!
//! The edits are the usual ones of mutation fuzzers: bit and byte flips, arithmetic on
//! bytes, "interesting" integers (0, -1, powers of two and their neighbours) written over
//! 1, 2, 4 or 8 bytes in either byte order, length-field tweaks (a little- or big-endian
//! `u32`/`u64` nudged by a small amount or set to the input's length), truncation,
//! insertion, deletion and duplication of byte runs, ASCII digit edits (for JSON headers and
//! text numbers), dictionary tokens, and splicing with another corpus entry. Positions fall
//! in the first 4 KiB half of the time, where the headers of every format fuzzed here live.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Integers that often sit on the edge of a check.
const INTERESTING: [u64; 18] = [
    0,
    1,
    2,
    3,
    4,
    7,
    8,
    16,
    0x7f,
    0x80,
    0xff,
    0x100,
    0x7fff,
    0xffff,
    0x7fff_ffff,
    0xffff_ffff,
    0x7fff_ffff_ffff_ffff,
    u64::MAX,
];

/// Produces mutated inputs from a seeded random generator.
pub struct Mutator {
    rng: StdRng,
    /// The longest input produced.
    pub max_len: usize,
    /// Byte strings worth inserting or writing over (JSON keys, type names, markers).
    pub dictionary: Vec<Vec<u8>>,
}

impl Mutator {
    /// A mutator with this seed and length limit.
    pub fn new(seed: u64, max_len: usize) -> Mutator {
        Mutator {
            rng: StdRng::seed_from_u64(seed),
            max_len,
            dictionary: Vec::new(),
        }
    }

    /// A random index below `n` (which must be at least 1).
    pub fn below(&mut self, n: usize) -> usize {
        self.rng.gen_range(0..n)
    }

    /// A position in `0..len` (len at least 1), in the first 4 KiB half of the time.
    fn pos(&mut self, len: usize) -> usize {
        if len > 4096 && self.rng.gen_bool(0.5) {
            self.rng.gen_range(0..4096)
        } else {
            self.rng.gen_range(0..len)
        }
    }

    /// `input` with 1 to 4 stacked edits; `other` is a second entry to splice with.
    pub fn mutate(&mut self, input: &[u8], other: &[u8]) -> Vec<u8> {
        let mut out = input.to_vec();
        let edits = 1 + self.rng.gen_range(0..4usize).min(self.rng.gen_range(0..4));
        for _ in 0..edits {
            self.edit(&mut out, other);
        }
        out.truncate(self.max_len);
        out
    }

    /// One random edit of `buf`.
    fn edit(&mut self, buf: &mut Vec<u8>, other: &[u8]) {
        if buf.is_empty() {
            let n = self.rng.gen_range(1..16);
            buf.extend((0..n).map(|_| self.rng.gen::<u8>()));
            return;
        }
        let len = buf.len();
        match self.rng.gen_range(0..14) {
            0 => {
                let p = self.pos(len);
                buf[p] ^= 1 << self.rng.gen_range(0..8);
            }
            1 => {
                let p = self.pos(len);
                buf[p] = self.rng.gen();
            }
            2 => {
                let p = self.pos(len);
                let d = self.rng.gen_range(1..=16u8);
                buf[p] = if self.rng.gen() {
                    buf[p].wrapping_add(d)
                } else {
                    buf[p].wrapping_sub(d)
                };
            }
            3 | 4 => {
                // An interesting integer over 1, 2, 4 or 8 bytes, either byte order.
                let v = INTERESTING[self.below(INTERESTING.len())];
                let v = if self.rng.gen_bool(0.2) {
                    v.wrapping_neg()
                } else {
                    v
                };
                let width = [1, 2, 4, 8][self.below(4)];
                self.write_int(buf, v, width);
            }
            5 => {
                // A length field nudged, or set to the input's length.
                let width = [4, 8][self.below(2)];
                if len < width {
                    return;
                }
                let p = self.pos(len - width + 1);
                let be = self.rng.gen::<bool>();
                let old = read_uint(&buf[p..p + width], be);
                let new = match self.below(4) {
                    0 => len as u64,
                    1 => old.wrapping_add(self.rng.gen_range(1..=16)),
                    2 => old.wrapping_sub(self.rng.gen_range(1..=16)),
                    _ => old.wrapping_mul(2),
                };
                write_uint(&mut buf[p..p + width], new, be);
            }
            6 => {
                // Truncate.
                let n = self.pos(len);
                buf.truncate(n);
            }
            7 => {
                // Delete a run.
                let p = self.pos(len);
                let n = self.rng.gen_range(1..=(len - p).min(64));
                buf.drain(p..p + n);
            }
            8 => {
                // Insert a run of random bytes or of one repeated byte.
                let p = self.pos(len + 1).min(len);
                let n = self.rng.gen_range(1..=64);
                let run: Vec<u8> = if self.rng.gen() {
                    (0..n).map(|_| self.rng.gen()).collect()
                } else {
                    vec![self.rng.gen(); n]
                };
                buf.splice(p..p, run);
            }
            9 => {
                // Duplicate a run in place.
                let p = self.pos(len);
                let n = self.rng.gen_range(1..=(len - p).min(256));
                let run = buf[p..p + n].to_vec();
                let q = self.pos(len + 1).min(len);
                buf.splice(q..q, run);
            }
            10 => {
                // Splice: our head with the other entry's tail, cut at random points.
                if other.is_empty() {
                    return;
                }
                let a = self.pos(len + 1).min(len);
                let b = self.rng.gen_range(0..other.len());
                buf.truncate(a);
                buf.extend_from_slice(&other[b..]);
            }
            11 => {
                // An ASCII digit changed or a digit string inserted (JSON numbers).
                let digits: Vec<usize> = (0..len.min(4096))
                    .filter(|&i| buf[i].is_ascii_digit())
                    .collect();
                if digits.is_empty() {
                    return;
                }
                let p = digits[self.below(digits.len())];
                if self.rng.gen() {
                    buf[p] = b'0' + self.rng.gen_range(0..10);
                } else {
                    let s = ["0", "9", "99999999999", "18446744073709551615", "-1", "1e9"]
                        [self.below(6)];
                    buf.splice(p..p, s.bytes());
                }
            }
            _ => {
                // A dictionary token inserted or written over.
                if self.dictionary.is_empty() {
                    return;
                }
                let k = self.below(self.dictionary.len());
                let tok = self.dictionary[k].clone();
                let p = self.pos(len + 1).min(len);
                if self.rng.gen() {
                    buf.splice(p..p, tok);
                } else {
                    let end = (p + tok.len()).min(len);
                    buf.splice(p..end, tok);
                }
            }
        }
    }

    /// Writes the low `width` bytes of `v` at a random position, in a random byte order.
    fn write_int(&mut self, buf: &mut [u8], v: u64, width: usize) {
        if buf.len() < width {
            return;
        }
        let p = self.pos(buf.len() - width + 1);
        let be = self.rng.gen::<bool>();
        write_uint(&mut buf[p..p + width], v, be);
    }
}

/// The unsigned integer in `bytes` (1 to 8 of them), big- or little-endian.
fn read_uint(bytes: &[u8], big_endian: bool) -> u64 {
    let fold = |acc: u64, &b: &u8| (acc << 8) | b as u64;
    if big_endian {
        bytes.iter().fold(0, fold)
    } else {
        bytes.iter().rev().fold(0, fold)
    }
}

/// Writes the low `bytes.len()` bytes of `v` into `bytes`, big- or little-endian.
fn write_uint(bytes: &mut [u8], v: u64, big_endian: bool) {
    let n = bytes.len();
    for (i, b) in bytes.iter_mut().enumerate() {
        let shift = if big_endian { 8 * (n - 1 - i) } else { 8 * i };
        *b = (v >> shift) as u8;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_round_trip_in_both_orders() {
        let mut b = [0u8; 4];
        write_uint(&mut b, 0x0102_0304, true);
        assert_eq!(b, [1, 2, 3, 4]);
        assert_eq!(read_uint(&b, true), 0x0102_0304);
        write_uint(&mut b, 0x0102_0304, false);
        assert_eq!(b, [4, 3, 2, 1]);
        assert_eq!(read_uint(&b, false), 0x0102_0304);
    }

    #[test]
    fn mutations_are_seeded_bounded_and_varied() {
        let input: Vec<u8> = (0..200).collect();
        let run = |seed| {
            let mut m = Mutator::new(seed, 256);
            (0..500)
                .map(|_| m.mutate(&input, b"other"))
                .collect::<Vec<_>>()
        };
        let a = run(7);
        assert_eq!(a, run(7));
        assert_ne!(a, run(8));
        assert!(a.iter().all(|x| x.len() <= 256));
        let changed = a.iter().filter(|x| **x != input).count();
        assert!(changed > 450, "{changed}");
        let lengths: std::collections::HashSet<usize> = a.iter().map(Vec::len).collect();
        assert!(lengths.len() > 20, "{}", lengths.len());
    }
}
