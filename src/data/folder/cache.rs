//! The decoded-image cache: one file per folder and target shape, holding every image's
//! bytes `[C, H, W]` after decoding, conversion and resize, so that the second run on a
//! folder reads one file instead of decoding thousands.
//!
//! - **Where**: under [`default_cache_dir`] (`~/.cache/neurite/folders/` on Linux), not in
//!   the image folder, which may be read-only or shared, and should not grow files a user
//!   did not put there. The file name is a hash of the folder's absolute path and the
//!   requested channels and size.
//! - **When it is used**: its key (a hash of the format version, the folder, the requested
//!   channels and size, and every image's path, class, split, byte size and modification
//!   time) must equal the key of the folder as scanned now; touching, adding, removing or
//!   renaming an image changes the key and the cache is rebuilt.
//! - **Safety**: written to a temporary file and renamed into place (a crash leaves the old
//!   cache or none); read back with a checksum over the whole file, and a file that is
//!   truncated or corrupt is ignored (with a warning) and rebuilt.
//!
//! Layout (little-endian): magic `NRTFOLDR`, format version `u32`, key `u64`, `C`, `H`, `W`,
//! file count `u64`; per file a status byte (1 = decoded, 0 = skipped); per skipped file its
//! reason (`u32` length, UTF-8); the decoded images in file order; checksum `u64`.

use super::scan::ImageFile;
use anyhow::{Context, Result};
use std::io::Write;
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 8] = b"NRTFOLDR";
const VERSION: u32 = 1;

/// Where caches go by default: `dirs::cache_dir()/neurite/folders` (`~/.cache/neurite/folders`
/// on Linux); `None` where the system has no cache directory.
pub fn default_cache_dir() -> Option<PathBuf> {
    dirs::cache_dir().map(|d| d.join("neurite").join("folders"))
}

/// A 64-bit FNV-1a hash, for keys (short inputs).
#[derive(Clone, Copy)]
struct Fnv(u64);

impl Fnv {
    fn new() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
    fn bytes(mut self, bytes: &[u8]) -> Self {
        for &b in bytes {
            self.0 = (self.0 ^ b as u64).wrapping_mul(0x0100_0000_01b3);
        }
        self
    }
    fn num(self, v: u128) -> Self {
        self.bytes(&v.to_le_bytes())
    }
}

/// A checksum of a large buffer, eight bytes per step (a multiply-rotate mix; it detects
/// corruption, it is not a cryptographic hash).
fn checksum(bytes: &[u8]) -> u64 {
    let mut h = 0x9e37_79b9_7f4a_7c15u64 ^ bytes.len() as u64;
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        let v = u64::from_le_bytes(c.try_into().expect("8 bytes"));
        h = (h ^ v).wrapping_mul(0xff51_afd7_ed55_8ccd).rotate_left(29);
    }
    for &b in chunks.remainder() {
        h = (h ^ b as u64)
            .wrapping_mul(0xc4ce_b9fe_1a85_ec53)
            .rotate_left(29);
    }
    h
}

/// What a cache is for: the folder and the requested (not resolved) channels and size.
pub struct CacheTarget<'a> {
    /// The folder (made absolute for the name).
    pub root: &'a Path,
    /// The channels the caller asked for, if any.
    pub channels: Option<usize>,
    /// The size the caller asked for, if any.
    pub size: Option<[usize; 2]>,
}

impl CacheTarget<'_> {
    fn base(&self) -> Fnv {
        let root = std::fs::canonicalize(self.root).unwrap_or_else(|_| self.root.to_path_buf());
        let [h, w] = self.size.unwrap_or([0, 0]);
        Fnv::new()
            .num(VERSION as u128)
            .bytes(root.to_string_lossy().as_bytes())
            .num(self.channels.unwrap_or(0) as u128)
            .num(h as u128)
            .num(w as u128)
    }

    /// The cache file's path under `dir`.
    pub fn path(&self, dir: &Path) -> PathBuf {
        dir.join(format!("{:016x}.bin", self.base().0))
    }

    /// The key of the folder's current files (training files, then test files).
    pub fn key(&self, train: &[ImageFile], test: &[ImageFile]) -> u64 {
        let mut h = self.base();
        for (split, files) in [(0u128, train), (1, test)] {
            for f in files {
                h = h
                    .num(split)
                    .bytes(f.path.to_string_lossy().as_bytes())
                    .num(f.label as u128)
                    .num(f.len as u128)
                    .num(f.modified);
            }
        }
        h.0
    }
}

/// The decoded images of a folder, as the cache holds them.
#[derive(Debug, PartialEq)]
pub struct Decoded {
    /// The shape of every image, `[C, H, W]`.
    pub shape: [usize; 3],
    /// Per scanned file: `None` if decoded, else why it was skipped.
    pub skipped: Vec<Option<String>>,
    /// The decoded images, in file order, skipped files left out: `[n_ok, C, H, W]`.
    pub pixels: Vec<u8>,
}

/// Reads a cache file; `None` when there is none, its key differs, or it is corrupt (the
/// last with a warning, unless `quiet`).
pub fn read(path: &Path, key: u64, quiet: bool) -> Option<Decoded> {
    let bytes = std::fs::read(path).ok()?;
    let parsed = parse(&bytes, key);
    if let Err(Stale::Corrupt(why)) = &parsed {
        if !quiet {
            eprintln!(
                "warning: ignoring the corrupt image cache {} ({why}); rebuilding it",
                path.display()
            );
        }
    }
    parsed.ok()
}

