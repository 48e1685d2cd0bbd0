//! Image folders in torchvision's `ImageFolder` layout: `root/<class>/<image>.png` (or
//! `.jpg`, `.jpeg`), optionally split into `root/train/...` and `root/test/...` (or
//! `root/val/...`), read into [`ImageDataset`]s of bytes `[N, C, H, W]` (feature `images`).
//!
//! [`load_folder`] does it all: it scans the folder ([`scan`]: the rules for classes,
//! files and errors), decides the target shape, decodes every image once on the rayon pool
//! ([`decode`]: the conversion to 1 or 3 channels, the resize), splits a folder without
//! split folders with the seeded, stratified [`split_indices`](crate::data::split_indices),
//! and keeps the result in a cache file ([`cache`]) for the next run. [`preprocess_file`]
//! prepares one image for prediction exactly as training prepared the folder.
//!
//! The target shape, unless given in [`FolderOptions`]:
//! - **channels**: 3 if any image is in colour (RGB, RGBA or a palette), else 1;
//! - **size** `H x W`: the size every image has, or, when sizes differ, the most common one
//!   (on a tie, the one met first in class and file order); other images are resized to it.
//!
//! Unreadable images: an image that cannot be read or decoded (corrupt, truncated, not
//! really a PNG or JPEG, over 50 megapixels) is **skipped** with a warning naming it, and the
//! count is given at the end — unless more than [`FolderOptions::max_bad_fraction`] (1% by
//! default) of the folder's images fail, which is an error: a few bad files in a scraped data
//! set are normal, many mean a wrong folder or a broken copy, and training on what is left
//! would quietly change the data set.
//!
//! Memory: when the decoded images (`N * C * H * W` bytes) would exceed
//! [`FolderOptions::memory_budget`] (by default half of the machine's memory), the splits
//! come back as [`LazyImages`]: file lists whose images are decoded when read.
//!
//! ```no_run
//! use neurite::data::folder::{load_folder, FolderOptions};
//! # fn main() -> anyhow::Result<()> {
//! let data = load_folder("my-digits".as_ref(), &FolderOptions::default())?;
//! eprintln!("{}", data.description);
//! let [c, h, w] = data.train.shape();
//! let mut x = vec![0u8; c * h * w]; // [C, H, W]
//! data.train.read(0, &mut x)?;
//! println!("image 0 is a {}", data.description.class_names[data.train.label(0)]);
//! # Ok(()) }
//! ```

pub mod cache;
pub mod decode;
mod describe;
pub mod lazy;
mod load;
pub mod resize;
pub mod scan;
mod throughput;

use crate::data::ImageDataset;
use anyhow::Result;
use std::path::PathBuf;

pub use cache::default_cache_dir;
pub use decode::{
    decode_image, preprocess, preprocess_file, read_header, read_image, MAX_DECODE_BYTES,
    MAX_IMAGE_PIXELS,
};
pub use describe::{CacheUse, FolderDescription, SkippedFile, SplitSource};
pub use lazy::LazyImages;
pub use load::load_folder;
pub use resize::resize_bilinear;
pub use throughput::{decode_throughput, Throughput};

/// How [`load_folder`] reads a folder; `FolderOptions::default()` decides everything from
/// the data.
#[derive(Clone, Debug)]
pub struct FolderOptions {
    /// Channels of the images (1 or 3); `None`: 3 if any image is in colour, else 1.
    pub channels: Option<usize>,
    /// Size `[H, W]` of the images; `None`: the common (or most common) size.
    pub size: Option<[usize; 2]>,
    /// The share of images held out for testing when the folder has no split folders.
    pub test_fraction: f64,
    /// The seed of that split.
    pub seed: u64,
    /// The largest share of images that may fail to decode and be skipped (0.01: 1%); more
    /// is an error.
    pub max_bad_fraction: f64,
    /// The folder of cache files; `None` turns the cache off.
    pub cache_dir: Option<PathBuf>,
    /// The most bytes the decoded images may take in memory; `None`: half of the machine's
    /// memory. Above it, the splits are [`LazyImages`].
    pub memory_budget: Option<u64>,
    /// Print no warnings on stderr (the description still lists skipped files).
    pub quiet: bool,
}

impl Default for FolderOptions {
    fn default() -> Self {
        FolderOptions {
            channels: None,
            size: None,
            test_fraction: 0.2,
            seed: 0,
            max_bad_fraction: 0.01,
            cache_dir: default_cache_dir(),
            memory_budget: None,
            quiet: false,
        }
    }
}

/// One split of a folder: decoded images in memory, or a list of files decoded on demand.
#[derive(Clone, Debug)]
pub enum FolderSplit {
    /// Decoded, converted and resized bytes.
    Memory(ImageDataset),
    /// Decoded when read (the folder did not fit in the memory budget).
    Lazy(LazyImages),
}

impl FolderSplit {
    /// The number of images.
    pub fn len(&self) -> usize {
        match self {
            FolderSplit::Memory(d) => d.len(),
            FolderSplit::Lazy(l) => l.len(),
        }
    }

    /// Whether there is no image.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The shape of every image, `[C, H, W]`.
    pub fn shape(&self) -> [usize; 3] {
        match self {
            FolderSplit::Memory(d) => [d.channels, d.height, d.width],
            FolderSplit::Lazy(l) => l.shape(),
        }
    }

    /// The class of image `i`.
    pub fn label(&self, i: usize) -> usize {
        match self {
            FolderSplit::Memory(d) => d.labels[i] as usize,
            FolderSplit::Lazy(l) => l.label(i),
        }
    }

    /// Image `i` as bytes `[C, H, W]` into `out` (`C * H * W` bytes).
    pub fn read(&self, i: usize, out: &mut [u8]) -> Result<()> {
        match self {
            FolderSplit::Memory(d) => {
                anyhow::ensure!(
                    out.len() == d.image_len(),
                    "FolderSplit::read: {} bytes given for an image of {}",
                    out.len(),
                    d.image_len()
                );
                out.copy_from_slice(d.image(i));
                Ok(())
            }
            FolderSplit::Lazy(l) => l.read(i, out),
        }
    }

    /// The decoded images, when they are in memory.
    pub fn in_memory(&self) -> Option<&ImageDataset> {
        match self {
            FolderSplit::Memory(d) => Some(d),
            FolderSplit::Lazy(_) => None,
        }
    }
}

/// A folder read by [`load_folder`]: the two splits and what was found.
#[derive(Clone, Debug)]
pub struct FolderData {
    /// The training images.
    pub train: FolderSplit,
    /// The test images (the `test/` or `val/` folder, or the held-out share).
    pub test: FolderSplit,
    /// Class names, counts, shape, skipped files, cache use.
    pub description: FolderDescription,
}

impl crate::data::ImageSource for FolderSplit {
    fn len(&self) -> usize {
        FolderSplit::len(self)
    }

    fn shape(&self) -> [usize; 3] {
        FolderSplit::shape(self)
    }

    fn label(&self, i: usize) -> usize {
        FolderSplit::label(self, i)
    }

    fn class_names(&self) -> &[String] {
        match self {
            FolderSplit::Memory(d) => &d.class_names,
            FolderSplit::Lazy(l) => l.class_names(),
        }
    }

    fn read(&self, i: usize, out: &mut [u8]) -> Result<()> {
        FolderSplit::read(self, i, out)
    }
}
