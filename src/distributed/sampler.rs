//! Which samples each rank reads: PyTorch's `DistributedSampler` rule, and the share of a
//! global batch.
//!
//! **The rule** (PyTorch's): every rank draws the same seeded permutation of the epoch (the
//! seed plus the epoch, so the global order is the same whatever the number of ranks N).
//! Without `drop_last` the order is padded by repeating its first samples up to
//! `ceil(len / N) * N` (so a few samples are seen twice when N does not divide `len`); with
//! it, it is cut to `floor(len / N) * N`. Rank `r` takes every N-th sample from position `r`
//! (`indices[r..total:N]`). With a local batch of `B / N`, the union of the ranks' `i`-th
//! batches is the `i`-th global batch of `B`, so N ranks train on the same batches as one.

use rand::seq::SliceRandom;
use rand::{rngs::StdRng, SeedableRng};
use std::ops::Range;

/// The samples of one rank, epoch by epoch (PyTorch's `DistributedSampler`).
///
/// ```
/// use neurite::distributed::DistributedSampler;
/// let shards: Vec<Vec<usize>> = (0..3)
///     .map(|r| DistributedSampler::new(10, r, 3).seed(7).indices(0))
///     .collect();
/// assert!(shards.iter().all(|s| s.len() == 4)); // ceil(10 / 3), padded
/// let mut all: Vec<usize> = shards.concat();
/// all.sort();
/// all.dedup();
/// assert_eq!(all, (0..10).collect::<Vec<_>>()); // every sample, on one rank or another
/// ```
#[derive(Clone, Debug)]
pub struct DistributedSampler {
    len: usize,
    rank: usize,
    world: usize,
    seed: u64,
    shuffle: bool,
    drop_last: bool,
}

impl DistributedSampler {
    /// Rank `rank` of `world` over a data set of `len` samples; shuffled with seed 0, padded.
    /// Panics when `rank >= world` or `world == 0`.
    pub fn new(len: usize, rank: usize, world: usize) -> DistributedSampler {
        assert!(
            world > 0 && rank < world,
            "DistributedSampler: rank {rank} is not one of {world} ranks"
        );
        DistributedSampler {
            len,
            rank,
            world,
            seed: 0,
            shuffle: true,
            drop_last: false,
        }
    }

    /// The seed of the permutations (the same on every rank).
    pub fn seed(mut self, seed: u64) -> DistributedSampler {
        self.seed = seed;
        self
    }

    /// Whether each epoch is shuffled (else the samples in order).
    pub fn shuffle(mut self, shuffle: bool) -> DistributedSampler {
        self.shuffle = shuffle;
        self
    }

    /// Drop the tail that does not fill every rank instead of padding it.
    pub fn drop_last(mut self, drop_last: bool) -> DistributedSampler {
        self.drop_last = drop_last;
        self
    }

    /// Samples per rank and epoch.
    pub fn num_samples(&self) -> usize {
        if self.drop_last {
            self.len / self.world
        } else {
            self.len.div_ceil(self.world)
        }
    }

    /// The global order of `epoch` (the same on every rank and for every N).
    pub fn global_order(&self, epoch: u64) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.len).collect();
        if self.shuffle {
            order.shuffle(&mut StdRng::seed_from_u64(self.seed.wrapping_add(epoch)));
        }
        order
    }

    /// This rank's samples of `epoch`, in the order it reads them.
    pub fn indices(&self, epoch: u64) -> Vec<usize> {
        self.shard(&self.global_order(epoch))
    }

    /// This rank's part of a global `order` (of any source, such as
    /// `data::DataLoader::order(epoch)`), by the rule above.
    pub fn shard(&self, order: &[usize]) -> Vec<usize> {
        let total = if self.drop_last {
            (order.len() / self.world) * self.world
        } else {
            order.len().div_ceil(self.world) * self.world
        };
        let padded: Vec<usize> = order.iter().copied().cycle().take(total).collect();
        if order.is_empty() {
            return Vec::new();
        }
        padded
            .into_iter()
            .skip(self.rank)
            .step_by(self.world)
            .collect()
    }
}

/// Rank `rank`'s rows of a global batch of `batch` rows split over `world` ranks: contiguous,
/// the first `batch % world` ranks one row more (so shares differ by at most one row; a rank
/// whose share is empty must still join the all-reduce, with a zero gradient).
///
/// ```
/// use neurite::distributed::batch_share;
/// assert_eq!(batch_share(10, 0, 3), 0..4);
/// assert_eq!(batch_share(10, 1, 3), 4..7);
/// assert_eq!(batch_share(10, 2, 3), 7..10);
/// ```
pub fn batch_share(batch: usize, rank: usize, world: usize) -> Range<usize> {
    assert!(
        world > 0 && rank < world,
        "batch_share: rank {rank} of {world}"
    );
    let (base, extra) = (batch / world, batch % world);
    let start = rank * base + rank.min(extra);
    start..start + base + usize::from(rank < extra)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shards_cover_an_epoch_exactly_once_for_1_2_and_3_ranks() {
        for len in [12usize, 10, 7] {
            for world in 1..=3 {
                let shards: Vec<Vec<usize>> = (0..world)
                    .map(|r| DistributedSampler::new(len, r, world).seed(5).indices(3))
                    .collect();
                let order = DistributedSampler::new(len, 0, world)
                    .seed(5)
                    .global_order(3);
                // The global order does not depend on N.
                assert_eq!(
                    order,
                    DistributedSampler::new(len, 0, 1).seed(5).global_order(3)
                );
                let mut counts = vec![0usize; len];
                for s in &shards {
                    assert_eq!(s.len(), len.div_ceil(world));
                    for &i in s {
                        counts[i] += 1;
                    }
                }
                // Exactly once, but for the padding: the first `pad` samples of the order.
                let pad = len.div_ceil(world) * world - len;
                for (k, &i) in order.iter().enumerate() {
                    assert_eq!(counts[i], 1 + usize::from(k < pad), "len {len} N {world}");
                }
                // Interleaved, rank r's i-th sample is the global order's (i N + r)-th.
                assert_eq!(shards[world - 1][0], order[world - 1]);
                // drop_last: disjoint, and the tail left out.
                let dropped: Vec<usize> = (0..world)
                    .flat_map(|r| {
                        DistributedSampler::new(len, r, world)
                            .seed(5)
                            .drop_last(true)
                            .indices(3)
                    })
                    .collect();
                assert_eq!(dropped.len(), (len / world) * world);
                let mut d = dropped.clone();
                d.sort();
                d.dedup();
                assert_eq!(d.len(), dropped.len());
            }
        }
        let a = DistributedSampler::new(10, 0, 2).seed(1);
        assert_ne!(a.indices(0), a.indices(1), "each epoch its own permutation");
        assert_eq!(
            DistributedSampler::new(4, 1, 2).shuffle(false).indices(9),
            vec![1, 3]
        );
    }

    #[test]
    fn batch_shares_tile_the_batch() {
        for batch in 0..9 {
            for world in 1..=4 {
                let shares: Vec<Range<usize>> =
                    (0..world).map(|r| batch_share(batch, r, world)).collect();
                assert_eq!(shares[0].start, 0);
                assert_eq!(shares[world - 1].end, batch);
                for w in shares.windows(2) {
                    assert_eq!(w[0].end, w[1].start);
                    assert!(w[0].len() >= w[1].len() && w[0].len() <= w[1].len() + 1);
                }
            }
        }
    }
}
