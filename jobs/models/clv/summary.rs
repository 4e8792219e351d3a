//! Grouping of per-customer RFM triples into distinct weighted rows, so that fitting cost scales
//! with the number of distinct (x, t_x, T) patterns rather than customers (Fader, Hardie & Lee
//! 2005 fit the CDNOW data this way; lifetimes calls the counts `weights`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};

use rayon::prelude::*;

/// One customer's calibration summary, all times in the model's time unit (e.g. weeks).
/// As in lifetimes, x should count repeat purchase periods (e.g. distinct days after the first),
/// so that x > 0 implies t_x > 0: rows with x > 0 and t_x = 0 make the likelihood unbounded as
/// alpha -> 0, and such fits end with `converged = false`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rfm {
    /// x: number of repeat purchases in the calibration period (integer-valued, >= 0).
    pub x: f64,
    /// t_x: time of the last purchase, measured from the first purchase (0 when x = 0).
    pub t_x: f64,
    /// T: time from the first purchase to the end of the calibration period (t_x <= T).
    pub t: f64,
}

/// A distinct (x, t_x, T) pattern and how many customers share it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SummaryRow {
    /// Repeat purchases x.
    pub x: f64,
    /// Recency t_x (model time units).
    pub t_x: f64,
    /// Age T (model time units).
    pub t: f64,
    /// Number of customers with this pattern (a positive count; any positive weight is allowed).
    pub weight: f64,
}

impl SummaryRow {
    /// The row's (x, t_x, T) without its weight.
    pub fn rfm(&self) -> Rfm {
        Rfm {
            x: self.x,
            t_x: self.t_x,
            t: self.t,
        }
    }
}

/// Distinct weighted rows plus the mapping back to the input customers.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Summary {
    /// Distinct rows sorted ascending by (x, t_x, T): deterministic for a given input multiset.
    pub rows: Vec<SummaryRow>,
    /// For each input customer, the index of its row in `rows`; none for an invalid customer.
    pub row_of_customer: RowIndex,
    /// Indices of input customers that failed [`validate_rfm`], in input order.
    pub invalid: Vec<usize>,
}

/// Each input item's row in a summary, or none: four bytes an item (a million customers' index
/// is 4 MB). Rows are numbered below `u32::MAX`; an input so large that its rows would not be
/// (more than four billion customers) leaves the items past that without a row, listed as
/// invalid.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RowIndex(Vec<u32>);

impl RowIndex {
    /// The stored value of an item without a row.
    const NONE: u32 = u32::MAX;

    /// Item `item`'s row; None if it has none or is out of range.
    pub fn get(&self, item: usize) -> Option<usize> {
        self.0
            .get(item)
            .filter(|&&r| r != Self::NONE)
            .map(|&r| r as usize)
    }

    /// Number of items.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True for an empty input.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Every item's row, in input order.
    pub fn iter(&self) -> impl Iterator<Item = Option<usize>> + '_ {
        self.0
            .iter()
            .map(|&r| (r != Self::NONE).then_some(r as usize))
    }
}

impl Summary {
    /// The distinct rows' (x, t_x, T), in row order.
    pub fn rfm_rows(&self) -> Vec<Rfm> {
        self.rows.iter().map(SummaryRow::rfm).collect()
    }
}

/// Largest x accepted (keeps the per-x precomputation of the fits small and exact in f64).
pub const MAX_FREQUENCY: f64 = 1e7;

/// Checks one RFM triple: all finite, x a non-negative integer <= [`MAX_FREQUENCY`],
/// 0 <= t_x <= T, and t_x = 0 when x = 0. Returns a description of the first problem.
pub fn validate_rfm(c: &Rfm) -> Result<(), String> {
    if !(c.x.is_finite() && c.t_x.is_finite() && c.t.is_finite()) {
        return Err(format!(
            "non-finite value (x={}, t_x={}, T={})",
            c.x, c.t_x, c.t
        ));
    }
    if c.x < 0.0 || c.x != c.x.floor() || c.x > MAX_FREQUENCY {
        return Err(format!(
            "x must be a non-negative integer <= {MAX_FREQUENCY}, got {}",
            c.x
        ));
    }
    if c.t_x < 0.0 || c.t < 0.0 {
        return Err(format!("negative time (t_x={}, T={})", c.t_x, c.t));
    }
    if c.t_x > c.t {
        return Err(format!("recency t_x={} exceeds age T={}", c.t_x, c.t));
    }
    if c.x == 0.0 && c.t_x != 0.0 {
        return Err(format!("t_x must be 0 when x = 0, got {}", c.t_x));
    }
    Ok(())
}

