//! Reader for IDX files, the format of MNIST and Fashion-MNIST, plain or gzip-compressed.
//!
//! Layout: two zero bytes, a type byte (`0x08` = unsigned byte, the only type read here),
//! a byte with the number of dimensions, each dimension as a big-endian `u32`, then the
//! values in row-major order. A file that starts with the gzip magic `1f 8b` is
//! decompressed first, whatever its name.
//!
//! Every problem with a user's file is an [`IdxError`] that names the file, says what
//! was wrong and how to fix it; nothing here panics on file contents.

use flate2::read::MultiGzDecoder;
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

/// The type byte of unsigned-byte data.
const TYPE_U8: u8 = 0x08;

/// The values of an IDX file: its dimensions and its bytes in row-major order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxArray {
    /// The dimensions from the header, outermost first (e.g. `[60000, 28, 28]`).
    pub dims: Vec<usize>,
    /// The values, `dims.iter().product()` of them.
    pub data: Vec<u8>,
}

/// What can be wrong with an IDX file.
#[derive(Debug)]
pub enum IdxError {
    /// The file could not be opened or read.
    Unreadable {
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// The file starts like gzip but does not decompress.
    CorruptGzip {
        /// The file.
        path: PathBuf,
        /// The decoder's reason.
        source: std::io::Error,
    },
    /// The header is shorter than it must be.
    ShortHeader {
        /// The file.
        path: PathBuf,
        /// The (decompressed) length of the file.
        len: usize,
        /// The length the header needs.
        needed: usize,
    },
    /// The first two bytes are not zero.
    BadMagic {
        /// The file.
        path: PathBuf,
        /// The first four bytes found.
        found: [u8; 4],
    },
    /// A type byte other than `0x08` (unsigned byte).
    UnsupportedType {
        /// The file.
        path: PathBuf,
        /// The type byte found.
        type_byte: u8,
    },
    /// The dimensions multiply to more elements than memory can address.
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The dimensions from the header.
        dims: Vec<usize>,
    },
    /// The data after the header is not as long as the header promises.
    WrongLength {
        /// The file.
        path: PathBuf,
        /// The bytes of data after the header.
        have: usize,
        /// The bytes the dimensions promise.
        promised: usize,
        /// The dimensions from the header.
        dims: Vec<usize>,
    },
}

impl fmt::Display for IdxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IdxError::Unreadable { path, source } => {
                write!(f, "cannot read IDX file {}: {source}", path.display())
            }
            IdxError::CorruptGzip { path, source } => write!(
                f,
                "file {} starts like gzip but does not decompress ({source}); the download is \
                 probably incomplete or damaged: fetch or install it again",
                path.display()
            ),
            IdxError::ShortHeader { path, len, needed } => write!(
                f,
                "file {} holds only {len} bytes, too few for an IDX header ({needed} bytes); \
                 it is empty or cut short: fetch or install it again",
                path.display()
            ),
            IdxError::BadMagic { path, found } => {
                write!(
                    f,
                    "file {} is not an IDX file: it starts with bytes {:02x} {:02x} {:02x} {:02x}, \
                     an IDX file starts with 00 00",
                    path.display(),
                    found[0],
                    found[1],
                    found[2],
                    found[3]
                )?;
                if found[0] == b'<' {
                    write!(
                        f,
                        " (this looks like an HTML page saved in place of the data)"
                    )?;
                }
                write!(
                    f,
                    "; give the MNIST-format files (train-images-idx3-ubyte[.gz] and the like)"
                )
            }
            IdxError::UnsupportedType { path, type_byte } => write!(
                f,
                "file {} holds IDX values of type 0x{type_byte:02x} ({}); neurite reads only \
                 unsigned-byte IDX files (type 0x08), as MNIST and Fashion-MNIST are",
                path.display(),
                type_name(*type_byte)
            ),
            IdxError::TooLarge { path, dims } => write!(
                f,
                "file {} has a header with dimensions {dims:?}, more values than this machine \
                 can address; the header is corrupt",
                path.display()
            ),
            IdxError::WrongLength {
                path,
                have,
                promised,
                dims,
            } => {
                write!(
                    f,
                    "file {} holds {have} bytes of data, its header promises {promised} \
                     (dimensions {dims:?}); ",
                    path.display()
                )?;
                if have < promised {
                    write!(f, "the file is cut short: fetch or install it again")
                } else {
                    write!(f, "the file has extra bytes at its end and may be corrupt")
                }
            }
        }
    }
}

