//! Image-classification data sets in the MNIST file layout: MNIST digits and Fashion-MNIST.
//!
//! A data directory holds four IDX files, each plain or gzip-compressed:
//! `train-images-idx3-ubyte`, `train-labels-idx1-ubyte`, `t10k-images-idx3-ubyte`,
//! `t10k-labels-idx1-ubyte` (a `.gz` suffix, or the `train-images.idx3-ubyte` spelling
//! of some mirrors, is found too).

use super::idx::read_idx;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// The side of an MNIST image, in pixels.
pub const MNIST_SIDE: usize = 28;

/// Which data set a directory holds; it decides the class names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatasetKind {
    /// Zalando's Fashion-MNIST: ten kinds of clothing.
    FashionMnist,
    /// LeCun's handwritten digits.
    Mnist,
}

impl DatasetKind {
    /// The ten class names, in label order.
    pub fn class_names(self) -> Vec<String> {
        let names: [&str; 10] = match self {
            DatasetKind::FashionMnist => [
                "T-shirt/top",
                "Trouser",
                "Pullover",
                "Dress",
                "Coat",
                "Sandal",
                "Shirt",
                "Sneaker",
                "Bag",
                "Ankle boot",
            ],
            DatasetKind::Mnist => ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"],
        };
        names.iter().map(|s| s.to_string()).collect()
    }

    /// The name used on the command line and in cache paths (`fashion-mnist`, `mnist`).
    pub fn name(self) -> &'static str {
        match self {
            DatasetKind::FashionMnist => "fashion-mnist",
            DatasetKind::Mnist => "mnist",
        }
    }
}

impl FromStr for DatasetKind {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "fashion-mnist" | "fashion_mnist" | "fashion" => Ok(DatasetKind::FashionMnist),
            "mnist" => Ok(DatasetKind::Mnist),
            _ => bail!("unknown data set {s:?}: expected fashion-mnist or mnist"),
        }
    }
}

/// Which half of a data set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    /// The training images (`train-*`).
    Train,
    /// The test images (`t10k-*`).
    Test,
}

impl Split {
    /// The file-name prefix of the split.
    fn prefix(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Test => "t10k",
        }
    }
}

/// The base names of the four files, in the order train images, train labels, test
/// images, test labels.
pub const MNIST_FILES: [&str; 4] = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
];

/// The path of file `base` (one of [`MNIST_FILES`]) in `dir`, trying the plain name, the
/// name with `.gz`, and the dotted spelling (`train-images.idx3-ubyte`) of some mirrors.
pub fn find_file(dir: &Path, base: &str) -> Option<PathBuf> {
    let dotted = base.replacen("s-idx", "s.idx", 1);
    [
        base.to_string(),
        format!("{base}.gz"),
        dotted.clone(),
        format!("{dotted}.gz"),
    ]
    .iter()
    .map(|name| dir.join(name))
    .find(|p| p.is_file())
}

/// A labelled set of images held as bytes, as read from disk.
#[derive(Debug, Clone)]
pub struct ImageDataset {
    /// The pixels, `[n, channels, height, width]` row-major, 0 to 255.
    pub images: Vec<u8>,
    /// One label per image, each below `class_names.len()`.
    pub labels: Vec<u8>,
    /// The number of images.
    pub n: usize,
    /// Channels per image (1 for MNIST).
    pub channels: usize,
    /// Image height in pixels.
    pub height: usize,
    /// Image width in pixels.
    pub width: usize,
    /// The name of each class, in label order.
    pub class_names: Vec<String>,
}

impl ImageDataset {
    /// A data set from raw parts, after checking that the sizes agree and every label is a class.
    pub fn new(
        images: Vec<u8>,
        labels: Vec<u8>,
        [channels, height, width]: [usize; 3],
        class_names: Vec<String>,
    ) -> Result<Self> {
        let per_image = channels * height * width;
        let n = labels.len();
        if per_image == 0 {
            bail!("images of {channels} x {height} x {width} pixels hold no pixels");
        }
        if images.len() != n * per_image {
            bail!(
                "{} image bytes for {n} labels: expected {} ({n} images of {channels} x {height} x \
                 {width})",
                images.len(),
                n * per_image
            );
        }
        if let Some(i) = labels.iter().position(|&l| l as usize >= class_names.len()) {
            bail!(
                "label {} of image {i} is not a class: there are {} classes (0 to {})",
                labels[i],
                class_names.len(),
                class_names.len().saturating_sub(1)
            );
        }
        Ok(ImageDataset {
            images,
            labels,
            n,
            channels,
            height,
            width,
            class_names,
        })
    }

