//! Mini-batches over any [`Dataset`]: for training, in a [`Sampler`]'s order, prepared by
//! background workers; for evaluation, in order with no random transform.
//!
//! Every random choice comes from a generator seeded from `(seed, epoch)`: the order from
//! the sampler, each sample's transforms from its own stream keyed by its position in the
//! epoch ([`super::sampler::rng_for`]). The same seed therefore gives the same batches,
//! whatever the number of workers or their timing.
//!
//! ```
//! use neurite::data::{DataLoader, LoaderConfig, TensorDataset};
//! use neurite::Tensor;
//! use std::sync::Arc;
//! # fn main() -> anyhow::Result<()> {
//! let x = Tensor::from_vec((0..20).map(|v| v as f32).collect(), &[10, 2]); // [N, F]
//! let y = Tensor::from_vec((0..10).map(|v| v as f32).collect(), &[10]); // [N]
//! let config = LoaderConfig { batch_size: 4, num_workers: 2, ..Default::default() };
//! let loader = DataLoader::new(Arc::new(TensorDataset::new(x, y)?), config);
//! let mut sizes = Vec::new();
//! for batch in loader.epoch(0) {
//!     let batch = batch?;
//!     sizes.push(batch.len()); // batch.input(): [B, 2], batch.values(): [B]
//! }
//! assert_eq!(sizes, vec![4, 4, 2]);
//! # Ok(()) }
//! ```

use super::collate::{collate, Batch};
use super::dataset::Dataset;
use super::sampler::{rng_for, RandomSampler, Sampler, SequentialSampler, STREAM_AUGMENT};
use anyhow::{bail, Result};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;
use std::thread::JoinHandle;

/// How a [`DataLoader`] makes its batches.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LoaderConfig {
    /// Samples per batch.
    pub batch_size: usize,
    /// Shuffle the order each epoch ([`RandomSampler`]; else [`SequentialSampler`]).
    pub shuffle: bool,
    /// Drop the last batch when it is smaller than `batch_size`.
    pub drop_last: bool,
    /// The seed of the order and of the random transforms.
    pub seed: u64,
    /// Background threads preparing batches (0: on the caller's thread, when asked).
    pub num_workers: usize,
    /// Batches each worker keeps ready ahead of the one being used (the channel bound).
    pub prefetch: usize,
}

impl Default for LoaderConfig {
    /// Batch 128, shuffled, last partial batch kept, seed 0, one worker, prefetch 2.
    fn default() -> Self {
        LoaderConfig {
            batch_size: 128,
            shuffle: true,
            drop_last: false,
            seed: 0,
            num_workers: 1,
            prefetch: 2,
        }
    }
}

/// Training batches over a data set, one [`EpochIter`] per epoch.
#[derive(Clone)]
pub struct DataLoader {
    dataset: Arc<dyn Dataset>,
    sampler: Arc<dyn Sampler>,
    config: LoaderConfig,
    /// `(rank, world)`: this process prepares only its rows of every batch.
    share: (usize, usize),
}

impl DataLoader {
    /// A loader over `dataset` in the order `config.shuffle` asks for.
    pub fn new(dataset: Arc<dyn Dataset>, config: LoaderConfig) -> Self {
        let len = dataset.len();
        let sampler: Arc<dyn Sampler> = if config.shuffle {
            Arc::new(RandomSampler {
                len,
                seed: config.seed,
            })
        } else {
            Arc::new(SequentialSampler { len })
        };
        Self::with_sampler(dataset, sampler, config)
    }

    /// A loader over `dataset` in the order of `sampler` (`config.shuffle` is not used).
    pub fn with_sampler(
        dataset: Arc<dyn Dataset>,
        sampler: Arc<dyn Sampler>,
        config: LoaderConfig,
    ) -> Self {
        assert!(
            config.batch_size > 0,
            "DataLoader: batch_size must be positive"
        );
        DataLoader {
            dataset,
            sampler,
            config,
            share: (0, 1),
        }
    }

