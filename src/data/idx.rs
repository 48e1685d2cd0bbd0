//! Reader for IDX files, the format of MNIST and Fashion-MNIST, plain or gzip-compressed.
//!
//! Layout: two zero bytes, a type byte (`0x08` = unsigned byte, the only type read here),
//! a byte with the number of dimensions, each dimension as a big-endian `u32`, then the
//! values in row-major order. A file that starts with the gzip magic `1f 8b` is read
//! through a gzip decoder, whatever its name.
//!
//! Reads are bounded by the header: it is read first, its dimensions must multiply to at
//! most [`MAX_IDX_VALUES`], then exactly that many bytes are read from the (decompressing)
//! stream and the stream must end there. A small gzip file that inflates to gigabytes is
//! refused after inflating only what its header promises.
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
    /// The dimensions multiply to more than [`MAX_IDX_VALUES`] values.
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The dimensions from the header.
        dims: Vec<usize>,
    },
    /// The data after the header is shorter than the header promises.
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
    /// The file goes on after the values the header promises.
    TrailingData {
        /// The file.
        path: PathBuf,
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
                "file {} has a header with dimensions {dims:?}, more than the {MAX_IDX_VALUES} \
                 values neurite reads from an IDX file; the header is corrupt: fetch or \
                 install the file again",
                path.display()
            ),
            IdxError::WrongLength {
                path,
                have,
                promised,
                dims,
            } => write!(
                f,
                "file {} holds {have} bytes of data, its header promises {promised} \
                 (dimensions {dims:?}); the file is cut short: fetch or install it again",
                path.display()
            ),
            IdxError::TrailingData {
                path,
                promised,
                dims,
            } => write!(
                f,
                "file {} has trailing data: more than the {promised} bytes of data its header \
                 promises (dimensions {dims:?}); the file has extra bytes at its end and may \
                 be corrupt: fetch or install it again",
                path.display()
            ),
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

/// The most values an IDX file may hold: 2^31 (2 GiB of unsigned bytes), about 45 times
/// the 47 million of Fashion-MNIST's training images. A header promising more is refused
/// before anything is read or allocated.
pub const MAX_IDX_VALUES: usize = 1 << 31;

/// The gzip magic bytes.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Reads an IDX file of unsigned bytes, plain or gzip-compressed.
///
/// The header is read first and the data after it is read (decompressed) only up to the
/// size the header promises, so a small file that inflates to gigabytes is refused without
/// being inflated.
pub fn read_idx(path: &Path) -> Result<IdxArray, IdxError> {
    let file = std::fs::File::open(path).map_err(|source| IdxError::Unreadable {
        path: path.to_path_buf(),
        source,
    })?;
    read_idx_from(std::io::BufReader::with_capacity(1 << 16, file), path)
}

/// Reads an IDX stream, plain or gzip-compressed (told apart by the gzip magic bytes);
/// `path` only names it in errors.
pub fn read_idx_from<R: Read>(mut reader: R, path: &Path) -> Result<IdxArray, IdxError> {
    let mut start = [0u8; 4];
    let got = read_full(&mut reader, &mut start).map_err(|e| unreadable(path, e))?;
    if got >= 2 && start[..2] == GZIP_MAGIC {
        let chained = std::io::Cursor::new(start).take(got as u64).chain(reader);
        let mut gz = MultiGzDecoder::new(chained);
        return read_stream(&mut gz, path, |source| IdxError::CorruptGzip {
            path: path.to_path_buf(),
            source,
        });
    }
    let mut plain = std::io::Cursor::new(start).take(got as u64).chain(reader);
    read_stream(&mut plain, path, |e| unreadable(path, e))
}

/// Parses the (decompressed) bytes of an IDX file; `path` only names it in errors.
pub fn parse_idx(bytes: &[u8], path: &Path) -> Result<IdxArray, IdxError> {
    read_stream(&mut &bytes[..], path, |e| unreadable(path, e))
}

fn unreadable(path: &Path, source: std::io::Error) -> IdxError {
    IdxError::Unreadable {
        path: path.to_path_buf(),
        source,
    }
}

