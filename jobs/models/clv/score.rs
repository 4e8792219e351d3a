//! Scoring of distinct summary rows: P(alive), expected purchases over the horizon and the
//! discounted expected purchases (CLV per unit of spend, [`super::value`]).
//!
//! All three models factor the conditional expectation as E[Y(t) | x, t_x, T] =
//! P(alive | x, t_x, T) * E[Y(t) | alive at T, x, T] (FHL 2005 eq. 10; Batislam et al. 2007;
//! FHL note 009 eq. 41), and the second factor does not depend on t_x. The expensive part (a
//! 2F1 per discount step for BG/NBD and MBG/NBD) is therefore computed once per distinct
//! (x, T) pair, of which there are far fewer than (x, t_x, T) rows, and each row only adds its
//! P(alive).

use rayon::prelude::*;

use super::summary::Rfm;
use super::transaction::TransactionModel;
use super::value::ClvOptions;

/// Per-row predictions from [`score_rows`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RowScores {
    /// P(alive) at T.
    pub p_alive: Vec<f64>,
    /// Expected purchases in (T, T + horizon].
    pub expected: Vec<f64>,
    /// Discounted expected purchases over the CLV schedule (CLV = this x expected spend).
    pub dep: Vec<f64>,
}

/// Distinct (x, T) pairs of `rows` and, for each row, its pair.
pub(super) fn xt_pairs(rows: &[Rfm]) -> (Vec<(f64, f64)>, Vec<u32>) {
    let mut keys: Vec<(u64, u64, u32)> = rows
        .iter()
        .enumerate()
        .map(|(i, c)| ((c.x + 0.0).to_bits(), (c.t + 0.0).to_bits(), i as u32))
        .collect();
    if keys.len() > 1 << 15 {
        keys.par_sort_unstable();
    } else {
        keys.sort_unstable();
    }
    let mut pairs = Vec::new();
    let mut of_row = vec![0u32; rows.len()];
    let mut last = None;
    for (x, t, i) in keys {
        if last != Some((x, t)) {
            pairs.push((f64::from_bits(x), f64::from_bits(t)));
            last = Some((x, t));
        }
        of_row[i as usize] = (pairs.len() - 1) as u32;
    }
    (pairs, of_row)
}

/// For one model: E[Y(t_k) | alive, x, T] at the schedule's steps, the discounted sum
/// sum_k disc_k (b_k - b_{k-1}) and b at `horizon` (model units). NaN if any value is not finite.
pub(super) fn pair_values(
    model: &TransactionModel,
    x: f64,
    big_t: f64,
    steps: &[(f64, f64)],
    horizon: f64,
) -> (f64, f64) {
    let mut prev = 0.0;
    let mut dep = 0.0;
    let mut at_h = f64::NAN;
    for &(t, disc) in steps {
        let b = model.alive_expected_purchases(t, x, big_t);
        if !b.is_finite() {
            return (f64::NAN, f64::NAN);
        }
        dep += (b - prev) * disc;
        prev = b;
        if t == horizon {
            at_h = b;
        }
    }
    if at_h.is_nan() {
        at_h = model.alive_expected_purchases(horizon, x, big_t);
    }
    (dep, at_h)
}

/// Scores rows with the discount schedule of `opts` and expected purchases over `horizon`
/// model units. Err for invalid options; NaN entries for invalid rows.
pub fn score_rows(
    model: &TransactionModel,
    rows: &[Rfm],
    horizon: f64,
    opts: &ClvOptions,
) -> Result<RowScores, String> {
    opts.validate()?;
    let steps: Vec<(f64, f64)> = opts
        .schedule()
        .into_iter()
        .map(|(d, disc)| (d / opts.days_per_unit, disc))
        .collect();
    let (pairs, of_row) = xt_pairs(rows);
    let per_pair: Vec<(f64, f64)> = pairs
        .par_iter()
        .with_min_len(64)
        .map(|&(x, t)| pair_values(model, x, t, &steps, horizon))
        .collect();
    let per_row: Vec<(f64, f64, f64)> = rows
        .par_iter()
        .zip(of_row.par_iter())
        .with_min_len(4096)
        .map(|(c, &k)| {
            let pa = model.p_alive(c);
            let (dep, at_h) = per_pair[k as usize];
            (pa, pa * at_h, pa * dep)
        })
        .collect();
    let mut out = RowScores {
        p_alive: Vec::with_capacity(rows.len()),
        expected: Vec::with_capacity(rows.len()),
        dep: Vec::with_capacity(rows.len()),
    };
    for (a, e, d) in per_row {
        out.p_alive.push(a);
        out.expected.push(e);
        out.dep.push(d);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::transaction::{NbdParams, TransactionModelKind};
    use super::super::value::customer_lifetime_values;
    use super::*;

    #[test]
    fn shared_pairs_give_the_per_row_values() {
        let rows: Vec<Rfm> = (0..300)
            .map(|i| {
                let x = (i % 7) as f64;
                let t = 20.0 + (i % 11) as f64;
                Rfm {
                    x,
                    t_x: if x == 0.0 {
                        0.0
                    } else {
                        t * (i % 5) as f64 / 5.0
                    },
                    t,
                }
            })
            .collect();
        let opts = ClvOptions {
            horizon_days: 365.0,
            step_days: 30.0,
            annual_discount_rate: 0.1,
            days_per_unit: 7.0,
        };
        for kind in [
            TransactionModelKind::BgNbd,
            TransactionModelKind::MbgNbd,
            TransactionModelKind::ParetoNbd,
        ] {
            let model = TransactionModel {
                kind,
                params: NbdParams {
                    r: 0.4,
                    alpha: 5.0,
                    a: 0.8,
                    b: 2.5,
                },
            };
            let s = score_rows(&model, &rows, 365.0 / 7.0, &opts).expect("valid");
            let dep = customer_lifetime_values(&model, &rows, &vec![1.0; rows.len()], &opts)
                .expect("valid");
            for (i, c) in rows.iter().enumerate() {
                let e = model.conditional_expected_purchases(365.0 / 7.0, c);
                assert!((s.p_alive[i] - model.p_alive(c)).abs() < 1e-15);
                assert!(
                    (s.expected[i] - e).abs() <= 1e-13 * e.abs(),
                    "{kind:?} {c:?}"
                );
                assert!(
                    (s.dep[i] - dep[i]).abs() <= 1e-12 * dep[i].abs(),
                    "{kind:?} {c:?}: {} vs {}",
                    s.dep[i],
                    dep[i]
                );
            }
        }
    }
}