/// Groups customers into distinct (x, t_x, T) rows by exact f64 equality (-0.0 counts as 0.0).
/// Invalid customers (see [`validate_rfm`]) are left out and listed in `invalid`.
/// Output order is ascending (x, t_x, T), independent of input order and thread count.
pub fn summarize(customers: &[Rfm]) -> Summary {
    // Key: bit patterns of non-negative finite f64s order like the values themselves.
    let g = group_keys(customers.len(), |i| {
        let c = &customers[i];
        validate_rfm(c).ok().map(|()| {
            [
                (c.x + 0.0).to_bits(),
                (c.t_x + 0.0).to_bits(),
                (c.t + 0.0).to_bits(),
            ]
        })
    });
    let rows = g
        .keys
        .par_iter()
        .zip(&g.counts)
        .map(|(k, &c)| SummaryRow {
            x: f64::from_bits(k[0]),
            t_x: f64::from_bits(k[1]),
            t: f64::from_bits(k[2]),
            weight: c as f64,
        })
        .collect();
    let invalid = (0..customers.len())
        .into_par_iter()
        .filter(|&i| g.group_of_item.get(i).is_none())
        .collect();
    Summary {
        rows,
        row_of_customer: g.group_of_item,
        invalid,
    }
}

/// Like [`summarize`] but from three equally long columns; Err if the lengths differ.
pub fn summarize_columns(x: &[f64], t_x: &[f64], t: &[f64]) -> Result<Summary, String> {
    if x.len() != t_x.len() || x.len() != t.len() {
        return Err(format!(
            "column lengths differ: x {}, t_x {}, T {}",
            x.len(),
            t_x.len(),
            t.len()
        ));
    }
    let c: Vec<Rfm> = (0..x.len())
        .map(|i| Rfm {
            x: x[i],
            t_x: t_x[i],
            t: t[i],
        })
        .collect();
    Ok(summarize(&c))
}

/// A distinct (x, mean repeat spend) pattern for the Gamma-Gamma model, with its count.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SpendRow {
    /// Number of repeat purchases x (>= 1, integer-valued).
    pub x: f64,
    /// Mean spend per repeat purchase (> 0).
    pub m: f64,
    /// Number of customers with this pattern.
    pub weight: f64,
}

/// Weighted spend rows plus the mapping back to the input customers.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SpendSummary {
    /// Distinct rows sorted ascending by (x, m); or, when the (x, m) pairs of a large input are
    /// nearly all distinct (see [`summarize_spend`]), one row of weight 1 per repeat customer in
    /// input order.
    pub rows: Vec<SpendRow>,
    /// For each input customer, its row; none if it has no repeat purchase or is invalid.
    pub row_of_customer: RowIndex,
    /// Customers left out because x = 0 (one-time buyers: no repeat spend to learn from).
    pub one_time_buyers: usize,
    /// Indices of customers with invalid values (non-finite, negative or fractional x,
    /// m <= 0 with x > 0).
    pub invalid: Vec<usize>,
}