    /// Loads one split (train or test) of an MNIST-layout directory.
    pub fn load(dir: &Path, kind: DatasetKind, split: Split) -> Result<Self> {
        let prefix = split.prefix();
        let images_base = format!("{prefix}-images-idx3-ubyte");
        let labels_base = format!("{prefix}-labels-idx1-ubyte");
        let find = |base: &str| {
            find_file(dir, base).with_context(|| {
                format!(
                    "{} holds no {base} (nor {base}.gz); put the four {} files there \
                     (on Debian: apt-get install dataset-fashion-mnist)",
                    dir.display(),
                    kind.name()
                )
            })
        };
        let images_path = find(&images_base)?;
        let labels_path = find(&labels_base)?;
        Self::from_idx_files(&images_path, &labels_path, kind.class_names())
    }

    /// Reads an images file (`[n, 28, 28]`) and a labels file (`[n]`) into a data set.
    pub fn from_idx_files(
        images_path: &Path,
        labels_path: &Path,
        class_names: Vec<String>,
    ) -> Result<Self> {
        let images = read_idx(images_path)?;
        let labels = read_idx(labels_path)?;
        if images.dims.len() != 3 || images.dims[1..] != [MNIST_SIDE, MNIST_SIDE] {
            bail!(
                "{} holds an array of dimensions {:?}; MNIST images are [n, 28, 28]: is this \
                 the images file?",
                images_path.display(),
                images.dims
            );
        }
        if labels.dims.len() != 1 {
            bail!(
                "{} holds an array of dimensions {:?}; MNIST labels are [n]: is this the \
                 labels file?",
                labels_path.display(),
                labels.dims
            );
        }
        if images.dims[0] != labels.dims[0] {
            bail!(
                "{} holds {} images but {} holds {} labels; the two files must come from the \
                 same split (train with train, t10k with t10k)",
                images_path.display(),
                images.dims[0],
                labels_path.display(),
                labels.dims[0]
            );
        }
        Self::new(
            images.data,
            labels.data,
            [1, MNIST_SIDE, MNIST_SIDE],
            class_names,
        )
        .with_context(|| format!("in {}", labels_path.display()))
    }

    /// Keeps only the first `n` images (all of them when `n` is larger).
    pub fn limit(mut self, n: usize) -> Self {
        let n = n.min(self.n);
        self.images.truncate(n * self.image_len());
        self.labels.truncate(n);
        self.n = n;
        self
    }

    /// The number of bytes of one image (`channels * height * width`).
    pub fn image_len(&self) -> usize {
        self.channels * self.height * self.width
    }

    /// The pixels of image `i`, `[channels, height, width]`.
    pub fn image(&self, i: usize) -> &[u8] {
        let len = self.image_len();
        &self.images[i * len..(i + 1) * len]
    }

    /// The number of images.
    pub fn len(&self) -> usize {
        self.n
    }

    /// Whether the data set holds no image.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }
}

/// Both splits of an MNIST-layout data set.
#[derive(Debug, Clone)]
pub struct MnistData {
    /// The training split (60,000 images for MNIST and Fashion-MNIST).
    pub train: ImageDataset,
    /// The test split (10,000 images).
    pub test: ImageDataset,
}