impl std::error::Error for IdxError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            IdxError::Unreadable { source, .. } | IdxError::CorruptGzip { source, .. } => {
                Some(source)
            }
            _ => None,
        }
    }
}

/// The name of an IDX type byte, for error messages.
fn type_name(type_byte: u8) -> &'static str {
    match type_byte {
        0x08 => "unsigned byte",
        0x09 => "signed byte",
        0x0B => "16-bit integer",
        0x0C => "32-bit integer",
        0x0D => "32-bit float",
        0x0E => "64-bit float",
        _ => "not an IDX type",
    }
}

/// Reads an IDX file of unsigned bytes, plain or gzip-compressed.
pub fn read_idx(path: &Path) -> Result<IdxArray, IdxError> {
    let raw = std::fs::read(path).map_err(|source| IdxError::Unreadable {
        path: path.to_path_buf(),
        source,
    })?;
    let bytes = if raw.starts_with(&[0x1f, 0x8b]) {
        gunzip(&raw).map_err(|source| IdxError::CorruptGzip {
            path: path.to_path_buf(),
            source,
        })?
    } else {
        raw
    };
    parse_idx(bytes, path)
}

/// Decompresses a whole gzip stream (all members, as `gunzip` does).
fn gunzip(raw: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(raw.len() * 4);
    MultiGzDecoder::new(raw).read_to_end(&mut out)?;
    Ok(out)
}