/// Groups (x, m) pairs of repeat customers (x > 0, m > 0) into distinct weighted rows, for
/// [`super::gamma_gamma::fit_gamma_gamma`]. Err if the lengths differ.
///
/// A mean spend is a ratio of currency amounts, so on real data nearly every repeat customer has
/// its own (x, m) (471,172 distinct pairs of 500,000 in the CLV benchmark): a sort then costs
/// more than the few likelihood passes it would spare. So when the first
/// [`SPEND_PROBE`] repeat customers of an input larger than one grouping chunk are more than
/// half distinct pairs, every repeat customer is its own row (weight 1, input order). The fit is
/// the same function of the data either way; only the order of its floating-point sums differs.
pub fn summarize_spend(x: &[f64], m: &[f64]) -> Result<SpendSummary, String> {
    if x.len() != m.len() {
        return Err(format!(
            "column lengths differ: x {}, m {}",
            x.len(),
            m.len()
        ));
    }
    let n = x.len();
    let mut out = SpendSummary::default();
    let valid = |i: usize| {
        let (xi, mi) = (x[i], m[i]);
        xi.is_finite() && mi.is_finite() && xi >= 0.0 && xi == xi.floor() && xi <= MAX_FREQUENCY
    };
    let key =
        |i: usize| (valid(i) && x[i] > 0.0 && m[i] > 0.0).then(|| [x[i].to_bits(), m[i].to_bits()]);
    if n > GROUP_CHUNK && u32::try_from(n).is_ok() && mostly_distinct(n, &key) {
        return Ok(spend_ungrouped(x, m, valid));
    }
    let g = group_keys(n, key);
    // items without a row: one-time buyers and invalid values (in input order)
    let (one_time, invalid): (Vec<usize>, Vec<usize>) = (0..n)
        .into_par_iter()
        .filter(|&i| g.group_of_item.get(i).is_none())
        .partition(|&i| valid(i) && x[i] == 0.0);
    out.one_time_buyers = one_time.len();
    out.invalid = invalid;
    out.rows = g
        .keys
        .iter()
        .zip(&g.counts)
        .map(|(k, &c)| SpendRow {
            x: f64::from_bits(k[0]),
            m: f64::from_bits(k[1]),
            weight: c as f64,
        })
        .collect();
    out.row_of_customer = g.group_of_item;
    Ok(out)
}

/// Repeat customers probed by [`summarize_spend`] to decide whether grouping pays.
pub const SPEND_PROBE: usize = 8192;

/// True when more than half of the first [`SPEND_PROBE`] keyed items have distinct keys.
fn mostly_distinct<const K: usize, F>(n: usize, key: &F) -> bool
where
    F: Fn(usize) -> Option<[u64; K]>,
{
    let mut seen: std::collections::HashSet<[u64; K], foldhash::fast::FixedState> =
        Default::default();
    let mut probed = 0usize;
    for k in (0..n).filter_map(key).take(SPEND_PROBE) {
        seen.insert(k);
        probed += 1;
    }
    probed > 0 && seen.len() * 2 > probed
}

/// [`summarize_spend`] without grouping: every repeat customer is its own row of weight 1, in
/// input order; one pass over the customers in parallel chunks (fewer than `u32::MAX` of them).
fn spend_ungrouped<F>(x: &[f64], m: &[f64], valid: F) -> SpendSummary
where
    F: Fn(usize) -> bool + Sync,
{
    let n = x.len();
    let mut row_of_customer: Vec<u32> = vec![RowIndex::NONE; n];
    // per chunk: its rows (the slots hold indices from the chunk's first row), one-time buyers
    // and invalid customers
    let parts: Vec<(Vec<SpendRow>, usize, Vec<usize>)> = row_of_customer
        .par_chunks_mut(GROUP_CHUNK)
        .enumerate()
        .map(|(ci, out)| {
            let (mut rows, mut one_time, mut invalid) = (Vec::with_capacity(out.len()), 0, vec![]);
            for (j, slot) in out.iter_mut().enumerate() {
                let i = ci * GROUP_CHUNK + j;
                let ok = valid(i);
                if ok && x[i] > 0.0 && m[i] > 0.0 {
                    *slot = rows.len() as u32;
                    rows.push(SpendRow {
                        x: x[i],
                        m: m[i],
                        weight: 1.0,
                    });
                } else if ok && x[i] == 0.0 {
                    one_time += 1;
                } else {
                    invalid.push(i);
                }
            }
            (rows, one_time, invalid)
        })
        .collect();
    let mut first = Vec::with_capacity(parts.len());
    let mut next = 0u32;
    for p in &parts {
        first.push(next);
        next += p.0.len() as u32;
    }
    row_of_customer
        .par_chunks_mut(GROUP_CHUNK)
        .zip(first)
        .for_each(|(out, f)| {
            out.iter_mut()
                .filter(|r| **r != RowIndex::NONE)
                .for_each(|r| *r += f)
        });
    let mut out = SpendSummary {
        rows: Vec::with_capacity(next as usize),
        row_of_customer: RowIndex(row_of_customer),
        one_time_buyers: 0,
        invalid: Vec::new(),
    };
    for (rows, one_time, invalid) in parts {
        out.rows.extend(rows);
        out.one_time_buyers += one_time;
        out.invalid.extend(invalid);
    }
    out
}

