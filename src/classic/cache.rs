//! The kernel row cache of the SMO solver, as LIBSVM's `Cache`: rows of `Q` kept in
//! least-recently-used order within a budget of floats. A row may be held partially (its
//! first `len` entries): with shrinking the solver asks only for the active prefix, and
//! extends a row when the active set grows again.

/// An LRU cache of row prefixes, rows `0..l`.
pub struct RowCache {
    /// The cached prefix of each row (empty when not cached).
    data: Vec<Vec<f32>>,
    /// Doubly-linked LRU list over rows plus a sentinel at index `l`: the sentinel's `next`
    /// is the least recently used row, its `prev` the most recent.
    prev: Vec<usize>,
    next: Vec<usize>,
    /// Floats still free in the budget.
    free: usize,
}

impl RowCache {
    /// A cache for `l` rows within `budget` floats (at least two full rows).
    pub fn new(l: usize, budget: usize) -> RowCache {
        RowCache {
            data: vec![Vec::new(); l],
            prev: vec![l; l + 1],
            next: vec![l; l + 1],
            free: budget.max(2 * l),
        }
    }

    fn sentinel(&self) -> usize {
        self.data.len()
    }

    fn unlink(&mut self, i: usize) {
        let (p, n) = (self.prev[i], self.next[i]);
        self.next[p] = n;
        self.prev[n] = p;
    }

    fn push_back(&mut self, i: usize) {
        let s = self.sentinel();
        let last = self.prev[s];
        self.next[last] = i;
        self.prev[i] = last;
        self.next[i] = s;
        self.prev[s] = i;
    }

    fn evict(&mut self, i: usize) {
        self.unlink(i);
        self.free += self.data[i].len();
        self.data[i] = Vec::new();
    }

    /// Row `i` with at least `len` entries, and the index from which the caller must fill
    /// it (`len` when the prefix was cached already). Marks the row most recently used.
    pub fn get(&mut self, i: usize, len: usize) -> (&mut [f32], usize) {
        let have = self.data[i].len();
        if have > 0 {
            self.unlink(i);
        }
        if have < len {
            let more = len - have;
            while self.free < more {
                let lru = self.next[self.sentinel()];
                assert!(lru != self.sentinel(), "RowCache: budget below one row");
                self.evict(lru);
            }
            self.free -= more;
            self.data[i].resize(len, 0.0);
        }
        self.push_back(i);
        (&mut self.data[i][..len], have.min(len))
    }

    /// Swaps rows `i` and `j`, and entries `i` and `j` inside every cached row (a row that
    /// holds one of the two but not the other is dropped), as the solver's index swap needs.
    pub fn swap_index(&mut self, i: usize, j: usize) {
        if i == j {
            return;
        }
        let (hi, hj) = (!self.data[i].is_empty(), !self.data[j].is_empty());
        if hi {
            self.unlink(i);
        }
        if hj {
            self.unlink(j);
        }
        self.data.swap(i, j);
        if hj {
            self.push_back(i);
        }
        if hi {
            self.push_back(j);
        }
        let (lo, hi_idx) = (i.min(j), i.max(j));
        let s = self.sentinel();
        let mut h = self.next[s];
        while h != s {
            let following = self.next[h];
            let len = self.data[h].len();
            if len > lo {
                if len > hi_idx {
                    self.data[h].swap(lo, hi_idx);
                } else {
                    self.evict(h);
                }
            }
            h = following;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evicts_least_recently_used_and_extends_prefixes() {
        let mut c = RowCache::new(4, 8); // two full rows
        let (r, start) = c.get(0, 4);
        assert_eq!(start, 0);
        r.copy_from_slice(&[0.0, 1.0, 2.0, 3.0]);
        let (r, _) = c.get(1, 2);
        r.copy_from_slice(&[10.0, 11.0]);
        // Row 0 used again: row 1 becomes the least recent.
        assert_eq!(c.get(0, 4).1, 4);
        // Extending row 1 to 4 fits (8 floats); a third row evicts row 1, not row 0.
        let (r, start) = c.get(1, 4);
        assert_eq!((start, &r[..2]), (2, &[10.0, 11.0][..]));
        assert_eq!(c.get(0, 4).1, 4);
        assert_eq!(c.get(2, 4).1, 0);
        assert_eq!(c.get(0, 4).1, 4, "row 0 was recently used and must stay");
        assert_eq!(c.get(1, 4).1, 0, "row 1 was evicted");
    }

    #[test]
    fn swap_index_permutes_rows_and_entries() {
        let mut c = RowCache::new(4, 16);
        c.get(0, 4).0.copy_from_slice(&[0.0, 1.0, 2.0, 3.0]);
        c.get(1, 2).0.copy_from_slice(&[10.0, 11.0]);
        c.get(3, 4).0.copy_from_slice(&[30.0, 31.0, 32.0, 33.0]);
        c.swap_index(1, 3);
        assert_eq!(c.get(0, 4), (&mut [0.0, 3.0, 2.0, 1.0][..], 4));
        assert_eq!(c.get(1, 4), (&mut [30.0, 33.0, 32.0, 31.0][..], 4));
        // Old row 1 (now row 3) held entry 1 but not entry 3: dropped.
        assert_eq!(c.get(3, 2).1, 0);
    }
}
