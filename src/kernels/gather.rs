//! Row gathers and scatter-adds along one dimension: the arithmetic of `index_select` and
//! `embedding` (forward gathers rows, backward adds them back, repeats accumulating).
//!
//! A tensor is seen as `[outer, n, inner]` around the indexed dimension; a "row" is one run of
//! `inner` contiguous values. The output of a gather is `[outer, index.len(), inner]`.
//! Indices are checked by the op that calls these functions.

use super::vector::add_assign;
use crate::runtime::threads::for_each_chunk_mut;
use rayon::prelude::*;

/// `dst[o, j, :] = src[o, index[j], :]`, in parallel over rows when large.
pub fn gather_rows(src: &[f32], n: usize, inner: usize, index: &[usize], dst: &mut [f32]) {
    let m = index.len();
    if inner == 0 || m == 0 {
        return;
    }
    for_each_chunk_mut(dst, inner, |start, chunk| {
        let first_row = start / inner;
        for (r, row) in chunk.chunks_mut(inner).enumerate() {
            let (o, j) = ((first_row + r) / m, (first_row + r) % m);
            let s = (o * n + index[j]) * inner;
            row.copy_from_slice(&src[s..s + inner]);
        }
    });
}

/// `dst[o, index[j], :] += grad[o, j, :]` (repeated indices add up). Parallel over `outer`
/// (disjoint blocks of `dst`); within one block the rows are added serially, since two
/// repeats of an index write the same row.
pub fn scatter_add_rows(grad: &[f32], n: usize, inner: usize, index: &[usize], dst: &mut [f32]) {
    let m = index.len();
    if inner == 0 || m == 0 || n == 0 {
        return;
    }
    let add_block = |(d, g): (&mut [f32], &[f32])| {
        for (j, &i) in index.iter().enumerate() {
            add_assign(
                &mut d[i * inner..(i + 1) * inner],
                &g[j * inner..(j + 1) * inner],
            );
        }
    };
    if dst.len() / (n * inner) > 1 {
        dst.par_chunks_mut(n * inner)
            .zip(grad.par_chunks(m * inner))
            .for_each(add_block);
    } else {
        dst.chunks_mut(n * inner)
            .zip(grad.chunks(m * inner))
            .for_each(add_block);
    }
}

/// Element-by-element `gather_rows`, for tests.
pub fn gather_rows_reference(
    src: &[f32],
    n: usize,
    inner: usize,
    index: &[usize],
    dst: &mut [f32],
) {
    let m = index.len();
    let outer = dst.len().checked_div(m * inner).unwrap_or(0);
    for o in 0..outer {
        for (j, &i) in index.iter().enumerate() {
            for c in 0..inner {
                dst[(o * m + j) * inner + c] = src[(o * n + i) * inner + c];
            }
        }
    }
}

/// Element-by-element `scatter_add_rows`, for tests.
pub fn scatter_add_rows_reference(
    grad: &[f32],
    n: usize,
    inner: usize,
    index: &[usize],
    dst: &mut [f32],
) {
    let m = index.len();
    let outer = grad.len().checked_div(m * inner).unwrap_or(0);
    for o in 0..outer {
        for (j, &i) in index.iter().enumerate() {
            for c in 0..inner {
                dst[(o * n + i) * inner + c] += grad[(o * m + j) * inner + c];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(len: usize) -> Vec<f32> {
        (0..len).map(|i| ((i * 37) % 101) as f32 - 50.0).collect()
    }

    #[test]
    fn gather_and_scatter_match_reference() {
        // (outer, n, inner, index): batch 1, odd sizes, repeats, and a large case that
        // takes the parallel path.
        let cases: Vec<(usize, usize, usize, Vec<usize>)> = vec![
            (1, 5, 3, vec![4, 0, 4, 2]),
            (3, 7, 1, vec![6, 6, 6]),
            (2, 4, 5, vec![]),
            (5, 9, 13, vec![8, 1, 1, 0, 7]),
            (64, 33, 129, (0..40).map(|i| (i * 7) % 33).collect()),
            (1, 300, 257, (0..200).map(|i| (i * 13) % 300).collect()),
        ];
        for (outer, n, inner, index) in cases {
            let m = index.len();
            let src = values(outer * n * inner);
            let (mut a, mut b) = (vec![0.0; outer * m * inner], vec![1.0; outer * m * inner]);
            gather_rows(&src, n, inner, &index, &mut a);
            gather_rows_reference(&src, n, inner, &index, &mut b);
            assert_eq!(a, b, "gather outer={outer} n={n} inner={inner}");

            let grad = values(outer * m * inner);
            let (mut a, mut b) = (vec![0.5; outer * n * inner], vec![0.5; outer * n * inner]);
            scatter_add_rows(&grad, n, inner, &index, &mut a);
            scatter_add_rows_reference(&grad, n, inner, &index, &mut b);
            assert_eq!(a, b, "scatter outer={outer} n={n} inner={inner}");
        }
    }
}