/// Distinct keys in ascending order, how many items each has, and each item's key index
/// (none for an item without a key).
struct Grouped<const K: usize> {
    keys: Vec<[u64; K]>,
    counts: Vec<u64>,
    group_of_item: RowIndex,
}

/// Items per task when grouping (fixed, so results never depend on the thread count).
const GROUP_CHUNK: usize = 1 << 16;

/// Groups equal keys: the distinct keys sorted ascending, their counts, and each item's group.
///
/// A sort of (key, item) pairs compares whole keys 20 million times at a million items, which
/// was most of the CLV fit's time. Here each key column is first dictionary-encoded in parallel
/// chunks (columns of a CRM summary have few distinct values: x is a count, t_x and T are whole
/// days), every key becomes one 32-bit integer whose order is the keys' order (the mixed-radix
/// number of its columns' ranks), and those integers are sorted with their items. When the codes
/// do not fit 32 bits (many distinct values in every column), or the input is small, the keys
/// themselves are sorted. Both give the same result. (A bitmap of the possible codes instead of
/// the sort was tried: a CRM summary's codes are sparse, 166 M possible for 386 k present at a
/// million customers, so scanning the bitmap cost more than the sort.)
fn group_keys<const K: usize, F>(n: usize, key: F) -> Grouped<K>
where
    F: Fn(usize) -> Option<[u64; K]> + Sync,
{
    if n <= GROUP_CHUNK || u32::try_from(n).is_err() {
        return group_by_sort(n, key);
    }
    // 1. Per chunk and column: the chunk's distinct values and each item's local value index.
    // A column with many distinct values (a mean spend) makes the codes no cheaper than the
    // keys: the chunk gives up, and the keys are sorted as they are.
    type Dict = HashMap<u64, u16, foldhash::fast::FixedState>;
    const MAX_LOCAL_VALUES: usize = GROUP_CHUNK / 8;
    // A quick look at the first items spares the parallel attempt on such a column.
    let mut probe: [Dict; K] = std::array::from_fn(|_| Dict::default());
    for k in (0..n).filter_map(&key).take(MAX_LOCAL_VALUES) {
        for c in 0..K {
            probe[c].insert(k[c], 0);
        }
    }
    if probe.iter().any(|p| p.len() > MAX_LOCAL_VALUES / 2) {
        return group_by_sort(n, key);
    }
    // per chunk: each column's distinct values, and each item's index into them
    // (local indices fit u16: a chunk gives up past MAX_LOCAL_VALUES < u16::MAX values)
    type Local<const K: usize> = ([Vec<u64>; K], Vec<[u16; K]>);
    let locals: Option<Vec<Local<K>>> = (0..n.div_ceil(GROUP_CHUNK))
        .into_par_iter()
        .map(|ci| {
            let mut dicts: [Dict; K] = std::array::from_fn(|_| Dict::default());
            let mut values: [Vec<u64>; K] = std::array::from_fn(|_| Vec::new());
            let items = ci * GROUP_CHUNK..((ci + 1) * GROUP_CHUNK).min(n);
            let mut ids = Vec::with_capacity(items.len());
            for i in items {
                let Some(k) = key(i) else {
                    ids.push([u16::MAX; K]);
                    continue;
                };
                let mut id = [0u16; K];
                for c in 0..K {
                    let next = values[c].len() as u16;
                    id[c] = *dicts[c].entry(k[c]).or_insert_with(|| {
                        values[c].push(k[c]);
                        next
                    });
                    if values[c].len() > MAX_LOCAL_VALUES {
                        return None;
                    }
                }
                ids.push(id);
            }
            Some((values, ids))
        })
        .collect();
    let Some(locals) = locals else {
        return group_by_sort(n, key);
    };
    // 2. Per column: all distinct values in order; the key integer's radix per column.
    let sorted: [Vec<u64>; K] = std::array::from_fn(|c| {
        let mut v: Vec<u64> = locals.iter().flat_map(|l| l.0[c].iter().copied()).collect();
        v.sort_unstable();
        v.dedup();
        v
    });
    let mut radix = [1u64; K];
    let mut span = 1u64;
    for c in (0..K).rev() {
        radix[c] = span;
        match span.checked_mul(sorted[c].len() as u64) {
            Some(s) => span = s,
            None => return group_by_sort(n, key),
        }
    }
    // codes are below span < NO_CODE
    if span >= u64::from(NO_CODE) {
        return group_by_sort(n, key);
    }
    // 3. Per chunk: local value index -> global rank, and the items' codes.
    let mut codes: Vec<u32> = vec![NO_CODE; n];
    codes
        .par_chunks_mut(GROUP_CHUNK)
        .zip(locals.par_iter())
        .for_each(|(out, (values, ids))| {
            let rank: [Vec<u64>; K] = std::array::from_fn(|c| {
                values[c]
                    .iter()
                    .map(|v| sorted[c].binary_search(v).expect("value is in its column") as u64)
                    .collect()
            });
            for (slot, id) in out.iter_mut().zip(ids) {
                if id[0] != u16::MAX {
                    *slot = (0..K)
                        .map(|c| rank[c][id[c] as usize] * radix[c])
                        .sum::<u64>() as u32;
                }
            }
        });
    drop(locals);
    // 4. The distinct codes in order, their counts, and each item's group.
    let (distinct, counts, groups) = codes_by_sort(codes, span as u32);
    // a code decodes to its key
    let keys = distinct
        .par_iter()
        .map(|&code| {
            let code = u64::from(code);
            std::array::from_fn(|c| {
                sorted[c][((code / radix[c]) % sorted[c].len() as u64) as usize]
            })
        })
        .collect();
    Grouped {
        keys,
        counts,
        group_of_item: RowIndex(groups),
    }
}

