//! Labelled images of bytes as a [`Dataset`]: the [`ImageSource`] trait (images in memory,
//! as [`ImageDataset`], or read on demand, as a folder decoded by the workers), and
//! [`ImageSamples`], which turns a source into samples: bytes to `[0, 1]`, the training
//! augmentations, then the per-channel normalization.

use super::augment::Augment;
use super::dataset::{Dataset, Sample, Target};
use super::mnist::ImageDataset;
use super::normalize::Normalization;
use anyhow::{bail, Result};
use rand::RngCore;
use std::sync::Arc;

/// Labelled images of one shape `[C, H, W]`, bytes 0 to 255, wherever they live.
///
/// A source read lazily implements `read` by decoding its file (the loader's workers call
/// it in parallel) and names the file in its error.
pub trait ImageSource: Send + Sync {
    /// The number of images.
    fn len(&self) -> usize;
    /// The shape of every image, `[C, H, W]`.
    fn shape(&self) -> [usize; 3];
    /// The class of image `i`.
    fn label(&self, i: usize) -> usize;
    /// The name of each class, in label order.
    fn class_names(&self) -> &[String];
    /// Writes the pixels of image `i` into `out` (`C * H * W` bytes, `[C, H, W]`).
    fn read(&self, i: usize, out: &mut [u8]) -> Result<()>;

    /// Whether the source holds no image.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl ImageSource for ImageDataset {
    fn len(&self) -> usize {
        self.n
    }
    fn shape(&self) -> [usize; 3] {
        [self.channels, self.height, self.width]
    }
    fn label(&self, i: usize) -> usize {
        self.labels[i] as usize
    }
    fn class_names(&self) -> &[String] {
        &self.class_names
    }
    fn read(&self, i: usize, out: &mut [u8]) -> Result<()> {
        out.copy_from_slice(self.image(i));
        Ok(())
    }
}

/// Image `i` of `source` as a sample of pixels in `[0, 1]`, `[C, H, W]`, and its class.
fn scaled(source: &dyn ImageSource, i: usize) -> Result<Sample> {
    let [c, h, w] = source.shape();
    let n = source.len();
    if i >= n {
        bail!("image {i} is past the end of a source of {n} images");
    }
    let mut bytes = vec![0u8; c * h * w];
    source.read(i, &mut bytes)?;
    let data = bytes.iter().map(|&p| p as f32 * (1.0 / 255.0)).collect();
    Ok(Sample::new(
        data,
        &[c, h, w],
        Target::Class(source.label(i)),
    ))
}

/// The images with pixels in `[0, 1]` (no normalization, no augmentation).
impl Dataset for ImageDataset {
    fn len(&self) -> usize {
        self.n
    }
    fn get(&self, i: usize) -> Result<Sample> {
        scaled(self, i)
    }
}

/// An image source as samples for a model: bytes to `[0, 1]`, then (in training only) the
/// augmentations, then the normalization, as the command trains.
///
/// ```
/// use neurite::data::{Dataset, ImageDataset, ImageSamples, Normalization};
/// use std::sync::Arc;
/// let images = ImageDataset::new(vec![0, 255, 51, 102], vec![1], [1, 2, 2], vec!["a".into(), "b".into()]).unwrap();
/// let norm = Normalization { mean: vec![0.2], std: vec![0.5] };
/// let samples = ImageSamples::new(Arc::new(images), norm);
/// let s = samples.get(0).unwrap();
/// assert_eq!(s.inputs[0].shape, vec![1, 2, 2]);
/// assert!((s.inputs[0].data[1] - 1.6).abs() < 1e-6); // (1.0 - 0.2) / 0.5
/// ```
#[derive(Clone)]
pub struct ImageSamples {
    source: Arc<dyn ImageSource>,
    norm: Normalization,
    augment: Augment,
}

impl ImageSamples {
    /// The images of `source`, normalized by `norm` (one entry per channel).
    pub fn new(source: Arc<dyn ImageSource>, norm: Normalization) -> Self {
        let c = source.shape()[0];
        assert_eq!(
            norm.channels(),
            c,
            "ImageSamples: normalization of {} channels for images of {c} channels",
            norm.channels()
        );
        ImageSamples {
            source,
            norm,
            augment: Augment::none(),
        }
    }

    /// The same samples with `augment` applied in training.
    pub fn with_augment(mut self, augment: Augment) -> Self {
        self.augment = augment;
        self
    }

