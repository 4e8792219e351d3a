//! RFM quintile scores and named segments (docs/segments.md).
//!
//! R, F and M are each scored 1..=`bins` by quantile rank among customers with at least one
//! purchase; recency is reversed (most recent = highest). Rank percentiles use the mid-rank
//! `(rank + 0.5) / n`, score = ceil(percentile x bins). Ties: `average` (default) gives equal
//! values the score of their average rank, so two customers with the same recency always score
//! the same; `customer_id` breaks ties by customer id (pandas' `rank(method="first")`). Named
//! segments come from rules in configuration, applied in order, first match wins, else the
//! fallback name. Customers without purchases are `unclassified`.

use rayon::prelude::*;
use serde::Deserialize;

use super::{CustomerView, SchemeOutput, UNCLASSIFIED};
use crate::error::Result;

/// How equal values are ranked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum TieRule {
    /// Equal values share the score of their average rank.
    #[default]
    Average,
    /// Equal values are ordered by customer id.
    CustomerId,
}

/// One named-segment rule: inclusive score ranges for R, F and M.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RfmRule {
    /// Segment name.
    pub name: String,
    /// Inclusive R score range.
    pub r: [u8; 2],
    /// Inclusive F score range.
    pub f: [u8; 2],
    /// Inclusive M score range.
    pub m: [u8; 2],
}

/// Settings of the RFM quintile scheme (`models.rfm`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RfmConfig {
    /// Number of score bins (5 = quintiles).
    pub bins: u8,
    /// Tie rule.
    pub ties: TieRule,
    /// customer_features column measuring frequency.
    pub frequency: String,
    /// customer_features column measuring monetary value.
    pub monetary: String,
    /// Named segments, first match wins.
    pub segments: Vec<RfmRule>,
    /// Name for customers matching no rule.
    pub fallback: String,
}

fn rule(name: &str, r: [u8; 2], f: [u8; 2], m: [u8; 2]) -> RfmRule {
    RfmRule {
        name: name.into(),
        r,
        f,
        m,
    }
}

/// The industry's common named segments, arranged so that first-match covers every score
/// triple and every rule is reachable (recency x frequency grid; M separates the Champions and
/// Can't Lose Them corners).
pub fn default_rules() -> Vec<RfmRule> {
    vec![
        rule("Champions", [4, 5], [4, 5], [4, 5]),
        rule("Loyal Customers", [3, 5], [3, 5], [1, 5]),
        rule("New Customers", [5, 5], [1, 1], [1, 5]),
        rule("Potential Loyalist", [4, 5], [1, 2], [1, 5]),
        rule("Promising", [3, 3], [1, 1], [1, 5]),
        rule("Need Attention", [3, 3], [2, 2], [1, 5]),
        rule("Can't Lose Them", [1, 1], [4, 5], [4, 5]),
        rule("At Risk", [1, 2], [3, 5], [1, 5]),
        rule("About To Sleep", [2, 2], [2, 2], [1, 5]),
        rule("Hibernating", [2, 2], [1, 1], [1, 5]),
        rule("Lost", [1, 1], [1, 2], [1, 5]),
    ]
}

impl Default for RfmConfig {
    fn default() -> Self {
        Self {
            bins: 5,
            ties: TieRule::default(),
            frequency: "orders".into(),
            monetary: "revenue".into(),
            segments: default_rules(),
            fallback: "Others".into(),
        }
    }
}

impl RfmConfig {
    /// Checks bins and rule ranges.
    pub fn validate(&self) -> std::result::Result<(), String> {
        if !(2..=10).contains(&self.bins) {
            return Err(format!("bins must be between 2 and 10, got {}", self.bins));
        }
        for r in &self.segments {
            for (axis, [lo, hi]) in [("r", r.r), ("f", r.f), ("m", r.m)] {
                if lo < 1 || hi > self.bins || lo > hi {
                    return Err(format!(
                        "segment `{}`: {axis} range [{lo}, {hi}] must lie within 1..={} with low <= high",
                        r.name, self.bins
                    ));
                }
            }
        }
        Ok(())
    }

    /// The segment name of a score triple: the first matching rule, else the fallback.
    pub fn segment_of(&self, r: u8, f: u8, m: u8) -> &str {
        let within = |v: u8, [lo, hi]: [u8; 2]| v >= lo && v <= hi;
        self.segments
            .iter()
            .find(|s| within(r, s.r) && within(f, s.f) && within(m, s.m))
            .map(|s| s.name.as_str())
            .unwrap_or(&self.fallback)
    }
}

/// Each id's position in the ids' sorted order (customer ids are unique; equal ids would get
/// adjacent ranks, and the row index breaks the tie).
fn id_ranks(ids: &[&str]) -> Vec<u32> {
    if ids.windows(2).all(|w| w[0] <= w[1]) {
        return (0..ids.len() as u32).collect();
    }
    let mut order: Vec<u32> = (0..ids.len() as u32).collect();
    order.par_sort_unstable_by(|&a, &b| ids[a as usize].cmp(ids[b as usize]));
    let mut rank = vec![0u32; ids.len()];
    for (r, &i) in order.iter().enumerate() {
        rank[i as usize] = r as u32;
    }
    rank
}

