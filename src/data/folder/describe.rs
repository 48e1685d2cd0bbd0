//! What [`load_folder`](super::load_folder) found, for the user and for the checkpoint.

use std::fmt;
use std::path::PathBuf;

/// An image that could not be read and was left out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SkippedFile {
    /// The file.
    pub path: PathBuf,
    /// Why (the decoder's message, naming the file).
    pub reason: String,
}

/// Where the test split came from.
#[derive(Clone, Debug, PartialEq)]
pub enum SplitSource {
    /// A split folder beside `train/`: `test` or `val`.
    Folder(String),
    /// The seeded, stratified split of one folder.
    Fraction {
        /// The share held out.
        fraction: f64,
        /// The seed.
        seed: u64,
    },
}

/// What became of the decoded-image cache.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CacheUse {
    /// Read from this file: nothing had changed.
    Reused(PathBuf),
    /// Decoded and written to this file.
    Written(PathBuf),
    /// Decoded; the cache could not be written (the reason), training goes on without it.
    Failed(String),
    /// No cache: turned off, or the images are decoded on demand.
    Off,
}

/// A summary of a folder: classes, counts, shape, skipped and ignored files.
#[derive(Clone, Debug, PartialEq)]
pub struct FolderDescription {
    /// The folder.
    pub root: PathBuf,
    /// The class names (sub-folder names, sorted), in label order.
    pub class_names: Vec<String>,
    /// Training images per class.
    pub train_per_class: Vec<usize>,
    /// Test images per class.
    pub test_per_class: Vec<usize>,
    /// The images' shape, `[C, H, W]`.
    pub shape: [usize; 3],
    /// Where the test split came from.
    pub split: SplitSource,
    /// Images that could not be read, left out.
    pub skipped: Vec<SkippedFile>,
    /// Files that are not images (or hidden), ignored.
    pub ignored: usize,
    /// Whether the images are decoded on demand (they exceed the memory budget).
    pub lazy: bool,
    /// What became of the cache.
    pub cache: CacheUse,
}

impl FolderDescription {
    /// The number of training images.
    pub fn train_len(&self) -> usize {
        self.train_per_class.iter().sum()
    }

    /// The number of test images.
    pub fn test_len(&self) -> usize {
        self.test_per_class.iter().sum()
    }
}

impl fmt::Display for FolderDescription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [c, h, w] = self.shape;
        let split = match &self.split {
            SplitSource::Folder(name) => format!("test split from {name}/"),
            SplitSource::Fraction { fraction, seed } => {
                format!(
                    "{:.0}% held out for testing (seed {seed})",
                    fraction * 100.0
                )
            }
        };
        writeln!(
            f,
            "{}: {} classes, {} training and {} test images ({split}), {c} x {h} x {w}{}",
            self.root.display(),
            self.class_names.len(),
            self.train_len(),
            self.test_len(),
            if self.lazy { ", decoded on demand" } else { "" }
        )?;
        write!(f, "classes: {}", self.class_names.join(", "))?;
        if !self.skipped.is_empty() {
            write!(f, "\nskipped {} unreadable image(s)", self.skipped.len())?;
        }
        if self.ignored > 0 {
            write!(f, "\nignored {} file(s) that are not images", self.ignored)?;
        }
        match &self.cache {
            CacheUse::Reused(p) => write!(f, "\nread from the cache {}", p.display()),
            CacheUse::Written(p) => write!(f, "\ncached in {}", p.display()),
            CacheUse::Failed(why) => write!(f, "\nnot cached: {why}"),
            CacheUse::Off => Ok(()),
        }
    }
}
