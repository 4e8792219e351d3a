//! Dictionary encoding of one numeric column of the fits' rows (distinct x, t_x or T values and
//! each row's index into them), and per-chunk sums, in parallel for large inputs. Chunks are of a
//! fixed size and combined in order, so results never depend on the number of threads.

use std::collections::HashMap;

use rayon::prelude::*;

/// Rows per task.
pub(super) const CHUNK: usize = 8192;
/// Below this many rows everything runs on the calling thread.
pub(super) const PAR_MIN_ROWS: usize = 2 * CHUNK;

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

/// Largest value counted in a [`DenseWeights`] table.
pub(super) const DENSE_MAX: f64 = 4096.0;

/// One chunk's total weight per value of a column of small non-negative integers (the repeat
/// purchases x: index = value), or None once a value exceeds [`DENSE_MAX`] (then
/// [`weighted_values`] falls back to a [`Dictionary`]).
pub(super) struct DenseWeights(Option<Vec<f64>>);

impl DenseWeights {
    pub(super) fn new() -> DenseWeights {
        DenseWeights(Some(Vec::new()))
    }

    /// Adds `weight` to the integer `value` (validated: a non-negative integer).
    pub(super) fn add(&mut self, value: f64, weight: f64) {
        let Some(t) = self.0.as_mut() else { return };
        if value > DENSE_MAX {
            self.0 = None;
            return;
        }
        let j = value as usize;
        if t.len() <= j {
            t.resize(j + 1, 0.0);
        }
        t[j] += weight;
    }
}

/// The distinct values of a column of non-negative integers (ascending), the total weight of
/// each and each row's index into them, from the chunks' [`DenseWeights`] (added in chunk order)
/// when every chunk kept its table, else from a [`Dictionary`]. Weights must be positive (a
/// value occurs iff its weight is positive).
pub(super) fn weighted_values<V, W>(
    n: usize,
    value: V,
    weight: W,
    tables: Vec<DenseWeights>,
) -> (Vec<f64>, Vec<f64>, Vec<u32>)
where
    V: Fn(usize) -> f64 + Sync,
    W: Fn(usize) -> f64 + Sync,
{
    if let Some(tables) = tables.into_iter().map(|t| t.0).collect::<Option<Vec<_>>>() {
        let mut total = vec![0.0; tables.iter().map(Vec::len).max().unwrap_or(0)];
        for t in &tables {
            for (a, b) in total.iter_mut().zip(t) {
                *a += b;
            }
        }
        let mut rank = vec![u32::MAX; total.len()];
        let (mut values, mut weights) = (Vec::new(), Vec::new());
        for (j, &w) in total.iter().enumerate() {
            if w > 0.0 {
                rank[j] = values.len() as u32;
                values.push(j as f64);
                weights.push(w);
            }
        }
        let index = if n >= PAR_MIN_ROWS {
            (0..n)
                .into_par_iter()
                .map(|i| rank[value(i) as usize])
                .collect()
        } else {
            (0..n).map(|i| rank[value(i) as usize]).collect()
        };
        return (values, weights, index);
    }
    let d = Dictionary::new(n, &value);
    let parts = per_chunk(n, |range| {
        let mut acc = vec![0.0; d.values.len()];
        for i in range {
            acc[d.index[i] as usize] += weight(i);
        }
        acc
    });
    let mut weights = vec![0.0; d.values.len()];
    for a in parts {
        for (t, v) in weights.iter_mut().zip(a) {
            *t += v;
        }
    }
    (d.values, weights, d.index)
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

    #[test]
    fn weighted_values_agree_with_and_without_the_dense_tables() {
        let n: usize = 50_000;
        let x: Vec<f64> = (0..n).map(|i| ((i * 7919) % 97) as f64).collect();
        let w: Vec<f64> = (0..n).map(|i| 1.0 + (i % 3) as f64).collect();
        let tables = |cap: f64| -> Vec<DenseWeights> {
            (0..n.div_ceil(CHUNK))
                .map(|c| {
                    let mut t = DenseWeights::new();
                    for i in chunk(c, n) {
                        // a value beyond the cap stands for one beyond DENSE_MAX
                        t.add(if x[i] > cap { DENSE_MAX + 1.0 } else { x[i] }, w[i]);
                    }
                    t
                })
                .collect()
        };
        let dense = weighted_values(n, |i| x[i], |i| w[i], tables(f64::INFINITY));
        let sparse = weighted_values(n, |i| x[i], |i| w[i], tables(50.0));
        assert_eq!(dense, sparse);
        assert_eq!(dense.0, (0..97).map(f64::from).collect::<Vec<_>>());
        assert_eq!(dense.1.iter().sum::<f64>(), w.iter().sum::<f64>());
        for (&j, &v) in dense.2.iter().zip(&x) {
            assert_eq!(dense.0[j as usize], v);
        }
        let z = Dictionary::new(2, |i| if i == 0 { -0.0 } else { 0.0 });
        assert_eq!((z.values.len(), z.index.clone()), (1, vec![0, 0]));
    }
}
