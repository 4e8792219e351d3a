//! Dictionary encoding of one numeric column of the fits' rows (distinct x, t_x or T values and
//! each row's index into them), and per-chunk sums, in parallel for large inputs. Chunks are of a
//! fixed size and combined in order, so results never depend on the number of threads.

use std::collections::HashMap;

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
    /// Each chunk numbers its distinct values in first-seen order (a hash lookup a row, unless
    /// it repeats the previous row's value); the
    /// chunks' values are then sorted into the dictionary, and each chunk maps its local numbers
    /// to dictionary indices (a binary search per distinct value of the chunk, not per row).
    pub(super) fn new<F>(n: usize, value: F) -> Dictionary
    where
        F: Fn(usize) -> f64 + Sync,
    {
        let bits = |i: usize| (value(i) + 0.0).to_bits();
        // per chunk: its distinct values (first-seen order) and each row's local number
        let locals: Vec<(Vec<u64>, Vec<u32>)> = per_chunk(n, |rows| {
            let mut seen: HashMap<u64, u32, foldhash::fast::FixedState> = HashMap::default();
            let mut values = Vec::new();
            // the previous row's value and number: sorted or clustered columns (x and t_x of
            // summary rows) mostly repeat it, and skip the hash
            let mut last: Option<(u64, u32)> = None;
            let ids = rows
                .map(|i| {
                    let b = bits(i);
                    match last {
                        Some((v, id)) if v == b => id,
                        _ => {
                            let id = *seen.entry(b).or_insert_with(|| {
                                values.push(b);
                                (values.len() - 1) as u32
                            });
                            last = Some((b, id));
                            id
                        }
                    }
                })
                .collect();
            (values, ids)
        });
        let mut sorted: Vec<u64> = locals.iter().flat_map(|l| l.0.iter().copied()).collect();
        sorted.sort_unstable();
        sorted.dedup();
        let mut index = vec![0u32; n];
        let fill = |(out, (values, ids)): (&mut [u32], &(Vec<u64>, Vec<u32>))| {
            let rank: Vec<u32> = values
                .iter()
                .map(|v| {
                    sorted
                        .binary_search(v)
                        .expect("every value is in the dictionary") as u32
                })
                .collect();
            for (o, &id) in out.iter_mut().zip(ids) {
                *o = rank[id as usize];
            }
        };
        if n >= PAR_MIN_ROWS {
            index.par_chunks_mut(CHUNK).zip(&locals).for_each(fill);
        } else {
            index.chunks_mut(CHUNK).zip(&locals).for_each(fill);
        }
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