    /// The source.
    pub fn source(&self) -> &dyn ImageSource {
        &*self.source
    }

    /// The normalization.
    pub fn normalization(&self) -> &Normalization {
        &self.norm
    }

    /// Image `i` scaled to `[0, 1]`, augmented with draws from `rng` if given, normalized.
    fn sample(&self, i: usize, rng: Option<&mut dyn RngCore>) -> Result<Sample> {
        let mut s = scaled(&*self.source, i)?;
        let input = &mut s.inputs[0];
        if let (Some(mut rng), true) = (rng, self.augment.is_active()) {
            let [c, h, w] = self.source.shape();
            self.augment
                .apply(&mut input.data, [c, h, w], &mut rng, &mut Vec::new());
        }
        self.norm.apply_image(&mut input.data);
        Ok(s)
    }
}

impl Dataset for ImageSamples {
    fn len(&self) -> usize {
        self.source.len()
    }
    fn get(&self, i: usize) -> Result<Sample> {
        self.sample(i, None)
    }
    fn get_random(&self, i: usize, rng: &mut dyn RngCore) -> Result<Sample> {
        self.sample(i, Some(rng))
    }
}

/// The first `n` images of a source (`--limit-train`).
pub struct FirstImages {
    source: Arc<dyn ImageSource>,
    n: usize,
}

impl FirstImages {
    /// The first `n` images of `source` (all when it has fewer).
    pub fn new(source: Arc<dyn ImageSource>, n: usize) -> Self {
        let n = n.min(source.len());
        FirstImages { source, n }
    }
}

impl ImageSource for FirstImages {
    fn len(&self) -> usize {
        self.n
    }
    fn shape(&self) -> [usize; 3] {
        self.source.shape()
    }
    fn label(&self, i: usize) -> usize {
        self.source.label(i)
    }
    fn class_names(&self) -> &[String] {
        self.source.class_names()
    }
    fn read(&self, i: usize, out: &mut [u8]) -> Result<()> {
        self.source.read(i, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::sampler::rng_for;

    fn images() -> ImageDataset {
        let bytes: Vec<u8> = (0..12).map(|v| v * 20).collect();
        ImageDataset::new(bytes, vec![0, 1], [1, 2, 3], vec!["a".into(), "b".into()]).unwrap()
    }

    #[test]
    fn image_dataset_is_a_source_and_a_dataset() {
        let ds = images();
        assert_eq!(ImageSource::len(&ds), 2);
        assert_eq!(ds.shape(), [1, 2, 3]);
        let mut out = [0u8; 6];
        ds.read(1, &mut out).unwrap();
        assert_eq!(out, [120, 140, 160, 180, 200, 220]);
        let s = Dataset::get(&ds, 1).unwrap();
        assert_eq!(s.target, Target::Class(1));
        assert_eq!(s.inputs[0].data[0], 120.0 * (1.0 / 255.0));
        let e = Dataset::get(&ds, 2).unwrap_err().to_string();
        assert!(e.contains("image 2"), "{e}");
    }

    #[test]
    fn samples_augment_only_in_training_then_normalize() {
        let norm = Normalization {
            mean: vec![0.5],
            std: vec![0.25],
        };
        let flip: Augment = "flip".parse().unwrap();
        let s = ImageSamples::new(Arc::new(images()), norm).with_augment(flip);
        let want: Vec<f32> = (0..6)
            .map(|v| (v as f32 * 20.0 * (1.0 / 255.0) - 0.5) / 0.25)
            .collect();
        assert_eq!(s.get(0).unwrap().inputs[0].data, want);
        // Some seeded draw flips the rows: [2, 1, 0, 5, 4, 3].
        let flipped: Vec<f32> = [2, 1, 0, 5, 4, 3].iter().map(|&k| want[k]).collect();
        let drawn: Vec<Vec<f32>> = (0..8)
            .map(|p| {
                let mut rng = rng_for(0, 0, 1, p);
                s.get_random(0, &mut rng).unwrap().inputs[0].data.clone()
            })
            .collect();
        assert!(drawn.contains(&flipped) && drawn.contains(&want));
    }

    #[test]
    fn first_images_limits_a_source() {
        let f = FirstImages::new(Arc::new(images()), 1);
        assert_eq!(f.len(), 1);
        assert_eq!(f.label(0), 0);
        assert_eq!(FirstImages::new(Arc::new(images()), 9).len(), 2);
    }
}
