//! The order in which a loader visits a data set each epoch (PyTorch's `Sampler`): in
//! order ([`SequentialSampler`]) or a seeded permutation per epoch ([`RandomSampler`]).
//! A sampler of one's own (one that shards the order across processes, say) implements
//! [`Sampler`] and goes to [`super::DataLoader::with_sampler`].

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;

/// The stream tag of the epoch's order (see [`rng_for`]).
pub const STREAM_ORDER: u64 = 0;
/// The stream tag of each sample's random transforms.
pub const STREAM_AUGMENT: u64 = 1;

/// A generator for `(seed, epoch, stream, index)`: all four fill the 32-byte seed, so no
/// two combinations share a stream.
pub fn rng_for(seed: u64, epoch: u64, stream: u64, index: u64) -> StdRng {
    let mut key = [0u8; 32];
    for (chunk, v) in key.chunks_exact_mut(8).zip([seed, epoch, stream, index]) {
        chunk.copy_from_slice(&v.to_le_bytes());
    }
    StdRng::from_seed(key)
}

/// The indices of each epoch, in the order they are served.
pub trait Sampler: Send + Sync {
    /// The number of indices of every epoch.
    fn len(&self) -> usize;

    /// The indices of `epoch` (each below the data set's length; `len()` of them).
    fn indices(&self, epoch: u64) -> Vec<usize>;

    /// Whether an epoch is empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// `0, 1, ..., len - 1` every epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SequentialSampler {
    /// The data set's length.
    pub len: usize,
}

impl Sampler for SequentialSampler {
    fn len(&self) -> usize {
        self.len
    }
    fn indices(&self, _epoch: u64) -> Vec<usize> {
        (0..self.len).collect()
    }
}

/// A permutation of `0..len` drawn from `(seed, epoch)`: the same seed gives the same
/// order on every run and machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RandomSampler {
    /// The data set's length.
    pub len: usize,
    /// The seed of the permutations.
    pub seed: u64,
}

impl Sampler for RandomSampler {
    fn len(&self) -> usize {
        self.len
    }
    fn indices(&self, epoch: u64) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.len).collect();
        order.shuffle(&mut rng_for(self.seed, epoch, STREAM_ORDER, 0));
        order
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_is_a_seeded_permutation_per_epoch() {
        let s = RandomSampler { len: 50, seed: 3 };
        let a = s.indices(0);
        assert_eq!(a, s.indices(0));
        assert_ne!(a, s.indices(1));
        assert_ne!(a, RandomSampler { len: 50, seed: 4 }.indices(0));
        let mut sorted = a.clone();
        sorted.sort();
        assert_eq!(sorted, (0..50).collect::<Vec<_>>());
        assert_ne!(a, sorted);
        assert_eq!(SequentialSampler { len: 3 }.indices(9), vec![0, 1, 2]);
    }
}
