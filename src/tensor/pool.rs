//! Recycled tensor buffers.
//!
//! A training step allocates the same activation and gradient buffers as the step before and
//! frees them when the graph goes. When a tensor's storage is dropped its buffer comes here
//! (by length); [`take`] hands it out again to a kernel that overwrites every element, so the
//! new tensor skips both the allocation and the clearing pass of `vec![0.0; n]` (`memset`
//! was 4-6% of the W3 and W4 profiles). The contents of a recycled buffer are old values,
//! never uninitialised memory: this is safe Rust, and a kernel that forgot an element would
//! give a wrong number that the tests see, not undefined behaviour.
//!
//! Only buffers of at least [`MIN_LEN`] elements are kept (small ones are cheap to allocate
//! and clear), and at most [`MAX_BYTES`] in all. A buffer that would overflow the pool
//! pushes out buffers of the length that holds the most bytes, so buffers of a phase that is
//! over (evaluation's larger batches) go first, and a step that frees more than the pool
//! holds (a gpt step, by the size of its activations) keeps a full pool instead of
//! starting an empty one.

use crate::runtime::threads::for_each_chunk_mut;
use std::collections::HashMap;
use std::mem::MaybeUninit;
use std::sync::Mutex;

/// Shorter buffers are not recycled.
pub const MIN_LEN: usize = 4096;
/// Most bytes the pool holds.
pub const MAX_BYTES: usize = 128 << 20;

#[derive(Default)]
struct Pool {
    by_len: HashMap<usize, Vec<Vec<f32>>>,
    bytes: usize,
}

impl Pool {
    /// A kept buffer of exactly `n` elements, if there is one.
    fn take(&mut self, n: usize) -> Option<Vec<f32>> {
        let v = self.by_len.get_mut(&n)?.pop()?;
        self.bytes -= n * 4;
        Some(v)
    }

    /// Keeps `v` (dropped instead when small or oddly sized; when the pool is full, it first
    /// drops buffers of the length holding the most bytes until `v` fits).
    fn give(&mut self, v: Vec<f32>) {
        let n = v.len();
        if n < MIN_LEN || v.capacity() != n || n * 4 > MAX_BYTES {
            return;
        }
        while self.bytes + n * 4 > MAX_BYTES {
            let largest = self
                .by_len
                .iter()
                .filter(|(_, kept)| !kept.is_empty())
                .max_by_key(|(&len, kept)| (len * kept.len(), len))
                .map(|(&len, _)| len);
            let Some(len) = largest else { break };
            if let Some(dropped) = self.by_len.get_mut(&len).and_then(Vec::pop) {
                self.bytes -= dropped.len() * 4;
            }
        }
        self.bytes += n * 4;
        self.by_len.entry(n).or_default().push(v);
    }
}

static POOL: Mutex<Option<Pool>> = Mutex::new(None);

/// A buffer of `n` elements with unspecified (but initialised) contents: for an output that
/// the caller overwrites completely.
pub fn take(n: usize) -> Vec<f32> {
    take_kept(n).unwrap_or_else(|| zeros(n))
}

/// `n` zeros in fresh memory, cleared by all the threads when large: the allocator reuses
/// freed heap memory (see `keep_freed_memory`), so `vec![0.0; n]` cleared it on the calling
/// thread while the other workers waited (`memset` under `conv2d_values` and the batch norm
/// in W3's profile).
fn zeros(n: usize) -> Vec<f32> {
    let mut v: Vec<f32> = Vec::with_capacity(n);
    for_each_chunk_mut(&mut v.spare_capacity_mut()[..n], 16, |_, chunk| {
        chunk.fill(MaybeUninit::new(0.0))
    });
    // SAFETY: every one of the `n` elements was written just above.
    unsafe { v.set_len(n) };
    v
}

/// A copy of `src`, in a kept buffer when the pool has one of its length.
pub fn copy_of(src: &[f32]) -> Vec<f32> {
    match take_kept(src.len()) {
        Some(mut v) => {
            v.copy_from_slice(src);
            v
        }
        None => src.to_vec(),
    }
}