    /// The loader of rank `rank` of `world` in data-parallel training: the same global
    /// batches in the same order (the sampler's, whatever `world`), of which this loader
    /// prepares only the rank's rows ([`crate::distributed::batch_share`]: contiguous, the
    /// first ranks one row more when the batch does not divide). A sample's random
    /// transforms are keyed by its position in the epoch, so the ranks' rows together are
    /// exactly the batch one process would make. A rank whose share of a batch is empty gets
    /// an error: keep every batch at least `world` samples.
    ///
    /// ```
    /// use neurite::data::{DataLoader, LoaderConfig, TensorDataset};
    /// use neurite::Tensor;
    /// use std::sync::Arc;
    /// # fn main() -> anyhow::Result<()> {
    /// let x = Tensor::from_vec((0..10).map(|v| v as f32).collect(), &[10, 1]); // [N, 1]
    /// let data = Arc::new(TensorDataset::new(x.clone(), x)?);
    /// let config = LoaderConfig { batch_size: 5, shuffle: false, ..Default::default() };
    /// let rank1 = DataLoader::new(data, config).with_rank_share(1, 2);
    /// let first = rank1.epoch(0).next().unwrap()?; // rows 3..5 of the batch 0..5
    /// assert_eq!(first.input().to_vec(), vec![3.0, 4.0]);
    /// # Ok(()) }
    /// ```
    pub fn with_rank_share(mut self, rank: usize, world: usize) -> Self {
        assert!(
            world > 0 && rank < world,
            "DataLoader::with_rank_share: rank {rank} of {world}"
        );
        self.share = (rank, world);
        self
    }

    /// The number of samples in batch `b` of every rank together (the global batch).
    pub fn global_batch_len(&self, b: usize) -> usize {
        let first = b * self.config.batch_size;
        (first + self.config.batch_size).min(self.sampler.len()) - first.min(self.sampler.len())
    }

    /// The configuration.
    pub fn config(&self) -> &LoaderConfig {
        &self.config
    }

    /// The data set.
    pub fn dataset(&self) -> &dyn Dataset {
        &*self.dataset
    }

    /// The number of batches of one epoch.
    pub fn num_batches(&self) -> usize {
        let (n, b) = (self.sampler.len(), self.config.batch_size);
        if self.config.drop_last {
            n / b
        } else {
            n.div_ceil(b)
        }
    }

    /// The sample indices of `epoch`, in the order they are served.
    pub fn order(&self, epoch: u64) -> Vec<usize> {
        self.sampler.indices(epoch)
    }

    /// The batches of `epoch`. Worker `k` of `num_workers` prepares batches `k`, `k + n`,
    /// ... keeping up to `prefetch` ready; the iterator takes them in order. An error of the
    /// data set (a bad file) comes out of the iterator, which then ends.
    pub fn epoch(&self, epoch: u64) -> EpochIter {
        let order = Arc::new(self.order(epoch));
        let batches = self.num_batches();
        let plan = EpochPlan {
            dataset: self.dataset.clone(),
            order,
            batch_size: self.config.batch_size,
            seed: self.config.seed,
            epoch,
            share: self.share,
        };
        let workers = self.config.num_workers;
        let mut channels = Vec::with_capacity(workers);
        let mut handles = Vec::with_capacity(workers);
        for k in 0..workers.min(batches) {
            let (tx, rx) = sync_channel(self.config.prefetch.max(1));
            let plan = plan.clone();
            // Plain threads, no rayon: the rayon pool belongs to the model's kernels while
            // the step runs.
            let handle = std::thread::Builder::new()
                .name(format!("neurite-loader-{k}"))
                .spawn(move || {
                    for b in (k..batches).step_by(workers) {
                        let batch = plan.batch(b);
                        let failed = batch.is_err();
                        if tx.send(batch).is_err() || failed {
                            return; // The iterator was dropped, or the epoch has failed.
                        }
                    }
                })
                .expect("DataLoader::epoch: cannot start a loader thread");
            channels.push(rx);
            handles.push(Some(handle));
        }
        EpochIter {
            plan,
            channels,
            handles,
            next: 0,
            batches,
        }
    }
}

/// What every worker of one epoch needs.
#[derive(Clone)]
struct EpochPlan {
    dataset: Arc<dyn Dataset>,
    order: Arc<Vec<usize>>,
    batch_size: usize,
    seed: u64,
    epoch: u64,
    share: (usize, usize),
}