/// Why a cache file is not used.
enum Stale {
    /// Written for other files or another version.
    Other,
    /// Damaged.
    Corrupt(&'static str),
}

fn parse(bytes: &[u8], key: u64) -> std::result::Result<Decoded, Stale> {
    if bytes.len() < 8 + 4 + 8 * 5 + 8 || &bytes[..8] != MAGIC {
        return Err(Stale::Corrupt("too short or not a cache file"));
    }
    let (body, sum) = bytes.split_at(bytes.len() - 8);
    if checksum(body) != u64::from_le_bytes(sum.try_into().expect("8 bytes")) {
        return Err(Stale::Corrupt("checksum mismatch"));
    }
    let mut at = 8;
    let mut take = |n: usize| -> std::result::Result<&[u8], Stale> {
        let s = body.get(at..at + n).ok_or(Stale::Corrupt("truncated"))?;
        at += n;
        Ok(s)
    };
    let version = u32::from_le_bytes(take(4)?.try_into().expect("4 bytes"));
    let mut word = || -> std::result::Result<u64, Stale> {
        Ok(u64::from_le_bytes(take(8)?.try_into().expect("8 bytes")))
    };
    let stored_key = word()?;
    let (c, h, w, n) = (word()?, word()?, word()?, word()?);
    if version != VERSION || stored_key != key {
        return Err(Stale::Other);
    }
    let (c, h, w, n) = (c as usize, h as usize, w as usize, n as usize);
    let status = take(n)?.to_vec();
    let mut skipped = Vec::with_capacity(n);
    for s in status {
        skipped.push(if s == 1 {
            None
        } else {
            let len = u32::from_le_bytes(take(4)?.try_into().expect("4 bytes")) as usize;
            let text = String::from_utf8_lossy(take(len)?).into_owned();
            Some(text)
        });
    }
    let ok = skipped.iter().filter(|s| s.is_none()).count();
    let pixels = take(ok * c * h * w)?.to_vec();
    if at != body.len() {
        return Err(Stale::Corrupt("trailing bytes"));
    }
    Ok(Decoded {
        shape: [c, h, w],
        skipped,
        pixels,
    })
}

/// Writes a cache file atomically: into a temporary file beside it, then renamed.
pub fn write(path: &Path, key: u64, decoded: &Decoded) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create the cache folder {}", dir.display()))?;
    let [c, h, w] = decoded.shape;
    let mut body = Vec::with_capacity(decoded.pixels.len() + 64 + decoded.skipped.len());
    body.extend_from_slice(MAGIC);
    body.extend_from_slice(&VERSION.to_le_bytes());
    for v in [
        key,
        c as u64,
        h as u64,
        w as u64,
        decoded.skipped.len() as u64,
    ] {
        body.extend_from_slice(&v.to_le_bytes());
    }
    body.extend(decoded.skipped.iter().map(|s| u8::from(s.is_none())));
    for why in decoded.skipped.iter().flatten() {
        body.extend_from_slice(&(why.len() as u32).to_le_bytes());
        body.extend_from_slice(why.as_bytes());
    }
    body.extend_from_slice(&decoded.pixels);
    let sum = checksum(&body);
    body.extend_from_slice(&sum.to_le_bytes());
    let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
    let result = std::fs::File::create(&tmp)
        .and_then(|mut f| f.write_all(&body).and_then(|()| f.sync_all()))
        .and_then(|()| std::fs::rename(&tmp, path));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.with_context(|| format!("cannot write the image cache {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Decoded {
        Decoded {
            shape: [1, 2, 3],
            skipped: vec![None, Some("bad.png: not an image".into()), None],
            pixels: (0..12).collect(),
        }
    }

    #[test]
    fn a_cache_reads_back_what_was_written_and_only_for_its_key() {
        let dir = std::env::temp_dir().join(format!("neurite-cache-unit-{}", std::process::id()));
        let path = dir.join("c.bin");
        write(&path, 42, &sample()).unwrap();
        assert_eq!(read(&path, 42, true), Some(sample()));
        assert_eq!(read(&path, 43, true), None);
        // Any flipped byte is caught by the checksum; a truncated file too.
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[70] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        assert_eq!(read(&path, 42, true), None);
        std::fs::write(&path, &bytes[..40]).unwrap();
        assert_eq!(read(&path, 42, true), None);
        // No temporary file is left behind.
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn keys_change_with_any_file_attribute_and_the_target() {
        let file = ImageFile {
            path: "r/a/1.png".into(),
            label: 0,
            len: 10,
            modified: 5,
        };
        let t = CacheTarget {
            root: Path::new("r"),
            channels: None,
            size: None,
        };
        let k = t.key(std::slice::from_ref(&file), &[]);
        let touched = ImageFile {
            modified: 6,
            ..file.clone()
        };
        assert_ne!(k, t.key(&[touched], &[]));
        assert_ne!(k, t.key(&[], std::slice::from_ref(&file)));
        let t3 = CacheTarget {
            channels: Some(3),
            ..t
        };
        assert_ne!(k, t3.key(&[file], &[]));
        assert_ne!(t.path(Path::new("d")), t3.path(Path::new("d")));
    }
}