/// A kept buffer of exactly `n` elements, if the pool has one.
fn take_kept(n: usize) -> Option<Vec<f32>> {
    if n < MIN_LEN {
        return None;
    }
    let mut guard = POOL.lock().unwrap_or_else(|e| e.into_inner());
    guard.as_mut().and_then(|pool| pool.take(n))
}

/// A vector of `n` elements written by `f(chunk_start, chunk)` over consecutive chunks (as
/// [`for_each_chunk_mut`], in parallel when large): a kept buffer when the pool has one,
/// else fresh memory, never cleared first (for outputs that a kernel overwrites anyway,
/// the clearing pass was a tenth of some training steps: `memset` in the profiles). Taking
/// kept buffers also means that a loop of such ops reuses the memory it just freed, still
/// in cache, instead of growing the heap until the pool is full (the first few hundred
/// windows of W7 page-faulted on fresh memory).
///
/// # Safety
/// `f` must write every element of every chunk it is given.
pub unsafe fn collect_chunks(
    n: usize,
    align: usize,
    f: impl Fn(usize, &mut [MaybeUninit<f32>]) + Sync + Send,
) -> Vec<f32> {
    if let Some(mut v) = take_kept(n) {
        // SAFETY: `v` holds `n` initialised floats; viewing them as possibly uninitialised
        // is always sound, and `f` writes only floats.
        let slots =
            unsafe { std::slice::from_raw_parts_mut(v.as_mut_ptr().cast::<MaybeUninit<f32>>(), n) };
        for_each_chunk_mut(slots, align, f);
        return v;
    }
    let mut v: Vec<f32> = Vec::with_capacity(n);
    for_each_chunk_mut(&mut v.spare_capacity_mut()[..n], align, f);
    // SAFETY: the caller's `f` initialised all `n` elements.
    unsafe { v.set_len(n) };
    v
}

/// Gives a buffer back for reuse (see [`Pool::give`]).
pub fn give(v: Vec<f32>) {
    if v.len() < MIN_LEN {
        return;
    }
    let mut guard = POOL.lock().unwrap_or_else(|e| e.into_inner());
    guard.get_or_insert_with(Pool::default).give(v);
}

/// Lets every kept buffer go: for a change of phase (training to evaluation and back) whose
/// buffers have other lengths, so that the two phases' buffers are not held at once.
pub fn clear() {
    let mut guard = POOL.lock().unwrap_or_else(|e| e.into_inner());
    *guard = None;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_come_back_and_small_ones_do_not() {
        // A pool of its own: the process-wide one is shared with every other test thread.
        let mut pool = Pool::default();
        let n = MIN_LEN + 5;
        let mut v = vec![0.0; n];
        v[7] = 42.0;
        let ptr = v.as_ptr();
        pool.give(v);
        let again = pool.take(n).expect("the freed buffer is kept");
        assert_eq!(again.as_ptr(), ptr, "the freed buffer is handed out again");
        assert_eq!(
            again[7], 42.0,
            "contents are kept (the caller overwrites them)"
        );
        assert!(pool.take(n).is_none(), "each buffer is handed out once");
        pool.give(vec![1.0; 10]);
        assert!(pool.take(10).is_none(), "small buffers are not kept");
        assert_eq!(pool.bytes, 0);
    }

    #[test]
    fn a_full_pool_drops_the_largest_holding_first() {
        let mut pool = Pool::default();
        let big = MAX_BYTES / 4 / 4; // four fill the pool
        let small = MIN_LEN;
        for _ in 0..3 {
            pool.give(vec![0.0; big]);
        }
        pool.give(vec![0.0; small]);
        assert_eq!(pool.bytes, 3 * big * 4 + small * 4);
        // Needs room for one more large buffer: one of the three old large ones goes, the
        // small one stays.
        pool.give(vec![0.0; big + 1]);
        assert_eq!(pool.bytes, 2 * big * 4 + small * 4 + (big + 1) * 4);
        assert!(pool.take(small).is_some(), "the small buffer was kept");
        assert!(pool.take(big + 1).is_some(), "the new buffer was kept");
        assert!(pool.take(big).is_some() && pool.take(big).is_some());
        assert!(pool.take(big).is_none(), "one old large buffer was dropped");
        assert_eq!(pool.bytes, 0);
    }
}