/// An item without a grouping code, and a group without a row: the item's entry in the
/// [`RowIndex`] the groups become.
const NO_CODE: u32 = RowIndex::NONE;

/// Codes below this are counted in a table instead of sorted (see [`codes_by_sort`]).
const DENSE_CODES: u32 = 1 << 13;

/// The codes present (ascending), their counts, and each item's group ([`NO_CODE`] stays for an
/// item without a code). Codes below `dense` (at most [`DENSE_CODES`]) are counted in a table:
/// the lowest codes are the customers without repeat purchases (x = 0 forces t_x = 0, so their
/// code is T's rank alone), about half of a CRM base. The other codes are grouped by sorting
/// (code, item) pairs. Both give groups in code order.
fn codes_by_sort(codes: Vec<u32>, dense: u32) -> (Vec<u32>, Vec<u64>, Vec<u32>) {
    let dense = dense.min(DENSE_CODES);
    // 1. The dense codes: per chunk counts, added in chunk order; their groups are the codes
    // present, numbered in order.
    let tables: Vec<Vec<u32>> = codes
        .par_chunks(GROUP_CHUNK)
        .map(|chunk| {
            let mut t = vec![0u32; dense as usize];
            for &c in chunk {
                if c < dense {
                    t[c as usize] += 1;
                }
            }
            t
        })
        .collect();
    let mut dense_count = vec![0u64; dense as usize];
    for t in &tables {
        for (a, &b) in dense_count.iter_mut().zip(t) {
            *a += u64::from(b);
        }
    }
    drop(tables);
    let mut dense_group = vec![NO_CODE; dense as usize];
    let (mut distinct, mut counts) = (Vec::new(), Vec::new());
    for (code, &c) in dense_count.iter().enumerate() {
        if c > 0 {
            dense_group[code] = distinct.len() as u32;
            distinct.push(code as u32);
            counts.push(c);
        }
    }
    let dense_groups = distinct.len();
    // 2. The other codes: a code and its item share one u64 (code high, item low), 8 bytes an
    // item to sort.
    let mut coded: Vec<u64> = codes
        .par_iter()
        .enumerate()
        .filter(|&(_, &c)| c >= dense && c != NO_CODE)
        .map(|(i, &c)| u64::from(c) << 32 | i as u64)
        .collect();
    coded.par_sort_unstable();
    let valid = coded.len();
    // Runs of equal codes are the groups, in code order. Each chunk of the sorted codes counts
    // the runs starting in it, so that the chunks can number their groups and record each
    // item's group in parallel (every item is written once).
    let starts_run = |j: usize| j == 0 || coded[j] >> 32 != coded[j - 1] >> 32;
    let sorted_chunks = valid.div_ceil(GROUP_CHUNK);
    let sorted_range = |ci: usize| ci * GROUP_CHUNK..((ci + 1) * GROUP_CHUNK).min(valid);
    let runs: Vec<usize> = (0..sorted_chunks)
        .into_par_iter()
        .map(|ci| sorted_range(ci).filter(|&j| starts_run(j)).count())
        .collect();
    let mut base = Vec::with_capacity(sorted_chunks);
    let mut groups = dense_groups;
    for r in &runs {
        base.push(groups);
        groups += r;
    }
    let group_of_item: Vec<AtomicU32> = codes
        .par_iter()
        .map(|&c| {
            AtomicU32::new(if c < dense {
                dense_group[c as usize]
            } else {
                NO_CODE
            })
        })
        .collect();
    let per_chunk: Vec<(Vec<u32>, Vec<usize>)> = (0..sorted_chunks)
        .into_par_iter()
        .map(|ci| {
            let (mut distinct, mut first) = (Vec::new(), Vec::new());
            // runs started before this item; its group is the last of them
            let mut started = base[ci];
            for j in sorted_range(ci) {
                let (code, item) = ((coded[j] >> 32) as u32, coded[j] & u64::from(u32::MAX));
                if starts_run(j) {
                    started += 1;
                    distinct.push(code);
                    first.push(j);
                }
                group_of_item[item as usize].store((started - 1) as u32, Ordering::Relaxed);
            }
            (distinct, first)
        })
        .collect();
    distinct.reserve(groups - dense_groups);
    counts.reserve(groups - dense_groups);
    let mut first = Vec::with_capacity(groups - dense_groups + 1);
    for (d, f) in per_chunk {
        distinct.extend(d);
        first.extend(f);
    }
    first.push(valid);
    counts.extend(first.windows(2).map(|w| (w[1] - w[0]) as u64));
    let groups = group_of_item
        .into_iter()
        .map(AtomicU32::into_inner)
        .collect();
    (distinct, counts, groups)
}