impl MnistData {
    /// Loads the training and test splits from `dir`.
    pub fn load(dir: &Path, kind: DatasetKind) -> Result<Self> {
        Ok(MnistData {
            train: ImageDataset::load(dir, kind, Split::Train)?,
            test: ImageDataset::load(dir, kind, Split::Test)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::idx::tests::{gzip, idx_bytes, temp_dir};
    use crate::data::normalize::Normalization;
    use crate::data::{Augment, DataLoader, ImageSamples, LoaderConfig};

    /// Writes a small MNIST-layout directory: `n_train`/`n_test` images of 28 x 28.
    pub(crate) fn write_fake_mnist(dir: &Path, n_train: u32, n_test: u32) {
        for (prefix, n) in [("train", n_train), ("t10k", n_test)] {
            let pixels: Vec<u8> = (0..n * 784).map(|i| (i % 251) as u8).collect();
            let labels: Vec<u8> = (0..n).map(|i| (i % 10) as u8).collect();
            std::fs::write(
                dir.join(format!("{prefix}-images-idx3-ubyte.gz")),
                gzip(&idx_bytes(&[n, 28, 28], &pixels)),
            )
            .unwrap();
            // Labels plain, images gzip: both must be found.
            std::fs::write(
                dir.join(format!("{prefix}-labels-idx1-ubyte")),
                idx_bytes(&[n], &labels),
            )
            .unwrap();
        }
    }

    #[test]
    fn loads_fake_directory_and_limits() {
        let dir = temp_dir("mnist-fake");
        write_fake_mnist(&dir, 12, 5);
        let data = MnistData::load(&dir, DatasetKind::FashionMnist).unwrap();
        assert_eq!((data.train.n, data.test.n), (12, 5));
        assert_eq!(
            (data.train.channels, data.train.height, data.train.width),
            (1, 28, 28)
        );
        assert_eq!(data.train.labels[..4], [0, 1, 2, 3]);
        assert_eq!(data.train.image(1)[0], (784 % 251) as u8);
        assert_eq!(data.train.class_names[9], "Ankle boot");
        let small = data.train.limit(3);
        assert_eq!(
            (small.n, small.images.len(), small.labels.len()),
            (3, 3 * 784, 3)
        );
        assert_eq!(small.clone().limit(100).n, 3);
    }

    #[test]
    fn count_mismatch_names_both_files() {
        let dir = temp_dir("mnist-count");
        write_fake_mnist(&dir, 4, 2);
        std::fs::write(
            dir.join("train-labels-idx1-ubyte"),
            idx_bytes(&[3], &[0, 1, 2]),
        )
        .unwrap();
        let msg = format!(
            "{:#}",
            ImageDataset::load(&dir, DatasetKind::Mnist, Split::Train).unwrap_err()
        );
        assert!(msg.contains("holds 4 images but"), "{msg}");
        assert!(msg.contains("holds 3 labels"), "{msg}");
    }

    #[test]
    fn bad_label_and_bad_dims() {
        let dir = temp_dir("mnist-label");
        write_fake_mnist(&dir, 2, 2);
        std::fs::write(
            dir.join("t10k-labels-idx1-ubyte"),
            idx_bytes(&[2], &[3, 10]),
        )
        .unwrap();
        let msg = format!(
            "{:#}",
            ImageDataset::load(&dir, DatasetKind::Mnist, Split::Test).unwrap_err()
        );
        assert!(msg.contains("label 10 of image 1 is not a class"), "{msg}");

        std::fs::write(
            dir.join("t10k-images-idx3-ubyte.gz"),
            gzip(&idx_bytes(&[2, 32, 32], &[0; 2 * 32 * 32])),
        )
        .unwrap();
        let msg = format!(
            "{:#}",
            ImageDataset::load(&dir, DatasetKind::Mnist, Split::Test).unwrap_err()
        );
        assert!(msg.contains("[2, 32, 32]"), "{msg}");
        assert!(msg.contains("[n, 28, 28]"), "{msg}");
    }

    #[test]
    fn missing_file_says_what_and_where() {
        let dir = temp_dir("mnist-missing");
        let msg = format!(
            "{:#}",
            ImageDataset::load(&dir, DatasetKind::FashionMnist, Split::Train).unwrap_err()
        );
        assert!(msg.contains("holds no train-images-idx3-ubyte"), "{msg}");
        assert!(
            msg.contains("apt-get install dataset-fashion-mnist"),
            "{msg}"
        );
    }

    #[test]
    fn dotted_mirror_names_are_found() {
        let dir = temp_dir("mnist-dotted");
        std::fs::write(dir.join("train-images.idx3-ubyte"), b"x").unwrap();
        assert_eq!(
            find_file(&dir, "train-images-idx3-ubyte"),
            Some(dir.join("train-images.idx3-ubyte"))
        );
        assert_eq!(find_file(&dir, "train-labels-idx1-ubyte"), None);
    }

    #[test]
    fn kind_parses() {
        assert_eq!(
            "Fashion-MNIST".parse::<DatasetKind>().unwrap(),
            DatasetKind::FashionMnist
        );
        assert_eq!("mnist".parse::<DatasetKind>().unwrap(), DatasetKind::Mnist);
        assert!("cifar".parse::<DatasetKind>().is_err());
    }

    /// The real Fashion-MNIST, where installed (`apt-get install dataset-fashion-mnist`).
    #[test]
    fn real_fashion_mnist() {
        let dir = Path::new("/usr/share/datasets/fashion-mnist");
        if !dir.is_dir() {
            eprintln!(
                "skipped: {} is absent (apt-get install dataset-fashion-mnist)",
                dir.display()
            );
            return;
        }
        let data = MnistData::load(dir, DatasetKind::FashionMnist).unwrap();
        assert_eq!((data.train.n, data.test.n), (60000, 10000));
        assert_eq!(data.train.labels[0], 9);
        assert_eq!(data.train.class_names[9], "Ankle boot");
        assert_eq!(data.test.labels[0], 9);
        let norm = Normalization::from_dataset(&data.train);
        assert!(
            (norm.mean[0] - 0.2860).abs() < 1e-4,
            "mean {}",
            norm.mean[0]
        );
        assert!((norm.std[0] - 0.3530).abs() < 1e-4, "std {}", norm.std[0]);

        // One augmented epoch through the loader: 469 batches, every image once.
        let samples = ImageSamples::new(std::sync::Arc::new(data.train), norm)
            .with_augment(Augment::crop_flip());
        let loader = DataLoader::new(std::sync::Arc::new(samples), LoaderConfig::default());
        let start = std::time::Instant::now();
        let (mut batches, mut images) = (0, 0);
        for batch in loader.epoch(0) {
            let batch = batch.unwrap();
            assert_eq!(batch.input().shape()[1..], [1, 28, 28]);
            batches += 1;
            images += batch.len();
        }
        assert_eq!((batches, images), (469, 60000));
        eprintln!("one augmented epoch of batches in {:?}", start.elapsed());
    }
}
