//! Text as bytes, the data of `neurite lm`: reading files and directories, the 90/10
//! split, random training windows, the consecutive windows of the validation loss (computed
//! by [`crate::lm::text_loss`]) and the vocabulary check.

use anyhow::{bail, Context, Result};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::path::{Path, PathBuf};

/// Where the Debian `fortunes` package puts its English text.
pub const DEFAULT_TEXT_DIR: &str = "/usr/share/games/fortunes";

/// The regular files of a directory in sorted name order, without the `fortunes` index
/// files (`.dat`) and links (`.u8`).
fn dir_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for e in std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))? {
        let p = e?.path();
        let skip = matches!(
            p.extension().and_then(|e| e.to_str()),
            Some("dat") | Some("u8")
        );
        // symlink_metadata: links are not regular files
        if !skip && std::fs::symlink_metadata(&p)?.file_type().is_file() {
            files.push(p);
        }
    }
    files.sort();
    Ok(files)
}

/// The bytes of `paths` joined in the order given (a directory: its regular files in sorted
/// name order); no paths reads [`DEFAULT_TEXT_DIR`]. Empty text is an error.
pub fn read_text(paths: &[PathBuf]) -> Result<Vec<u8>> {
    let default = [PathBuf::from(DEFAULT_TEXT_DIR)];
    let paths = if paths.is_empty() {
        &default[..]
    } else {
        paths
    };
    let mut text = Vec::new();
    for p in paths {
        if p.is_dir() {
            for f in dir_files(p)? {
                text.extend(
                    std::fs::read(&f).with_context(|| format!("cannot read {}", f.display()))?,
                );
            }
        } else {
            let hint = if p.as_os_str() == DEFAULT_TEXT_DIR {
                " (install it with `apt-get install fortunes`)"
            } else {
                ""
            };
            text.extend(
                std::fs::read(p).with_context(|| format!("cannot read {}{hint}", p.display()))?,
            );
        }
    }
    if text.is_empty() {
        bail!("the text is empty ({})", describe(paths));
    }
    Ok(text)
}

fn describe(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The training part (first 90%) and the validation part (last 10%) of a text, cut at
/// `int(0.9 * len)` as the PyTorch script does.
pub fn split_text(text: &[u8]) -> (&[u8], &[u8]) {
    let cut = (0.9 * text.len() as f64) as usize;
    text.split_at(cut)
}

/// Start offsets of the loss windows of a text of `len` bytes: `i * block` while the window
/// of `block + 1` bytes fits (a final shorter window is dropped).
pub fn eval_windows(len: usize, block: usize) -> Vec<usize> {
    (0..)
        .map(|i| i * block)
        .take_while(|s| s + block < len)
        .collect()
}

/// Random training windows of `block + 1` bytes from a seeded RNG.
pub struct Windows<'a> {
    text: &'a [u8],
    block: usize,
    rng: StdRng,
}

impl<'a> Windows<'a> {
    /// Windows over `text`, which must hold at least `block + 1` bytes.
    pub fn new(text: &'a [u8], block: usize, seed: u64) -> Result<Windows<'a>> {
        if text.len() < block + 1 {
            bail!(
                "the training text has {} bytes, shorter than one block of {} + 1",
                text.len(),
                block
            );
        }
        Ok(Windows {
            text,
            block,
            rng: StdRng::seed_from_u64(seed),
        })
    }

    /// The RNG's position for `--resume` (advance a fresh one by this many batches).
    pub fn skip(&mut self, batches: usize, batch: usize) {
        for _ in 0..batches {
            self.batch(batch);
        }
    }

    /// `batch` windows: inputs and targets, each `[batch, block]` row-major.
    pub fn batch(&mut self, batch: usize) -> (Vec<usize>, Vec<usize>) {
        let mut x = Vec::with_capacity(batch * self.block);
        let mut y = Vec::with_capacity(batch * self.block);
        for _ in 0..batch {
            let s = self.rng.gen_range(0..=self.text.len() - self.block - 1);
            let w = &self.text[s..s + self.block + 1];
            x.extend(w[..self.block].iter().map(|&b| b as usize));
            y.extend(w[1..].iter().map(|&b| b as usize));
        }
        (x, y)
    }
}

/// Checks that every byte of `text` is a token of a vocabulary of `vocab` symbols (a
/// character-level export may have fewer than 256). `what` names the text and `weights`
/// the checkpoint in the error, which gives the first offending byte and its position.
pub fn check_vocab(text: &[u8], vocab: usize, what: &str, weights: &str) -> Result<()> {
    if let Some(i) = text.iter().position(|&b| usize::from(b) >= vocab) {
        bail!(
            "{what}: byte {} (0x{:02x}) at position {i} is beyond the vocabulary of {vocab} \
             symbols of {weights}; give a text whose bytes are all below {vocab}, or a \
             checkpoint of 256 symbols",
            text[i],
            text[i]
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {

    #[test]
    fn bytes_beyond_the_vocabulary_are_named() {
        check_vocab(b"abc", 256, "t", "w").unwrap();
        check_vocab(b"\x00\x40", 65, "t", "w").unwrap();
        let e = check_vocab("ab\u{e9}".as_bytes(), 65, "x.txt", "m.safetensors")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("x.txt: byte 97 (0x61) at position 0 is beyond the vocabulary of 65"),
            "{e}"
        );
        assert!(e.contains("m.safetensors"));
    }

    use super::*;

    #[test]
    fn windows_stride_by_block_and_drop_the_short_tail() {
        // 10 bytes, block 3: windows 0..4, 3..7, 6..10; 9..13 does not fit
        assert_eq!(eval_windows(10, 3), vec![0, 3, 6]);
        assert_eq!(eval_windows(9, 3), vec![0, 3]);
        assert_eq!(eval_windows(3, 3), Vec::<usize>::new());
        assert_eq!(eval_windows(4, 3), vec![0]);
    }

    #[test]
    fn split_cuts_at_ninety_percent() {
        let t: Vec<u8> = (0..=100).collect(); // 101 bytes: int(90.9) = 90
        let (a, b) = split_text(&t);
        assert_eq!((a.len(), b.len()), (90, 11));
    }

    #[test]
    fn reading_joins_files_and_rejects_empty_text() {
        let dir = std::env::temp_dir().join(format!("neurite-lm-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("b"), b"world").unwrap();
        std::fs::write(dir.join("a"), b"hello ").unwrap();
        std::fs::write(dir.join("a.dat"), b"index").unwrap();
        assert_eq!(
            read_text(std::slice::from_ref(&dir)).unwrap(),
            b"hello world"
        );
        std::fs::write(dir.join("empty"), b"").unwrap();
        assert!(read_text(&[dir.join("empty")]).is_err());
        assert!(read_text(&[dir.join("missing")]).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
