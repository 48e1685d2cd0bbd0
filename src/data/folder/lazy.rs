//! Images decoded on demand: what [`load_folder`](super::load_folder) gives instead of
//! decoded bytes when a folder's decoded images would exceed the memory budget.

use super::decode::{preprocess_into, read_image};
use anyhow::{bail, Result};
use std::path::{Path, PathBuf};

/// A split of an image folder kept as its list of files: image `i` is decoded, converted
/// and resized when it is read, each time (the loader's workers read in parallel).
#[derive(Clone, Debug)]
pub struct LazyImages {
    files: Vec<PathBuf>,
    labels: Vec<u8>,
    shape: [usize; 3],
    class_names: Vec<String>,
}

impl LazyImages {
    /// A source of `files` with their `labels`, read as `[C, H, W]` bytes (`shape`).
    pub fn new(
        files: Vec<PathBuf>,
        labels: Vec<u8>,
        shape: [usize; 3],
        class_names: Vec<String>,
    ) -> Self {
        assert_eq!(
            files.len(),
            labels.len(),
            "LazyImages::new: one label per file"
        );
        let [c, h, w] = shape;
        assert!(
            (c == 1 || c == 3) && h > 0 && w > 0,
            "LazyImages::new: shape [{c}, {h}, {w}] must have 1 or 3 channels and a positive size"
        );
        LazyImages {
            files,
            labels,
            shape,
            class_names,
        }
    }

    /// The number of images.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    /// Whether there is no image.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// The shape of every image, `[C, H, W]`.
    pub fn shape(&self) -> [usize; 3] {
        self.shape
    }

    /// The class of image `i`.
    pub fn label(&self, i: usize) -> usize {
        self.labels[i] as usize
    }

    /// Every label, in image order.
    pub fn labels(&self) -> &[u8] {
        &self.labels
    }

    /// The class names, in label order.
    pub fn class_names(&self) -> &[String] {
        &self.class_names
    }

    /// The file of image `i`.
    pub fn path(&self, i: usize) -> &Path {
        &self.files[i]
    }

    /// Decodes image `i` into `out` (`C * H * W` bytes, `[C, H, W]`); an error names the file
    /// (it may have changed or been removed since the folder was scanned).
    pub fn read(&self, i: usize, out: &mut [u8]) -> Result<()> {
        let len: usize = self.shape.iter().product();
        if out.len() != len {
            bail!(
                "LazyImages::read: {} bytes given for an image of {len} ({:?})",
                out.len(),
                self.shape
            );
        }
        let img = read_image(&self.files[i])?;
        preprocess_into(&img, self.shape, out);
        Ok(())
    }
}