impl EpochPlan {
    /// Batch `b` of the epoch (this rank's rows of it): sample at position `p` draws from
    /// `(seed, epoch, p)`.
    fn batch(&self, b: usize) -> Result<Batch> {
        let first = b * self.batch_size;
        let end = (first + self.batch_size).min(self.order.len());
        let (rank, world) = self.share;
        let rows = crate::distributed::batch_share(end - first, rank, world);
        if rows.is_empty() {
            bail!(
                "batch {} of the epoch holds {} samples, fewer than the {world} ranks: every \
                 rank needs at least one (give a batch size or a number of samples whose last \
                 batch holds at least {world})",
                b + 1,
                end - first
            );
        }
        let (first, end) = (first + rows.start, first + rows.end);
        let n = self.dataset.len();
        let mut samples = Vec::with_capacity(end - first);
        for (p, &i) in (first..end).zip(&self.order[first..end]) {
            if i >= n {
                bail!("the sampler gave index {i} for a data set of {n} samples");
            }
            let mut rng = rng_for(self.seed, self.epoch, STREAM_AUGMENT, p as u64);
            samples.push(self.dataset.get_random(i, &mut rng)?);
        }
        collate(samples, first)
    }
}

/// The batches of one training epoch, in order; an `Err` ends it.
pub struct EpochIter {
    plan: EpochPlan,
    channels: Vec<Receiver<Result<Batch>>>,
    handles: Vec<Option<JoinHandle<()>>>,
    next: usize,
    batches: usize,
}

impl EpochIter {
    /// Waits for the workers; a worker's panic becomes ours.
    fn join_all(&mut self) {
        self.channels.clear();
        for handle in self.handles.iter_mut().filter_map(Option::take) {
            if let Err(panic) = handle.join() {
                if !std::thread::panicking() {
                    std::panic::resume_unwind(panic);
                }
            }
        }
    }
}

impl Iterator for EpochIter {
    type Item = Result<Batch>;

    fn next(&mut self) -> Option<Result<Batch>> {
        if self.next >= self.batches {
            return None;
        }
        let b = self.next;
        let received = if self.channels.is_empty() {
            Ok(self.plan.batch(b)) // No workers: on this thread.
        } else {
            self.channels[b % self.channels.len()].recv()
        };
        match received {
            Ok(batch) => {
                self.next = if batch.is_err() { self.batches } else { b + 1 };
                Some(batch)
            }
            Err(_) => {
                // A worker stopped without its batch: it panicked, and so do we, rather
                // than end the epoch early without a word.
                self.next = self.batches;
                self.join_all();
                None
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.batches - self.next;
        (left, Some(left))
    }
}

impl ExactSizeIterator for EpochIter {}

impl Drop for EpochIter {
    fn drop(&mut self) {
        // Dropping the receivers unblocks senders waiting on a full channel.
        self.join_all();
    }
}

/// Evaluation batches: in order, no random transform, the last partial batch kept.
pub struct EvalIter<'a> {
    dataset: &'a dyn Dataset,
    batch_size: usize,
    next: usize,
}

/// The batches of `dataset` in order, `batch_size` at a time, for evaluation (samples from
/// [`Dataset::get`]).
pub fn eval_batches(dataset: &dyn Dataset, batch_size: usize) -> EvalIter<'_> {
    assert!(batch_size > 0, "eval_batches: batch_size must be positive");
    EvalIter {
        dataset,
        batch_size,
        next: 0,
    }
}

impl Iterator for EvalIter<'_> {
    type Item = Result<Batch>;

    fn next(&mut self) -> Option<Result<Batch>> {
        let n = self.dataset.len();
        if self.next >= n {
            return None;
        }
        let (first, end) = (self.next, (self.next + self.batch_size).min(n));
        // An error ends the iteration.
        self.next = n;
        let samples: Result<Vec<_>> = (first..end).map(|i| self.dataset.get(i)).collect();
        let batch = samples.and_then(|s| collate(s, first));
        if batch.is_ok() {
            self.next = end;
        }
        Some(batch)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = (self.dataset.len() - self.next).div_ceil(self.batch_size);
        (left, Some(left))
    }
}

impl ExactSizeIterator for EvalIter<'_> {}
