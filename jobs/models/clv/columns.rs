//! Dictionary encoding of one numeric column of the fits' rows (distinct x, t_x or T values and
//! each row's index into them), and per-chunk sums, in parallel for large inputs. Chunks are of a
//! fixed size and combined in order, so results never depend on the number of threads.

use std::collections::HashSet;

use rayon::prelude::*;

/// Rows per task.
pub(super) const CHUNK: usize = 8192;
/// Below this many rows everything runs on the calling thread.
pub(super) const PAR_MIN_ROWS: usize = 4 * CHUNK;

/// A column as its distinct values, ascending, and each row's index into them. Values must be
/// finite and non-negative (the callers validate first), so their bit patterns (with -0.0 read
/// as 0.0) order like the values.
#[derive(Default)]
pub(super) struct Dictionary {
    pub(super) values: Vec<f64>,
    pub(super) index: Vec<u32>,
}

impl Dictionary {
    pub(super) fn new<F>(n: usize, value: F) -> Dictionary
    where
        F: Fn(usize) -> f64 + Sync,
    {
        let bits = |i: usize| (value(i) + 0.0).to_bits();
        let local = |c: usize| -> Vec<u64> {
            let set: HashSet<u64, foldhash::fast::FixedState> = chunk(c, n).map(bits).collect();
            set.into_iter().collect()
        };
        let chunks = n.div_ceil(CHUNK);
        let mut sorted: Vec<u64> = if n >= PAR_MIN_ROWS {
            (0..chunks).into_par_iter().flat_map_iter(local).collect()
        } else {
            (0..chunks).flat_map(local).collect()
        };
        sorted.sort_unstable();
        sorted.dedup();
        let find = |i: usize| {
            sorted
                .binary_search(&bits(i))
                .expect("every value is in the dictionary") as u32
        };
        let index = if n >= PAR_MIN_ROWS {
            (0..n).into_par_iter().map(find).collect()
        } else {
            (0..n).map(find).collect()
        };
        Dictionary {
            values: sorted.into_iter().map(f64::from_bits).collect(),
            index,
        }
    }
}

/// The rows of chunk `c` of `n`.
pub(super) fn chunk(c: usize, n: usize) -> std::ops::Range<usize> {
    c * CHUNK..((c + 1) * CHUNK).min(n)
}

/// `f` of every chunk of `n` rows, in chunk order (in parallel for large inputs).
pub(super) fn per_chunk<T, F>(n: usize, f: F) -> Vec<T>
where
    T: Send,
    F: Fn(std::ops::Range<usize>) -> T + Sync,
{
    let chunks = n.div_ceil(CHUNK);
    if n >= PAR_MIN_ROWS {
        (0..chunks)
            .into_par_iter()
            .map(|c| f(chunk(c, n)))
            .collect()
    } else {
        (0..chunks).map(|c| f(chunk(c, n))).collect()
    }
}

/// The first `Some` of `f` over rows 0..n, in row order (in parallel for large inputs).
pub(super) fn first_error<F>(n: usize, f: F) -> Option<String>
where
    F: Fn(usize) -> Option<String> + Sync,
{
    if n >= PAR_MIN_ROWS {
        (0..n).into_par_iter().find_map_first(&f)
    } else {
        (0..n).find_map(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dictionary_is_sorted_and_independent_of_the_path() {
        let v: Vec<f64> = (0..100_000)
            .map(|i| ((i * 7919) % 1013) as f64 / 7.0)
            .collect();
        let d = Dictionary::new(v.len(), |i| v[i]);
        assert_eq!(d.values.len(), 1013);
        assert!(d.values.windows(2).all(|w| w[0] < w[1]));
        for (i, &x) in v.iter().enumerate() {
            assert_eq!(d.values[d.index[i] as usize], x);
        }
        let small = Dictionary::new(1000, |i| v[i]);
        for (i, &x) in v.iter().enumerate().take(1000) {
            assert_eq!(small.values[small.index[i] as usize], x);
        }
        let z = Dictionary::new(2, |i| if i == 0 { -0.0 } else { 0.0 });
        assert_eq!((z.values.len(), z.index.clone()), (1, vec![0, 0]));
    }
}