/// Scores each value 1..=bins by its quantile rank; `None` values stay `None`. With
/// `higher_is_better = false` the smallest value scores highest (recency).
pub fn quantile_scores(
    values: &[Option<f64>],
    ids: &[&str],
    bins: u8,
    ties: TieRule,
    higher_is_better: bool,
) -> Vec<Option<u8>> {
    ranked_quantile_scores(values, &id_ranks(ids), bins, ties, higher_is_better)
}

/// The value a customer is ordered by: its own, negated when lower is better.
fn sort_key(values: &[Option<f64>], i: usize, higher_is_better: bool) -> f64 {
    let v = values[i].unwrap_or(0.0);
    if higher_is_better { v } else { -v }
}

/// [`quantile_scores`] with the ids given as their ranks ([`id_ranks`], computed once for the
/// three scores of a customer).
fn ranked_quantile_scores(
    values: &[Option<f64>],
    id_rank: &[u32],
    bins: u8,
    ties: TieRule,
    higher_is_better: bool,
) -> Vec<Option<u8>> {
    // Sorted by (value, customer id). Values tie a lot (days, order counts), and comparing the
    // ids' strings on every tie was most of the cost: the sort compares the value as an integer
    // that orders like `f64::total_cmp`, then the id's rank.
    let total_order = |v: f64| {
        let b = v.to_bits() as i64;
        b ^ ((((b >> 63) as u64) >> 1) as i64)
    };
    let mut keyed: Vec<(i64, u32, u32)> = (0..values.len())
        .filter(|&i| values[i].is_some_and(|v| !v.is_nan()))
        .map(|i| {
            let k = total_order(sort_key(values, i, higher_is_better));
            (k, id_rank[i], i as u32)
        })
        .collect();
    keyed.par_sort_unstable();
    let order: Vec<usize> = keyed.into_iter().map(|(_, _, i)| i as usize).collect();
    scores_in_order(values, &order, bins, ties, higher_is_better)
}

/// Scores customers listed in ascending order of their sort key: equal keys share the score of
/// their average rank (`TieRule::Average`) or keep their order's.
fn scores_in_order(
    values: &[Option<f64>],
    order: &[usize],
    bins: u8,
    ties: TieRule,
    higher_is_better: bool,
) -> Vec<Option<u8>> {
    let key = |i: usize| sort_key(values, i, higher_is_better);
    let n = order.len();
    let mut out = vec![None; values.len()];
    let score = |mid_rank: f64| {
        let p = (mid_rank + 0.5) / n as f64;
        ((p * bins as f64).ceil() as u8).clamp(1, bins)
    };
    let mut start = 0;
    while start < n {
        let mut end = start + 1;
        if ties == TieRule::Average {
            while end < n && key(order[end]) == key(order[start]) {
                end += 1;
            }
        }
        let mid = (start + end - 1) as f64 / 2.0;
        let s = score(mid);
        for &i in &order[start..end] {
            out[i] = Some(s);
        }
        start = end;
    }
    out
}

