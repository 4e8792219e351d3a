//! Grouping of per-customer RFM triples into distinct weighted rows, so that fitting cost scales
//! with the number of distinct (x, t_x, T) patterns rather than customers (Fader, Hardie & Lee
//! 2005 fit the CDNOW data this way; lifetimes calls the counts `weights`).

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
    /// For each input customer, the index of its row in `rows`; None for an invalid customer.
    pub row_of_customer: Vec<Option<usize>>,
    /// Indices of input customers that failed [`validate_rfm`], in input order.
    pub invalid: Vec<usize>,
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
    let n = customers.len();
    let mut invalid = Vec::new();
    // Key: bit patterns of non-negative finite f64s sort like the values themselves.
    let mut keyed: Vec<([u64; 3], usize)> = Vec::with_capacity(n);
    for (i, c) in customers.iter().enumerate() {
        if validate_rfm(c).is_err() {
            invalid.push(i);
            continue;
        }
        let k = [
            (c.x + 0.0).to_bits(),
            (c.t_x + 0.0).to_bits(),
            (c.t + 0.0).to_bits(),
        ];
        keyed.push((k, i));
    }
    if keyed.len() > 1 << 15 {
        keyed.par_sort_unstable();
    } else {
        keyed.sort_unstable();
    }
    let mut rows: Vec<SummaryRow> = Vec::new();
    let mut row_of_customer = vec![None; n];
    let mut last: Option<[u64; 3]> = None;
    for (k, i) in keyed {
        if last != Some(k) {
            rows.push(SummaryRow {
                x: f64::from_bits(k[0]),
                t_x: f64::from_bits(k[1]),
                t: f64::from_bits(k[2]),
                weight: 0.0,
            });
            last = Some(k);
        }
        let r = rows.len() - 1;
        rows[r].weight += 1.0;
        row_of_customer[i] = Some(r);
    }
    Summary {
        rows,
        row_of_customer,
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

/// Distinct spend rows plus the mapping back to the input customers.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SpendSummary {
    /// Distinct rows sorted ascending by (x, m).
    pub rows: Vec<SpendRow>,
    /// For each input customer, its row; None if it has no repeat purchase or is invalid.
    pub row_of_customer: Vec<Option<usize>>,
    /// Customers left out because x = 0 (one-time buyers: no repeat spend to learn from).
    pub one_time_buyers: usize,
    /// Indices of customers with invalid values (non-finite, negative or fractional x,
    /// m <= 0 with x > 0).
    pub invalid: Vec<usize>,
}

/// Groups (x, m) pairs of repeat customers (x > 0, m > 0) into distinct weighted rows, for
/// [`super::gamma_gamma::fit_gamma_gamma`]. Err if the lengths differ.
pub fn summarize_spend(x: &[f64], m: &[f64]) -> Result<SpendSummary, String> {
    if x.len() != m.len() {
        return Err(format!(
            "column lengths differ: x {}, m {}",
            x.len(),
            m.len()
        ));
    }
    let n = x.len();
    let mut out = SpendSummary {
        row_of_customer: vec![None; n],
        ..Default::default()
    };
    let mut keyed: Vec<([u64; 2], usize)> = Vec::with_capacity(n);
    for i in 0..n {
        let (xi, mi) = (x[i], m[i]);
        if !(xi.is_finite() && mi.is_finite()) || xi < 0.0 || xi != xi.floor() || xi > MAX_FREQUENCY
        {
            out.invalid.push(i);
            continue;
        }
        if xi == 0.0 {
            out.one_time_buyers += 1;
            continue;
        }
        if !(mi > 0.0) {
            out.invalid.push(i);
            continue;
        }
        keyed.push(([xi.to_bits(), mi.to_bits()], i));
    }
    if keyed.len() > 1 << 15 {
        keyed.par_sort_unstable();
    } else {
        keyed.sort_unstable();
    }
    let mut last = None;
    for (k, i) in keyed {
        if last != Some(k) {
            out.rows.push(SpendRow {
                x: f64::from_bits(k[0]),
                m: f64::from_bits(k[1]),
                weight: 0.0,
            });
            last = Some(k);
        }
        let r = out.rows.len() - 1;
        out.rows[r].weight += 1.0;
        out.row_of_customer[i] = Some(r);
    }
    Ok(out)
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
            s.row_of_customer,
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
        assert_eq!(s.row_of_customer[4], Some(1));
    }
}
