//! Recycled buffers, and the safe way to fill one in parallel.
//!
//! A training step allocates the same activation and gradient buffers as the step before and
//! frees them when its graph goes. A dropped buffer comes here (by length, through
//! [`give`]); [`take`] hands it out again to a kernel that overwrites every element, so the
//! new owner skips both the allocation and the clearing pass of `vec![0.0; n]`. The
//! contents of a recycled buffer are old values, never uninitialised memory: a kernel that
//! forgot an element would give a wrong number that the tests see, not undefined
//! behaviour. [`filled_by_chunks`] goes one step further for a pool miss (fresh memory,
//! not cleared) and so checks that every element was written.
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
/// freed heap memory (see `keep_freed_memory`), so `vec![0.0; n]` would clear it on the
/// calling thread while the other workers wait.
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

/// One chunk of a buffer being filled by [`filled_by_chunks`]: a writer that takes values
/// in order and counts them, so that the buffer is handed out only once every element has
/// been written (a chunk left short panics instead).
pub struct Chunk<'a> {
    slots: &'a mut [MaybeUninit<f32>],
    written: usize,
}

impl Chunk<'_> {
    /// Number of elements in this chunk.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// True for a chunk of no elements.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Writes `values` into the next unwritten elements, in order; values beyond the end of
    /// the chunk are not taken.
    #[inline]
    pub fn extend(&mut self, values: impl IntoIterator<Item = f32>) {
        // A fold over the zip, not a `for` loop with a counter: it unrolls like the plain
        // loop over slices that it replaces.
        let rest = &mut self.slots[self.written..];
        self.written += rest.iter_mut().zip(values).fold(0, |k, (slot, v)| {
            slot.write(v);
            k + 1
        });
    }
}

/// A vector of `n` elements written by `f(chunk_start, chunk)` over consecutive chunks whose
/// lengths are multiples of `align` (as [`for_each_chunk_mut`], in parallel when large):
/// a kept buffer when the pool has one, else fresh memory, never cleared first (for outputs
/// that a kernel overwrites anyway, the clearing pass was a tenth of some training steps).
/// Taking kept buffers also means that a loop of such ops reuses the memory it just freed,
/// still in cache, instead of growing the heap until the pool is full.
///
/// Each chunk must be filled completely through [`Chunk::extend`]; a chunk left short
/// panics, so no unwritten element is ever read.
pub fn filled_by_chunks(
    n: usize,
    align: usize,
    f: impl Fn(usize, &mut Chunk<'_>) + Sync + Send,
) -> Vec<f32> {
    let fill = |start: usize, slots: &mut [MaybeUninit<f32>]| {
        let len = slots.len();
        let mut chunk = Chunk { slots, written: 0 };
        f(start, &mut chunk);
        assert_eq!(
            chunk.written, len,
            "filled_by_chunks: the chunk at {start} was left short"
        );
    };
    if let Some(mut v) = take_kept(n) {
        // SAFETY: `v` holds `n` initialised floats; viewing them as possibly uninitialised
        // is always sound, and a `Chunk` writes only floats.
        let slots =
            unsafe { std::slice::from_raw_parts_mut(v.as_mut_ptr().cast::<MaybeUninit<f32>>(), n) };
        for_each_chunk_mut(slots, align, fill);
        return v;
    }
    let mut v: Vec<f32> = Vec::with_capacity(n);
    for_each_chunk_mut(&mut v.spare_capacity_mut()[..n], align, fill);
    // SAFETY: the chunks cover all `n` elements, and each was checked above to be written
    // in full (a short chunk panics before this line is reached).
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
    fn chunks_fill_every_element_kept_buffer_or_fresh() {
        // Large enough to be cut into parallel chunks; the second call may get the first
        // call's buffer back from the pool, old contents and all.
        let n = 3 * MIN_LEN * 16 + 7;
        for round in 0..2 {
            let v = filled_by_chunks(n, 1, |start, out| {
                let len = out.len();
                out.extend((start..start + len).map(|i| (i + round) as f32));
            });
            assert_eq!(v.len(), n);
            assert!(v.iter().enumerate().all(|(i, &x)| x == (i + round) as f32));
            give(v);
        }
    }

    #[test]
    fn chunks_are_whole_multiples_of_the_alignment() {
        let (n, row) = (MIN_LEN * 40, 320);
        let v = filled_by_chunks(n, row, |start, out| {
            assert_eq!((start % row, out.len() % row), (0, 0));
            for r in 0..out.len() / row {
                out.extend(std::iter::repeat_n(((start / row) + r) as f32, row));
            }
        });
        assert!(v.iter().enumerate().all(|(i, &x)| x == (i / row) as f32));
    }

    #[test]
    #[should_panic(expected = "left short")]
    fn a_chunk_left_short_panics() {
        filled_by_chunks(10, 1, |_, out| out.extend([1.0, 2.0]));
    }

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
