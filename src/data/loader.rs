//! Mini-batches for training (shuffled, augmented, prepared on a background thread) and
//! for evaluation (in order, as they are).
//!
//! Every random choice comes from a generator seeded from `(seed, epoch)`: the order from
//! one stream, each image's augmentation from its own stream keyed by its position in
//! the epoch. The same seed therefore gives the same batches, whatever the threads do.

use super::augment::Augment;
use super::mnist::ImageDataset;
use super::normalize::Normalization;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;
use std::thread::JoinHandle;

/// One mini-batch, ready for the model.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    /// The normalized pixels, `[B, C, H, W]` row-major.
    pub images: Vec<f32>,
    /// The class of each image, `[B]`.
    pub labels: Vec<usize>,
    /// `[B, C, H, W]`.
    pub shape: [usize; 4],
}

impl Batch {
    /// The number of images in the batch.
    pub fn len(&self) -> usize {
        self.shape[0]
    }

    /// Whether the batch holds no image.
    pub fn is_empty(&self) -> bool {
        self.shape[0] == 0
    }
}

/// How a [`DataLoader`] makes its batches.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LoaderConfig {
    /// Images per batch.
    pub batch_size: usize,
    /// Shuffle the order each epoch.
    pub shuffle: bool,
    /// Drop the last batch when it is smaller than `batch_size`.
    pub drop_last: bool,
    /// The seed of the order and the augmentations.
    pub seed: u64,
    /// The augmentations of each training image.
    pub augment: Augment,
    /// Batches prepared ahead of the one being used (the channel bound).
    pub prefetch: usize,
}

impl Default for LoaderConfig {
    /// Batch 128, shuffled, last partial batch kept, seed 0, no augmentation, prefetch 2.
    fn default() -> Self {
        LoaderConfig {
            batch_size: 128,
            shuffle: true,
            drop_last: false,
            seed: 0,
            augment: Augment::none(),
            prefetch: 2,
        }
    }
}

/// Training batches over a data set, one [`EpochIter`] per epoch.
#[derive(Debug, Clone)]
pub struct DataLoader {
    dataset: Arc<ImageDataset>,
    norm: Normalization,
    config: LoaderConfig,
}

/// The stream tags of the seeded generators.
const STREAM_ORDER: u64 = 0;
const STREAM_AUGMENT: u64 = 1;

/// A generator for `(seed, epoch, stream, index)`: all four fill the 32-byte seed, so no
/// two combinations share a stream.
fn rng_for(seed: u64, epoch: u64, stream: u64, index: u64) -> StdRng {
    let mut key = [0u8; 32];
    for (chunk, v) in key.chunks_exact_mut(8).zip([seed, epoch, stream, index]) {
        chunk.copy_from_slice(&v.to_le_bytes());
    }
    StdRng::from_seed(key)
}

impl DataLoader {
    /// A loader over `dataset`, normalizing with `norm` (one entry per channel).
    pub fn new(dataset: Arc<ImageDataset>, norm: Normalization, config: LoaderConfig) -> Self {
        assert!(
            config.batch_size > 0,
            "DataLoader::new: batch_size must be positive"
        );
        assert_eq!(
            norm.channels(),
            dataset.channels,
            "DataLoader::new: normalization of {} channels for images of {} channels",
            norm.channels(),
            dataset.channels
        );
        DataLoader {
            dataset,
            norm,
            config,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &LoaderConfig {
        &self.config
    }

    /// The data set.
    pub fn dataset(&self) -> &ImageDataset {
        &self.dataset
    }

    /// The number of batches of one epoch.
    pub fn num_batches(&self) -> usize {
        let (n, b) = (self.dataset.n, self.config.batch_size);
        if self.config.drop_last {
            n / b
        } else {
            n.div_ceil(b)
        }
    }

    /// The image indices of `epoch`, in the order they are served.
    pub fn order(&self, epoch: u64) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.dataset.n).collect();
        if self.config.shuffle {
            order.shuffle(&mut rng_for(self.config.seed, epoch, STREAM_ORDER, 0));
        }
        order
    }