/// Computes rfm_r, rfm_f, rfm_m, rfm_score and rfm_segment.
pub fn assign(cfg: &RfmConfig, view: &CustomerView) -> Result<SchemeOutput> {
    let ids = view.id_strs();
    let recency = view.buyer_f64("recency_days")?;
    let frequency = view.buyer_f64(&cfg.frequency)?;
    let monetary = view.buyer_f64(&cfg.monetary)?;
    let rank = id_ranks(&ids);
    let r = ranked_quantile_scores(&recency, &rank, cfg.bins, cfg.ties, false);
    let f = ranked_quantile_scores(&frequency, &rank, cfg.bins, cfg.ties, true);
    let m = ranked_quantile_scores(&monetary, &rank, cfg.bins, cfg.ties, true);
    let mut out = SchemeOutput::new("rfm");
    let mut labels = Vec::with_capacity(ids.len());
    let mut scores = Vec::with_capacity(ids.len());
    for i in 0..ids.len() {
        match (r[i], f[i], m[i]) {
            (Some(a), Some(b), Some(c)) => {
                scores.push(Some(format!("{a}{b}{c}")));
                labels.push(cfg.segment_of(a, b, c));
            }
            _ => {
                scores.push(None);
                labels.push(UNCLASSIFIED);
            }
        }
    }
    out.push_u8("rfm_r", r);
    out.push_u8("rfm_f", f);
    out.push_u8("rfm_m", m);
    out.push_str("rfm_score", scores);
    out.set_label("rfm_segment", labels);
    out.report = serde_json::json!({"bins": cfg.bins, "ties": format!("{:?}", cfg.ties).to_lowercase(), "frequency": cfg.frequency, "monetary": cfg.monetary});
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[Option<f64>], hib: bool, ties: TieRule) -> Vec<Option<u8>> {
        let ids: Vec<String> = (0..v.len()).map(|i| format!("c{i}")).collect();
        let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
        quantile_scores(v, &ids, 5, ties, hib)
    }

    /// Against the former comparator (value by total_cmp, then the id string), on heavily tied
    /// values (signed zeros included), ids in and out of order, both tie rules.
    #[test]
    fn integer_sort_keys_order_like_value_then_id() {
        // the former order, scored by the same rule
        fn reference(v: &[Option<f64>], ids: &[&str], ties: TieRule, hib: bool) -> Vec<Option<u8>> {
            let mut idx: Vec<usize> = (0..v.len())
                .filter(|&i| v[i].is_some_and(|x| !x.is_nan()))
                .collect();
            let key = |i: usize| sort_key(v, i, hib);
            idx.sort_by(|&a, &b| key(a).total_cmp(&key(b)).then_with(|| ids[a].cmp(ids[b])));
            scores_in_order(v, &idx, 5, ties, hib)
        }
        let n = 5_000;
        let values: Vec<Option<f64>> = (0..n)
            .map(|i| match i % 11 {
                0 => None,
                1 => Some(f64::NAN),
                2 => Some(-0.0),
                3 => Some(0.0),
                k => Some(((i * 7919) % 13) as f64 - 6.0 + k as f64 / 4.0),
            })
            .collect();
        let shuffled: Vec<String> = (0..n).map(|i| format!("c{}", (i * 7919) % n)).collect();
        let sorted: Vec<String> = (0..n).map(|i| format!("c{i:05}")).collect();
        for ids in [&shuffled, &sorted] {
            let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
            for ties in [TieRule::Average, TieRule::CustomerId] {
                for hib in [true, false] {
                    assert_eq!(
                        quantile_scores(&values, &ids, 5, ties, hib),
                        reference(&values, &ids, ties, hib)
                    );
                }
            }
        }
    }

    #[test]
    fn five_distinct_values_get_one_score_each() {
        let v = [Some(10.0), Some(50.0), Some(20.0), Some(40.0), Some(30.0)];
        assert_eq!(
            s(&v, true, TieRule::Average),
            vec![Some(1), Some(5), Some(2), Some(4), Some(3)]
        );
        // recency: the smallest number of days is the most recent and scores 5
        assert_eq!(
            s(&v, false, TieRule::Average),
            vec![Some(5), Some(1), Some(4), Some(2), Some(3)]
        );
    }

    #[test]
    fn ties_share_a_score_or_break_by_id() {
        let v = [Some(1.0), Some(1.0), Some(1.0), Some(1.0), Some(9.0)];
        // average rank of the four 1.0s is 1.5 -> percentile 0.4 -> score 2
        assert_eq!(
            s(&v, true, TieRule::Average),
            vec![Some(2), Some(2), Some(2), Some(2), Some(5)]
        );
        assert_eq!(
            s(&v, true, TieRule::CustomerId),
            vec![Some(1), Some(2), Some(3), Some(4), Some(5)]
        );
    }

    #[test]
    fn missing_values_stay_unscored() {
        let v = [None, Some(3.0), None, Some(1.0)];
        assert_eq!(
            s(&v, true, TieRule::Average),
            vec![None, Some(4), None, Some(2)]
        );
        assert_eq!(s(&[], true, TieRule::Average), Vec::<Option<u8>>::new());
    }

    #[test]
    fn named_segments_first_match_wins() {
        let cfg = RfmConfig::default();
        assert_eq!(cfg.segment_of(5, 5, 5), "Champions");
        assert_eq!(cfg.segment_of(5, 5, 1), "Loyal Customers");
        assert_eq!(cfg.segment_of(5, 1, 1), "New Customers");
        assert_eq!(cfg.segment_of(1, 5, 5), "Can't Lose Them");
        assert_eq!(cfg.segment_of(1, 5, 1), "At Risk");
        assert_eq!(cfg.segment_of(1, 1, 1), "Lost");
        assert_eq!(cfg.segment_of(2, 1, 1), "Hibernating");
        assert_eq!(cfg.segment_of(3, 2, 1), "Need Attention");
        assert_eq!(cfg.segment_of(3, 1, 5), "Promising");
        let only = RfmConfig {
            segments: vec![rule("Top", [5, 5], [5, 5], [5, 5])],
            ..RfmConfig::default()
        };
        assert_eq!(only.segment_of(5, 5, 5), "Top");
        assert_eq!(only.segment_of(4, 5, 5), "Others");
    }

    #[test]
    fn every_default_rule_is_reachable() {
        let cfg = RfmConfig::default();
        let mut hit = std::collections::BTreeSet::new();
        for r in 1..=5 {
            for f in 1..=5 {
                for m in 1..=5 {
                    hit.insert(cfg.segment_of(r, f, m).to_string());
                }
            }
        }
        for rule in &cfg.segments {
            assert!(
                hit.contains(&rule.name),
                "{} is shadowed by earlier rules",
                rule.name
            );
        }
    }

    #[test]
    fn rule_ranges_are_validated() {
        let mut cfg = RfmConfig::default();
        cfg.segments.push(rule("bad", [0, 3], [1, 1], [1, 1]));
        assert!(cfg.validate().unwrap_err().contains("bad"));
    }
}
