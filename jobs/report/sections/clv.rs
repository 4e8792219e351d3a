//! Customer lifetime value: the histogram (the top 1% folded into the last bar) and the
//! deciles.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::{Section, missing, stable_sum};
use crate::report::format::{amount, count, money, percent};
use crate::report::load::Tables;
use crate::report::svg::{self, Axis};
use crate::report::table::{Cell, Table};

/// Linear-interpolated quantile of sorted values.
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let pos = q * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

/// Builds the section.
pub fn section(t: &Tables) -> Section {
    let mut s = Section::new("h-clv", "Customer lifetime value");
    let Some(f) = t.value.as_ref().filter(|f| f.has("clv")) else {
        s.html.push_str(&missing("Lifetime value"));
        return s;
    };
    let cur = t.currency();
    let clv = f.f64("clv").unwrap_or_default();
    let mut sorted: Vec<f64> = clv
        .iter()
        .flatten()
        .copied()
        .filter(|v| v.is_finite())
        .collect();
    sorted.sort_by(f64::total_cmp);
    if sorted.is_empty() {
        s.html
            .push_str(&missing("Lifetime value (no customer has one)"));
        return s;
    }
    let lo = sorted[0].min(0.0);
    let p99 = quantile(&sorted, 0.99);
    let max = sorted[sorted.len() - 1];
    let (hi, capped) = if p99 > lo && max > p99 {
        (p99, true)
    } else {
        (max.max(lo + 1.0), false)
    };
    let n_bins = 24usize;
    let width = (hi - lo) / n_bins as f64;
    let mut bins: Vec<svg::Bin> = (0..n_bins)
        .map(|i| svg::Bin {
            lo: lo + i as f64 * width,
            hi: if i + 1 == n_bins {
                hi
            } else {
                lo + (i + 1) as f64 * width
            },
            count: 0,
        })
        .collect();
    for v in &sorted {
        let i = (((v - lo) / width).floor().max(0.0) as usize).min(n_bins - 1);
        bins[i].count += 1;
    }
    let _ = writeln!(
        s.html,
        "<p class=\"note\">{} customers with a value; median {}, 99th percentile {}, largest {}.{}</p>",
        count(sorted.len() as i64),
        money(quantile(&sorted, 0.5), cur),
        money(p99, cur),
        money(max, cur),
        if capped {
            " The last bar holds everyone from its lower edge up, the 1% above the 99th percentile included."
        } else {
            ""
        }
    );
    s.html.push_str(&svg::histogram(
        "Distribution of customer lifetime value",
        &Axis::metric("avg_clv", cur).retitled(&match cur {
            Some(c) => format!("CLV per customer ({c})"),
            None => "CLV per customer".into(),
        }),
        &bins,
        capped.then_some(hi),
    ));
    s.html.push('\n');
    let Some(dec) = f.i64("clv_decile") else {
        s.html.push_str(&missing("CLV deciles"));
        return s;
    };
    let mut by: BTreeMap<i64, Vec<f64>> = BTreeMap::new();
    for (d, v) in dec.iter().zip(&clv) {
        if let (Some(d), Some(v)) = (d, v)
            && v.is_finite()
        {
            by.entry(*d).or_default().push(*v);
        }
    }
    let total = stable_sum(sorted.iter().copied());
    let unit = |h: &str| match cur {
        Some(c) => format!("{h} ({c})"),
        None => h.to_string(),
    };
    let mut table = Table::new("clv_deciles", "CLV deciles")
        .num("CLV decile")
        .num("customers")
        .num(&unit("lowest CLV"))
        .num(&unit("average CLV"))
        .num(&unit("highest CLV"))
        .num("share of total CLV");
    for (d, mut v) in by {
        v.sort_by(f64::total_cmp);
        let sum = stable_sum(v.iter().copied());
        let avg = sum / v.len() as f64;
        let share = (total != 0.0).then(|| sum / total);
        let am = |x: f64| Cell::num(amount(x), Some(x));
        table.row(vec![
            Cell::int(Some(d)),
            Cell::int(Some(v.len() as i64)),
            am(v[0]),
            am(avg),
            am(v[v.len() - 1]),
            Cell::num(share.map(percent).unwrap_or("n/a".into()), share),
        ]);
    }
    s.sub("clv-deciles".into(), "Deciles".into());
    s.html.push_str(&table.html());
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_interpolate() {
        let v = [1.0, 2.0, 3.0, 4.0, 5.0];
        assert_eq!(quantile(&v, 0.5), 3.0);
        assert_eq!(quantile(&v, 0.25), 2.0);
        assert_eq!(quantile(&v, 0.9), 4.6);
    }
}