/// Reads into `buf` until it is full or the stream ends; returns the bytes read.
fn read_full<R: Read + ?Sized>(reader: &mut R, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match reader.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Reads the header, then exactly the values it promises, then checks that the stream ends.
/// `io_error` turns a read error into the error for this kind of stream.
fn read_stream<R: Read>(
    reader: &mut R,
    path: &Path,
    io_error: impl Fn(std::io::Error) -> IdxError,
) -> Result<IdxArray, IdxError> {
    let path_buf = || path.to_path_buf();
    let mut head = [0u8; 4];
    let got = read_full(reader, &mut head).map_err(&io_error)?;
    if got < 4 {
        return Err(IdxError::ShortHeader {
            path: path_buf(),
            len: got,
            needed: 4,
        });
    }
    if head[0] != 0 || head[1] != 0 {
        return Err(IdxError::BadMagic {
            path: path_buf(),
            found: head,
        });
    }
    if head[2] != TYPE_U8 {
        return Err(IdxError::UnsupportedType {
            path: path_buf(),
            type_byte: head[2],
        });
    }
    let rank = head[3] as usize;
    let mut dim_bytes = vec![0u8; 4 * rank];
    let got = read_full(reader, &mut dim_bytes).map_err(&io_error)?;
    if got < dim_bytes.len() {
        return Err(IdxError::ShortHeader {
            path: path_buf(),
            len: 4 + got,
            needed: 4 + 4 * rank,
        });
    }
    let dims: Vec<usize> = dim_bytes
        .chunks_exact(4)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
        .collect();
    let promised = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .filter(|&n| n <= MAX_IDX_VALUES)
        .ok_or_else(|| IdxError::TooLarge {
            path: path_buf(),
            dims: dims.clone(),
        })?;
    // The capacity is what the header promises, up to 64 MiB (all of Fashion-MNIST's
    // training images in one allocation); a larger file grows it as its data arrives.
    let mut data = Vec::with_capacity(promised.min(1 << 26));
    reader
        .by_ref()
        .take(promised as u64)
        .read_to_end(&mut data)
        .map_err(&io_error)?;
    if data.len() < promised {
        return Err(IdxError::WrongLength {
            path: path_buf(),
            have: data.len(),
            promised,
            dims,
        });
    }
    let mut extra = [0u8; 1];
    if read_full(reader, &mut extra).map_err(&io_error)? > 0 {
        return Err(IdxError::TrailingData {
            path: path_buf(),
            promised,
            dims,
        });
    }
    Ok(IdxArray { dims, data })
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
        let path = write(&dir, "x", &idx_bytes(&[3], &[1, 2, 3, 4]));
        let msg = err(&path);
        assert!(
            msg.contains("has trailing data: more than the 3 bytes of data its header promises"),
            "{msg}"
        );
        assert!(msg.contains(&path.display().to_string()), "{msg}");
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
        let path = write(&dir, "huge", &bytes);
        let msg = err(&path);
        assert!(
            msg.contains("dimensions [4294967295, 4294967295, 4294967295]"),
            "{msg}"
        );
        assert!(msg.contains("more than the 2147483648 values"), "{msg}");
        assert!(msg.contains(&path.display().to_string()), "{msg}");
    }

    #[test]
    fn the_size_limit_is_exact() {
        // 2^31 values exactly is allowed by the header check (the data is then missing);
        // one more value is refused before any data is read.
        let at = parse_idx(&idx_bytes(&[1 << 16, 1 << 15], &[]), Path::new("at")).unwrap_err();
        assert!(
            at.to_string()
                .contains("holds 0 bytes of data, its header promises 2147483648"),
            "{at}"
        );
        let over = parse_idx(
            &idx_bytes(&[(1 << 16) + 1, 1 << 15], &[]),
            Path::new("over"),
        )
        .unwrap_err();
        assert!(matches!(over, IdxError::TooLarge { .. }), "{over}");
    }

    /// The peak resident memory of this process, in KiB (Linux), if it can be read.
    fn peak_rss_kib() -> Option<u64> {
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
        line.split_whitespace().nth(1)?.parse().ok()
    }

    #[test]
    fn a_gzip_bomb_is_refused_without_inflating_it() {
        let dir = temp_dir("idx-bomb");
        // A header promising 10 values, then 256 MiB of zeros: about 256 KB compressed.
        let mut enc = GzEncoder::new(Vec::new(), Compression::best());
        enc.write_all(&idx_bytes(&[10], &[7; 10])).unwrap();
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..256 {
            enc.write_all(&zeros).unwrap();
        }
        let gz = enc.finish().unwrap();
        assert!(gz.len() < 1 << 20, "{}", gz.len());
        drop(zeros);
        let path = write(&dir, "bomb-idx1-ubyte.gz", &gz);
        let before = peak_rss_kib();
        let msg = err(&path);
        assert!(msg.contains("has trailing data"), "{msg}");
        assert!(msg.contains("bomb-idx1-ubyte.gz"), "{msg}");
        // Reading it allocated nothing near the 256 MiB it inflates to (the peak may have
        // been set earlier by another test in this process, so compare with the margin).
        if let (Some(before), Some(after)) = (before, peak_rss_kib()) {
            assert!(after < before + 64 * 1024, "{before} KiB -> {after} KiB");
        }
    }

    #[test]
    fn a_short_or_long_gzip_stream_is_an_error() {
        let dir = temp_dir("idx-gz-len");
        let short = write(&dir, "short.gz", &gzip(&idx_bytes(&[2, 3, 4], &[1; 20])));
        let msg = err(&short);
        assert!(
            msg.contains("holds 20 bytes of data, its header promises 24"),
            "{msg}"
        );
        assert!(msg.contains("short.gz"), "{msg}");
        let long = write(&dir, "long.gz", &gzip(&idx_bytes(&[3], &[1, 2, 3, 4])));
        let msg = err(&long);
        assert!(msg.contains("long.gz has trailing data"), "{msg}");
        // A header cut inside the gzip stream.
        let cut = write(&dir, "cut.gz", &gzip(&idx_bytes(&[3, 3], &[])[..6]));
        let msg = err(&cut);
        assert!(msg.contains("holds only 6 bytes"), "{msg}");
        assert!(msg.contains("(12 bytes)"), "{msg}");
    }

    #[test]
    fn bytes_and_files_read_alike() {
        let bytes = idx_bytes(&[2, 2], &[1, 2, 3, 4]);
        let a = parse_idx(&bytes, Path::new("a")).unwrap();
        let b = read_idx_from(&gzip(&bytes)[..], Path::new("b")).unwrap();
        assert_eq!(a, b);
        assert_eq!((a.dims, a.data), (vec![2, 2], vec![1, 2, 3, 4]));
    }
}