    /// The batches of `epoch`, assembled on a background thread that keeps up to
    /// `prefetch` of them ready.
    pub fn epoch(&self, epoch: u64) -> EpochIter {
        let order = self.order(epoch);
        let (tx, rx) = sync_channel(self.config.prefetch.max(1));
        let (dataset, norm, config) = (self.dataset.clone(), self.norm.clone(), self.config);
        let batches = self.num_batches();
        // One plain thread, no rayon: the batch of 128 small images takes well under a
        // millisecond, and the rayon pool belongs to the model's kernels meanwhile.
        let handle = std::thread::Builder::new()
            .name("neurite-loader".into())
            .spawn(move || {
                let mut scratch = Vec::new();
                for (b, indices) in order.chunks(config.batch_size).take(batches).enumerate() {
                    let first = (b * config.batch_size) as u64;
                    let batch = assemble(&dataset, indices, &norm, |k, image, shape| {
                        if config.augment.is_active() {
                            let mut rng =
                                rng_for(config.seed, epoch, STREAM_AUGMENT, first + k as u64);
                            config.augment.apply(image, shape, &mut rng, &mut scratch);
                        }
                    });
                    if tx.send(batch).is_err() {
                        return; // The iterator was dropped: stop early.
                    }
                }
            })
            .expect("DataLoader::epoch: cannot start the loader thread");
        EpochIter {
            rx: Some(rx),
            handle: Some(handle),
            remaining: batches,
        }
    }
}

/// Builds the batch of `indices`: bytes to `[0, 1]`, `augment(k, image, [c, h, w])` on the
/// k-th image, then normalization.
fn assemble(
    ds: &ImageDataset,
    indices: &[usize],
    norm: &Normalization,
    mut augment: impl FnMut(usize, &mut [f32], [usize; 3]),
) -> Batch {
    let chw = [ds.channels, ds.height, ds.width];
    let len = ds.image_len();
    let mut images = vec![0.0f32; indices.len() * len]; // [B, C, H, W]
    for (k, (&i, out)) in indices.iter().zip(images.chunks_exact_mut(len)).enumerate() {
        for (o, &p) in out.iter_mut().zip(ds.image(i)) {
            *o = p as f32 * (1.0 / 255.0);
        }
        augment(k, out, chw);
        norm.apply_image(out);
    }
    Batch {
        images,
        labels: indices.iter().map(|&i| ds.labels[i] as usize).collect(),
        shape: [indices.len(), ds.channels, ds.height, ds.width],
    }
}

/// The batches of one training epoch, received from the loader thread.
pub struct EpochIter {
    rx: Option<Receiver<Batch>>,
    handle: Option<JoinHandle<()>>,
    remaining: usize,
}

impl Iterator for EpochIter {
    type Item = Batch;

    fn next(&mut self) -> Option<Batch> {
        let received = self.rx.as_ref().map(|rx| rx.recv());
        match received.unwrap_or(Err(std::sync::mpsc::RecvError)) {
            Ok(batch) => {
                self.remaining -= 1;
                Some(batch)
            }
            Err(_) => {
                // The thread has finished; if it panicked, so do we, rather than end the
                // epoch early without a word.
                if let Some(handle) = self.handle.take() {
                    if let Err(panic) = handle.join() {
                        std::panic::resume_unwind(panic);
                    }
                }
                None
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl ExactSizeIterator for EpochIter {}

impl Drop for EpochIter {
    fn drop(&mut self) {
        // Unblock a sender waiting on a full channel, then wait for the thread to stop.
        drop(self.rx.take());
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
    }
}

/// Evaluation batches: in order, not augmented, normalized, the last partial batch kept.
pub struct EvalIter<'a> {
    dataset: &'a ImageDataset,
    norm: &'a Normalization,
    batch_size: usize,
    next: usize,
}

/// The batches of `dataset` in order, `batch_size` at a time, for evaluation.
pub fn eval_batches<'a>(
    dataset: &'a ImageDataset,
    norm: &'a Normalization,
    batch_size: usize,
) -> EvalIter<'a> {
    assert!(batch_size > 0, "eval_batches: batch_size must be positive");
    assert_eq!(
        norm.channels(),
        dataset.channels,
        "eval_batches: normalization of {} channels for images of {} channels",
        norm.channels(),
        dataset.channels
    );
    EvalIter {
        dataset,
        norm,
        batch_size,
        next: 0,
    }
}

impl Iterator for EvalIter<'_> {
    type Item = Batch;

    fn next(&mut self) -> Option<Batch> {
        if self.next >= self.dataset.n {
            return None;
        }
        let end = (self.next + self.batch_size).min(self.dataset.n);
        let indices: Vec<usize> = (self.next..end).collect();
        self.next = end;
        Some(assemble(self.dataset, &indices, self.norm, |_, _, _| {}))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = (self.dataset.n - self.next).div_ceil(self.batch_size);
        (left, Some(left))
    }
}

impl ExactSizeIterator for EvalIter<'_> {}

#[cfg(test)]
mod tests {
    use super::*;

    /// `n` images of `[1, 2, 3]`; image i holds bytes `i*6 .. i*6+6`, label `i % 3`.
    fn dataset(n: usize) -> Arc<ImageDataset> {
        let images: Vec<u8> = (0..n * 6).map(|v| v as u8).collect();
        let labels: Vec<u8> = (0..n).map(|i| (i % 3) as u8).collect();
        let names = vec!["a".into(), "b".into(), "c".into()];
        Arc::new(ImageDataset::new(images, labels, [1, 2, 3], names).unwrap())
    }