/// Parses the (decompressed) bytes of an IDX file; `path` only names it in errors.
pub fn parse_idx(mut bytes: Vec<u8>, path: &Path) -> Result<IdxArray, IdxError> {
    let path_buf = || path.to_path_buf();
    if bytes.len() < 4 {
        return Err(IdxError::ShortHeader {
            path: path_buf(),
            len: bytes.len(),
            needed: 4,
        });
    }
    if bytes[0] != 0 || bytes[1] != 0 {
        return Err(IdxError::BadMagic {
            path: path_buf(),
            found: [bytes[0], bytes[1], bytes[2], bytes[3]],
        });
    }
    if bytes[2] != TYPE_U8 {
        return Err(IdxError::UnsupportedType {
            path: path_buf(),
            type_byte: bytes[2],
        });
    }
    let rank = bytes[3] as usize;
    let header_len = 4 + 4 * rank;
    if bytes.len() < header_len {
        return Err(IdxError::ShortHeader {
            path: path_buf(),
            len: bytes.len(),
            needed: header_len,
        });
    }
    let dims: Vec<usize> = bytes[4..header_len]
        .chunks_exact(4)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
        .collect();
    let promised = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| IdxError::TooLarge {
            path: path_buf(),
            dims: dims.clone(),
        })?;
    let have = bytes.len() - header_len;
    if have != promised {
        return Err(IdxError::WrongLength {
            path: path_buf(),
            have,
            promised,
            dims,
        });
    }
    // Drop the header in place rather than copying the (possibly 47 MB) data.
    bytes.drain(..header_len);
    Ok(IdxArray { dims, data: bytes })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use flate2::write::GzEncoder;
    use flate2::Compression;
    use std::io::Write;

    /// A fresh, empty directory under the system temp dir, unique to this test and process.
    pub(crate) fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("neurite-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// The bytes of an unsigned-byte IDX file with these dimensions and values.
    pub(crate) fn idx_bytes(dims: &[u32], data: &[u8]) -> Vec<u8> {
        let mut out = vec![0, 0, TYPE_U8, dims.len() as u8];
        for d in dims {
            out.extend_from_slice(&d.to_be_bytes());
        }
        out.extend_from_slice(data);
        out
    }

    /// `bytes` gzip-compressed.
    pub(crate) fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut enc = GzEncoder::new(Vec::new(), Compression::default());
        enc.write_all(bytes).unwrap();
        enc.finish().unwrap()
    }

    fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    fn err(path: &Path) -> String {
        read_idx(path).unwrap_err().to_string()
    }

    #[test]
    fn reads_plain_rank3() {
        let dir = temp_dir("idx-plain");
        let data: Vec<u8> = (0..24).collect();
        let path = write(&dir, "a-idx3-ubyte", &idx_bytes(&[2, 3, 4], &data));
        let arr = read_idx(&path).unwrap();
        assert_eq!(arr.dims, vec![2, 3, 4]);
        assert_eq!(arr.data, data);
    }

    #[test]
    fn reads_gzip_by_magic_not_name() {
        let dir = temp_dir("idx-gzip");
        let data = [9u8, 0, 255, 7, 3];
        // Named without .gz on purpose: the magic bytes decide.
        let path = write(&dir, "labels-idx1-ubyte", &gzip(&idx_bytes(&[5], &data)));
        let arr = read_idx(&path).unwrap();
        assert_eq!(arr.dims, vec![5]);
        assert_eq!(arr.data, data.to_vec());
    }

    #[test]
    fn reads_rank0_and_empty_dims() {
        let dir = temp_dir("idx-rank0");
        let scalar = read_idx(&write(&dir, "s", &idx_bytes(&[], &[42]))).unwrap();
        assert_eq!((scalar.dims, scalar.data), (vec![], vec![42]));
        let empty = read_idx(&write(&dir, "e", &idx_bytes(&[0, 28, 28], &[]))).unwrap();
        assert_eq!((empty.dims, empty.data.len()), (vec![0, 28, 28], 0));
    }

    #[test]
    fn truncated_data_says_how_much() {
        let dir = temp_dir("idx-trunc");
        let path = write(&dir, "t", &idx_bytes(&[2, 3, 4], &[1; 20]));
        let msg = err(&path);
        assert!(
            msg.contains("holds 20 bytes of data, its header promises 24"),
            "{msg}"
        );
        assert!(msg.contains(&path.display().to_string()), "{msg}");
        assert!(msg.contains("cut short"), "{msg}");
    }

    #[test]
    fn extra_data_is_an_error() {
        let dir = temp_dir("idx-extra");
        let msg = err(&write(&dir, "x", &idx_bytes(&[3], &[1, 2, 3, 4])));
        assert!(
            msg.contains("holds 4 bytes of data, its header promises 3"),
            "{msg}"
        );
        assert!(msg.contains("extra bytes"), "{msg}");
    }

    #[test]
    fn bad_magic_and_html() {
        let dir = temp_dir("idx-magic");
        let msg = err(&write(&dir, "m", &[1, 2, 8, 1, 0, 0, 0, 0]));
        assert!(msg.contains("is not an IDX file"), "{msg}");
        assert!(msg.contains("01 02 08 01"), "{msg}");
        let msg = err(&write(&dir, "h", b"<!DOCTYPE html><html>"));
        assert!(msg.contains("HTML page"), "{msg}");
    }

    #[test]
    fn unsupported_type_is_named() {
        let dir = temp_dir("idx-type");
        let mut bytes = idx_bytes(&[1], &[0, 0, 0, 0]);
        bytes[2] = 0x0D;
        let msg = err(&write(&dir, "f", &bytes));
        assert!(msg.contains("type 0x0d (32-bit float)"), "{msg}");
        assert!(msg.contains("only unsigned-byte"), "{msg}");
    }

    #[test]
    fn short_header() {
        let dir = temp_dir("idx-short");
        let msg = err(&write(&dir, "empty", &[]));
        assert!(msg.contains("holds only 0 bytes"), "{msg}");
        // Rank 3 needs 16 header bytes; give 10.
        let msg = err(&write(&dir, "cut", &idx_bytes(&[60000, 28, 28], &[])[..10]));
        assert!(msg.contains("holds only 10 bytes"), "{msg}");
        assert!(msg.contains("(16 bytes)"), "{msg}");
    }

    #[test]
    fn truncated_and_corrupt_gzip() {
        let dir = temp_dir("idx-badgz");
        let gz = gzip(&idx_bytes(&[100], &[5; 100]));
        let msg = err(&write(&dir, "cut.gz", &gz[..gz.len() / 2]));
        assert!(msg.contains("does not decompress"), "{msg}");
        assert!(msg.contains("cut.gz"), "{msg}");
        let mut bad = gz.clone();
        for b in bad[10..].iter_mut() {
            *b ^= 0x5a;
        }
        let msg = err(&write(&dir, "bad.gz", &bad));
        assert!(msg.contains("does not decompress"), "{msg}");
    }

    #[test]
    fn missing_file_is_unreadable() {
        let dir = temp_dir("idx-missing");
        let msg = err(&dir.join("nope"));
        assert!(msg.starts_with("cannot read IDX file"), "{msg}");
        assert!(msg.contains("nope"), "{msg}");
    }

    #[test]
    fn huge_dims_do_not_overflow() {
        let dir = temp_dir("idx-huge");
        let bytes = idx_bytes(&[u32::MAX, u32::MAX, u32::MAX], &[]);
        let msg = err(&write(&dir, "huge", &bytes));
        assert!(
            msg.contains("header is corrupt") || msg.contains("promises"),
            "{msg}"
        );
    }
}