/// [`group_keys`] by sorting (key, item) pairs: for small inputs and wide keys.
fn group_by_sort<const K: usize, F>(n: usize, key: F) -> Grouped<K>
where
    F: Fn(usize) -> Option<[u64; K]> + Sync,
{
    let mut keyed: Vec<([u64; K], usize)> = if n > GROUP_CHUNK {
        (0..n)
            .into_par_iter()
            .filter_map(|i| Some((key(i)?, i)))
            .collect()
    } else {
        (0..n).filter_map(|i| Some((key(i)?, i))).collect()
    };
    if keyed.len() > 1 << 15 {
        keyed.par_sort_unstable();
    } else {
        keyed.sort_unstable();
    }
    let mut out = Grouped {
        keys: Vec::new(),
        counts: Vec::new(),
        group_of_item: RowIndex(vec![RowIndex::NONE; n]),
    };
    for (k, item) in keyed {
        if out.keys.last() != Some(&k) {
            if out.keys.len() >= RowIndex::NONE as usize {
                // rows are numbered below u32::MAX: the items past that have none
                continue;
            }
            out.keys.push(k);
            out.counts.push(0);
        }
        *out.counts.last_mut().expect("pushed") += 1;
        out.group_of_item.0[item] = (out.keys.len() - 1) as u32;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_exact_duplicates_deterministically() {
        let c = vec![
            Rfm {
                x: 2.0,
                t_x: 3.0,
                t: 10.0,
            },
            Rfm {
                x: 0.0,
                t_x: 0.0,
                t: 10.0,
            },
            Rfm {
                x: 2.0,
                t_x: 3.0,
                t: 10.0,
            },
            Rfm {
                x: 0.0,
                t_x: -0.0,
                t: 10.0,
            },
            Rfm {
                x: 1.0,
                t_x: 5.0,
                t: 4.0,
            }, // invalid: t_x > T
            Rfm {
                x: f64::NAN,
                t_x: 0.0,
                t: 1.0,
            }, // invalid
            Rfm {
                x: 1.5,
                t_x: 1.0,
                t: 4.0,
            }, // invalid: fractional x
            Rfm {
                x: 2.0,
                t_x: 3.0,
                t: 10.000000000000002,
            },
        ];
        let s = summarize(&c);
        assert_eq!(s.rows.len(), 3);
        assert_eq!(
            s.rows[0],
            SummaryRow {
                x: 0.0,
                t_x: 0.0,
                t: 10.0,
                weight: 2.0
            }
        );
        assert_eq!(
            s.rows[1],
            SummaryRow {
                x: 2.0,
                t_x: 3.0,
                t: 10.0,
                weight: 2.0
            }
        );
        assert_eq!(s.rows[2].weight, 1.0);
        assert_eq!(s.invalid, vec![4, 5, 6]);
        assert_eq!(
            s.row_of_customer.iter().collect::<Vec<_>>(),
            vec![
                Some(1),
                Some(0),
                Some(1),
                Some(0),
                None,
                None,
                None,
                Some(2)
            ]
        );
        let mut rev = c.clone();
        rev.reverse();
        assert_eq!(summarize(&rev).rows, s.rows);
        assert!(summarize(&[]).rows.is_empty());
        assert!(summarize_columns(&[1.0], &[], &[]).is_err());
    }

    /// The dictionary-encoded grouping (inputs above one chunk) gives exactly the sort's result,
    /// with few distinct values per column (CRM summaries) and with almost all keys distinct.
    #[test]
    fn grouping_by_codes_equals_grouping_by_sort() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let n = 3 * GROUP_CHUNK + 123;
        let few: Vec<[u64; 3]> = (0..n)
            .map(|_| {
                let t = (next() % 1095) as f64 / 7.0;
                let x = (next() % 9) as f64;
                let tx = if x == 0.0 {
                    0.0
                } else {
                    t * (next() % 100) as f64 / 100.0
                };
                [x.to_bits(), tx.to_bits(), t.to_bits()]
            })
            .collect();
        let many: Vec<[u64; 2]> = (0..n)
            .map(|_| {
                [
                    ((next() % 5) as f64).to_bits(),
                    (next() as f64 / 3.0).to_bits(),
                ]
            })
            .collect();
        fn same<const K: usize>(keys: &[[u64; K]]) {
            // every 97th item has no key
            let key = |i: usize| (i % 97 != 5).then(|| keys[i]);
            let (a, b) = (group_keys(keys.len(), key), group_by_sort(keys.len(), key));
            assert!(a.keys.len() > 1 && a.keys.windows(2).all(|w| w[0] < w[1]));
            assert_eq!(a.keys, b.keys);
            assert_eq!(a.counts, b.counts);
            assert_eq!(a.group_of_item, b.group_of_item);
            let with_key = (0..keys.len()).filter(|i| i % 97 != 5).count();
            assert_eq!(a.counts.iter().sum::<u64>(), with_key as u64);
            assert_eq!(a.group_of_item.get(5), None);
        }
        same(&few);
        same(&many);
        // and through the public functions, with invalid customers in between
        let mut rfm: Vec<Rfm> = few
            .iter()
            .map(|k| Rfm {
                x: f64::from_bits(k[0]),
                t_x: f64::from_bits(k[1]),
                t: f64::from_bits(k[2]),
            })
            .collect();
        rfm[17].t = f64::NAN;
        let s = summarize(&rfm);
        assert_eq!(s.invalid, vec![17]);
        assert_eq!(s.row_of_customer.get(17), None);
        for (c, r) in rfm.iter().zip(s.row_of_customer.iter()).skip(18).take(1000) {
            assert_eq!(s.rows[r.expect("valid")].rfm(), *c);
        }
        let mut rev = rfm.clone();
        rev.reverse();
        assert_eq!(summarize(&rev).rows, s.rows);
    }

    /// Large inputs whose (x, m) pairs are nearly all distinct skip the grouping: one row per
    /// repeat customer, the same bookkeeping, and the same Gamma-Gamma fit as the distinct rows.
    #[test]
    fn distinct_spend_is_not_grouped_and_fits_the_same() {
        let n = 2 * GROUP_CHUNK + 77;
        let x: Vec<f64> = (0..n).map(|i| (i % 7) as f64).collect();
        // mean spend of x purchases by the Gamma-Gamma model (p 6, q 4, v 15)
        use rand::SeedableRng;
        use rand_distr::{Distribution, Gamma};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        let nu = Gamma::new(4.0, 1.0 / 15.0).expect("valid");
        let mut m: Vec<f64> = x
            .iter()
            .map(|&xi| {
                let rate = nu.sample(&mut rng);
                let k = 6.0 * xi.max(1.0);
                Gamma::new(k, 1.0 / (rate * xi.max(1.0)))
                    .expect("valid")
                    .sample(&mut rng)
            })
            .collect();
        for i in (50..n).step_by(50) {
            m[i] = m[i - 7]; // the same (x, m) as another customer's
        }
        m[9] = -1.0; // x = 2, m <= 0: invalid
        let s = summarize_spend(&x, &m).expect("same length");
        let repeat = (0..n).filter(|&i| x[i] > 0.0 && m[i] > 0.0).count();
        assert_eq!(s.rows.len(), repeat);
        assert!(s.rows.iter().all(|r| r.weight == 1.0));
        assert_eq!(s.one_time_buyers, (0..n).filter(|&i| x[i] == 0.0).count());
        assert_eq!(s.invalid, vec![9]);
        for i in 0..n {
            match s.row_of_customer.get(i) {
                Some(r) => assert_eq!((s.rows[r].x, s.rows[r].m), (x[i], m[i])),
                None => assert!(x[i] == 0.0 || i == 9),
            }
        }
        let g = group_by_sort(n, |i| {
            (x[i] > 0.0 && m[i] > 0.0).then(|| [x[i].to_bits(), m[i].to_bits()])
        });
        let grouped: Vec<SpendRow> = g
            .keys
            .iter()
            .zip(&g.counts)
            .map(|(k, &c)| SpendRow {
                x: f64::from_bits(k[0]),
                m: f64::from_bits(k[1]),
                weight: c as f64,
            })
            .collect();
        assert!(
            grouped.len() < s.rows.len(),
            "the test data have some duplicates"
        );
        let opts = super::super::FitOptions::default();
        let (a, b) = (
            super::super::fit_gamma_gamma(&s.rows, &opts),
            super::super::fit_gamma_gamma(&grouped, &opts),
        );
        assert!(a.converged && b.converged);
        for (u, v) in [
            (a.params.p, b.params.p),
            (a.params.q, b.params.q),
            (a.params.v, b.params.v),
        ] {
            assert!((u - v).abs() <= 1e-8 * v.abs(), "{u} vs {v}");
        }
        assert!((a.log_likelihood - b.log_likelihood).abs() <= 1e-9 * b.log_likelihood.abs());
        // few distinct pairs: grouped into distinct rows, ascending
        let few: Vec<f64> = (0..n).map(|i| 10.0 + (i % 3) as f64).collect();
        let s = summarize_spend(&x, &few).expect("same length");
        assert_eq!(s.rows.len(), 6 * 3);
        assert!(
            s.rows
                .windows(2)
                .all(|w| (w[0].x, w[0].m) < (w[1].x, w[1].m))
        );
    }

    #[test]
    fn spend_summary() {
        let s = summarize_spend(
            &[0.0, 2.0, 2.0, 1.0, 3.0, -1.0],
            &[0.0, 10.0, 10.0, 0.0, 5.0, 1.0],
        )
        .expect("ok");
        assert_eq!(s.one_time_buyers, 1);
        assert_eq!(s.invalid, vec![3, 5]);
        assert_eq!(s.rows.len(), 2);
        assert_eq!(
            s.rows[0],
            SpendRow {
                x: 2.0,
                m: 10.0,
                weight: 2.0
            }
        );
        assert_eq!(s.row_of_customer.get(4), Some(1));
    }
}