    fn loader(n: usize, config: LoaderConfig) -> DataLoader {
        DataLoader::new(dataset(n), Normalization::identity(1), config)
    }

    /// The image index of each sample of a batch, read back from its first pixel.
    fn ids(batch: &Batch) -> Vec<usize> {
        batch
            .images
            .chunks(6)
            .map(|im| (im[0] * 255.0).round() as usize / 6)
            .collect()
    }

    #[test]
    fn each_epoch_is_a_permutation_with_a_partial_last_batch() {
        let cfg = LoaderConfig {
            batch_size: 4,
            ..LoaderConfig::default()
        };
        let l = loader(10, cfg);
        assert_eq!(l.num_batches(), 3);
        let batches: Vec<Batch> = l.epoch(0).collect();
        assert_eq!(
            batches.iter().map(|b| b.shape).collect::<Vec<_>>(),
            vec![[4, 1, 2, 3], [4, 1, 2, 3], [2, 1, 2, 3]]
        );
        let mut seen: Vec<usize> = batches.iter().flat_map(ids).collect();
        assert_ne!(seen, (0..10).collect::<Vec<_>>(), "not shuffled");
        for b in &batches {
            let want: Vec<usize> = ids(b).iter().map(|i| i % 3).collect();
            assert_eq!(b.labels, want, "labels follow their images");
        }
        seen.sort();
        assert_eq!(seen, (0..10).collect::<Vec<_>>());
    }

    #[test]
    fn drop_last_and_no_shuffle() {
        let cfg = LoaderConfig {
            batch_size: 4,
            drop_last: true,
            shuffle: false,
            ..LoaderConfig::default()
        };
        let l = loader(10, cfg);
        let batches: Vec<Batch> = l.epoch(5).collect();
        assert_eq!(batches.len(), 2);
        assert_eq!(ids(&batches[1]), vec![4, 5, 6, 7]);
    }

    #[test]
    fn same_seed_same_batches_other_seed_or_epoch_differ() {
        let cfg = LoaderConfig {
            batch_size: 3,
            seed: 7,
            augment: "crop=1,flip,brightness,contrast".parse().unwrap(),
            ..LoaderConfig::default()
        };
        let run = |cfg: LoaderConfig, epoch| loader(20, cfg).epoch(epoch).collect::<Vec<_>>();
        let a = run(cfg, 1);
        assert_eq!(a, run(cfg, 1));
        assert_ne!(a, run(cfg, 2));
        assert_ne!(a, run(LoaderConfig { seed: 8, ..cfg }, 1));
        // Prefetch depth changes timing only, never the data.
        assert_eq!(a, run(LoaderConfig { prefetch: 1, ..cfg }, 1));
    }

    #[test]
    fn pixels_are_scaled_augmented_and_normalized() {
        let norm = Normalization {
            mean: vec![0.5],
            std: vec![0.25],
        };
        let cfg = LoaderConfig {
            batch_size: 2,
            shuffle: false,
            ..LoaderConfig::default()
        };
        let l = DataLoader::new(dataset(2), norm.clone(), cfg);
        let b = l.epoch(0).next().unwrap();
        let want: Vec<f32> = (0..12).map(|v| (v as f32 / 255.0 - 0.5) / 0.25).collect();
        for (x, y) in b.images.iter().zip(&want) {
            assert!((x - y).abs() < 1e-6);
        }
        // With flips on, some image of some epoch comes out mirrored.
        let cfg = LoaderConfig {
            augment: "flip".parse().unwrap(),
            ..cfg
        };
        let l = DataLoader::new(dataset(2), norm, cfg);
        let flipped = (0..10).any(|e| {
            let b = l.epoch(e).next().unwrap();
            b.images[0] > b.images[2]
        });
        assert!(flipped);
    }

    #[test]
    fn dropping_an_epoch_early_stops_the_thread() {
        let cfg = LoaderConfig {
            batch_size: 1,
            prefetch: 1,
            ..LoaderConfig::default()
        };
        let l = loader(50, cfg);
        let mut it = l.epoch(0);
        assert_eq!(it.len(), 50);
        it.next().unwrap();
        drop(it); // Must not hang on the blocked sender.
    }

    #[test]
    fn eval_is_in_order_and_plain() {
        let ds = dataset(7);
        let norm = Normalization::identity(1);
        let batches: Vec<Batch> = eval_batches(&ds, &norm, 3).collect();
        assert_eq!(batches.len(), 3);
        assert_eq!(ids(&batches[0]), vec![0, 1, 2]);
        assert_eq!(ids(&batches[2]), vec![6]);
        assert_eq!(batches[2].labels, vec![0]);
        assert_eq!(batches[1].images[0], 18.0 / 255.0);
    }
}
