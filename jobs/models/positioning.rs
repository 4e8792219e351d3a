//! Market positioning (docs/segments.md, "Positioning"): evaluate each scheme's segments as target markets,
//! choose targets and attach a marketing mix from a rulebook that reads the segments' names and
//! profiles. Reads segment_summary, writes `positioning` (one row per scheme and segment).
//!
//! Per scheme, over its classified segments (`unclassified` is never a target):
//! - the positioning map: `y_axis` names a segment_summary column (default the average CLV);
//!   `x_axis` names one too, or is `auto` (the default): per scheme, the candidate of
//!   `x_axis_candidates` whose values spread the segments most (coefficient of variation across
//!   the classified segments), so the map does not pile every bubble onto one price index. The
//!   axis used is written in every row and the spreads are in the run results;
//! - component scores, each min-max normalised to 0-1 across the scheme's segments (0.5 for all
//!   when the segments do not differ or the input is missing): size (customer share), growth
//!   (growth versus the previous period), profitability (margin per customer), value (average
//!   CLV), distinctness (the distance of the segment's standardised profile over
//!   `distinctness_metrics` from the scheme's average segment) and response (campaign response
//!   rate);
//! - attractiveness = the weighted mean of the scores (`weights`; the defaults weigh the value a
//!   segment earns and will earn twice as much as its size, and growth, distinctness and response
//!   half as much, docs/segments.md says why);
//! - targets: the `top_n` most attractive segments, or those at or above `min_attractiveness`
//!   (`target_mode`), among segments holding at least `min_customer_share` of customers and
//!   earning more than `min_avg_margin` per customer (unknown margin: eligible). A segment whose
//!   average CLV and margin per customer are both below the scheme's base (`below_base`) ranks
//!   after every segment that is not (`below_base_last`, default true; false lets the weights
//!   alone decide). Choosing every segment (too broad) or none (too narrow) is the documents'
//!   named failure: it is kept but written in `note` and raised as a run warning;
//! - strategies: the first rule matching the segment's scheme, name and profile gives product,
//!   price, channel, promotion and action ([`strategies`]); the configured rules come first,
//!   then the built-in defaults, and the rule that fired is written in `strategy_rule`.

pub mod strategies;

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::array::{
    BooleanArray, Float64Array, Int32Array, Int64Array, RecordBatch, StringArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use serde::Deserialize;

pub use self::strategies::{Condition, Profile, StrategyRule, default_rules};
use super::segments::UNCLASSIFIED;
use super::table::Table;
use super::{Model, ModelInputs, ModelOutputs};
use crate::error::{Error, Result};

/// Weights of the component scores in the attractiveness score.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Weights {
    /// Customer share.
    #[serde(default = "one")]
    pub size: f64,
    /// Growth versus the previous period.
    #[serde(default = "half")]
    pub growth: f64,
    /// Margin per customer.
    #[serde(default = "two")]
    pub profitability: f64,
    /// Average CLV.
    #[serde(default = "two")]
    pub value: f64,
    /// Distinct profile.
    #[serde(default = "half")]
    pub distinctness: f64,
    /// Campaign response.
    #[serde(default = "half")]
    pub response: f64,
}

fn one() -> f64 {
    1.0
}
fn two() -> f64 {
    2.0
}
fn half() -> f64 {
    0.5
}

impl Default for Weights {
    fn default() -> Self {
        Self {
            size: one(),
            growth: half(),
            profitability: two(),
            value: two(),
            distinctness: half(),
            response: half(),
        }
    }
}

impl Weights {
    /// In score order: size, growth, profitability, value, distinctness, response.
    pub fn as_array(&self) -> [f64; 6] {
        [
            self.size,
            self.growth,
            self.profitability,
            self.value,
            self.distinctness,
            self.response,
        ]
    }
}

/// How targets are chosen.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum TargetMode {
    /// The `top_n` most attractive segments.
    TopN,
    /// Segments at or above `min_attractiveness`.
    Threshold,
}

/// `x_axis: auto`: the candidate that spreads the segments most, per scheme.
pub const AUTO: &str = "auto";

/// Settings of positioning (`models.positioning`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PositioningConfig {
    /// segment_summary column on the map's x axis, or `auto`.
    #[serde(default = "default_x")]
    pub x_axis: String,
    /// The columns `auto` chooses from, in order of preference on ties.
    #[serde(default = "default_x_candidates")]
    pub x_axis_candidates: Vec<String>,
    /// segment_summary column on the map's y axis.
    #[serde(default = "default_y")]
    pub y_axis: String,
    /// Component weights.
    #[serde(default)]
    pub weights: Weights,
    /// segment_summary columns whose standardised profile measures distinctness.
    #[serde(default = "default_distinct")]
    pub distinctness_metrics: Vec<String>,
    /// top_n or threshold.
    #[serde(default = "default_mode")]
    pub target_mode: TargetMode,
    /// Targets per scheme in top_n mode.
    #[serde(default = "default_top_n")]
    pub top_n: usize,
    /// Attractiveness at or above which a segment is a target in threshold mode.
    #[serde(default = "default_min_attr")]
    pub min_attractiveness: f64,
    /// Smallest customer share a target may have.
    #[serde(default = "default_min_share")]
    pub min_customer_share: f64,
    /// A target's margin per customer must exceed this (unprofitable segments are not targets).
    #[serde(default)]
    pub min_avg_margin: f64,
    /// Segments below the base on both average CLV and margin rank after all others.
    #[serde(default = "yes")]
    pub below_base_last: bool,
    /// The strategy rulebook, first match wins; the built-in defaults follow it.
    #[serde(default)]
    pub strategies: Vec<StrategyRule>,
}

fn default_x() -> String {
    AUTO.into()
}
fn default_x_candidates() -> Vec<String> {
    [
        "avg_price_index",
        "avg_order_value",
        "avg_discount_line_share",
        "avg_premium_line_share",
        "avg_new_product_line_share",
    ]
    .map(String::from)
    .to_vec()
}
fn default_y() -> String {
    "avg_clv".into()
}
fn default_distinct() -> Vec<String> {
    [
        "avg_order_value",
        "repeat_purchase_rate",
        "avg_clv",
        "avg_price_index",
        "response_rate",
        "complaint_rate",
    ]
    .map(String::from)
    .to_vec()
}
fn default_mode() -> TargetMode {
    TargetMode::TopN
}
fn default_top_n() -> usize {
    2
}
fn default_min_attr() -> f64 {
    0.6
}
fn default_min_share() -> f64 {
    0.02
}
fn yes() -> bool {
    true
}

impl Default for PositioningConfig {
    fn default() -> Self {
        Self {
            x_axis: default_x(),
            x_axis_candidates: default_x_candidates(),
            y_axis: default_y(),
            weights: Weights::default(),
            distinctness_metrics: default_distinct(),
            target_mode: default_mode(),
            top_n: default_top_n(),
            min_attractiveness: default_min_attr(),
            min_customer_share: default_min_share(),
            min_avg_margin: 0.0,
            below_base_last: true,
            strategies: Vec::new(),
        }
    }
}

impl PositioningConfig {
    /// Non-negative weights with a positive sum, sensible target settings, complete rules.
    pub fn validate(&self) -> std::result::Result<(), String> {
        let all = self.weights.as_array();
        if all.iter().any(|v| v.is_nan() || *v < 0.0) || all.iter().sum::<f64>() <= 0.0 {
            return Err("weights must be non-negative with a positive sum".into());
        }
        if self.target_mode == TargetMode::TopN && self.top_n == 0 {
            return Err("top_n must be at least 1".into());
        }
        if !(0.0..=1.0).contains(&self.min_attractiveness)
            || !(0.0..=1.0).contains(&self.min_customer_share)
        {
            return Err("min_attractiveness and min_customer_share must be in [0, 1]".into());
        }
        if self.x_axis == AUTO && self.x_axis_candidates.is_empty() {
            return Err("x_axis: auto needs at least one of x_axis_candidates".into());
        }
        for (i, r) in self.strategies.iter().enumerate() {
            r.validate().map_err(|m| format!("strategies[{i}]: {m}"))?;
        }
        Ok(())
    }

    /// The rulebook as applied: the configured rules, then the built-in defaults.
    pub fn rulebook(&self) -> Vec<StrategyRule> {
        self.strategies
            .iter()
            .cloned()
            .chain(default_rules())
            .collect()
    }

    /// Every segment_summary column the configuration reads.
    fn columns(&self) -> Vec<String> {
        let mut cols: Vec<String> = vec![self.y_axis.clone()];
        if self.x_axis == AUTO {
            cols.extend(self.x_axis_candidates.iter().cloned());
        } else {
            cols.push(self.x_axis.clone());
        }
        cols.extend(self.distinctness_metrics.iter().cloned());
        for r in self.rulebook() {
            cols.extend(r.metrics().map(String::from));
        }
        cols.sort();
        cols.dedup();
        cols
    }
}

/// Min-max normalisation to 0-1; missing values score 0, and 0.5 for all when nothing differs.
pub fn normalise(v: &[Option<f64>]) -> Vec<f64> {
    let known: Vec<f64> = v
        .iter()
        .flatten()
        .copied()
        .filter(|x| x.is_finite())
        .collect();
    let (lo, hi) = known
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), &x| {
            (l.min(x), h.max(x))
        });
    if known.is_empty() || hi - lo <= f64::EPSILON * hi.abs().max(1.0) {
        return vec![0.5; v.len()];
    }
    v.iter()
        .map(|x| match x {
            Some(x) if x.is_finite() => (x - lo) / (hi - lo),
            _ => 0.0,
        })
        .collect()
}

/// Distance of each row's standardised profile from the average row (missing metrics count 0).
pub fn distinctness(metrics: &[Vec<Option<f64>>]) -> Vec<Option<f64>> {
    let n = metrics.first().map_or(0, Vec::len);
    let mut sq = vec![0.0; n];
    for m in metrics {
        let known: Vec<f64> = m.iter().flatten().copied().collect();
        if known.len() < 2 {
            continue;
        }
        let mean = known.iter().sum::<f64>() / known.len() as f64;
        let sd =
            (known.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / known.len() as f64).sqrt();
        if sd <= 0.0 {
            continue;
        }
        for (s, x) in sq.iter_mut().zip(m) {
            if let Some(x) = x {
                *s += ((x - mean) / sd).powi(2);
            }
        }
    }
    sq.into_iter().map(|s| Some(s.sqrt())).collect()
}

/// The customer-weighted mean of `values` (segments with a known value and customers).
pub fn base(values: &[Option<f64>], customers: &[Option<f64>]) -> Option<f64> {
    let (mut sum, mut n) = (0.0, 0.0);
    for (v, c) in values.iter().zip(customers) {
        if let (Some(v), Some(c)) = (v, c)
            && v.is_finite()
            && *c > 0.0
        {
            sum += v * c;
            n += c;
        }
    }
    (n > 0.0).then(|| sum / n)
}

/// The coefficient of variation (population sd / |mean|) of the known values; None with fewer
/// than two of them or a zero mean.
pub fn spread(values: &[Option<f64>]) -> Option<f64> {
    let known: Vec<f64> = values
        .iter()
        .flatten()
        .copied()
        .filter(|v| v.is_finite())
        .collect();
    if known.len() < 2 {
        return None;
    }
    let mean = known.iter().sum::<f64>() / known.len() as f64;
    let sd = (known.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / known.len() as f64).sqrt();
    (mean.abs() > 0.0).then(|| sd / mean.abs())
}

/// One segment's evaluation.
#[derive(Debug, Clone, Default)]
pub struct Evaluated {
    /// Component scores: size, growth, profitability, value, distinctness, response.
    pub scores: [f64; 6],
    /// Weighted mean of the scores.
    pub attractiveness: f64,
    /// Average CLV and margin per customer both below the scheme's base.
    pub below_base: bool,
    /// Chosen as a target.
    pub is_target: bool,
    /// Rank among targets (1 = most attractive).
    pub target_rank: Option<i32>,
}

/// Inputs of one scheme's segments (parallel vectors).
#[derive(Debug, Clone, Default)]
pub struct SchemeSegments {
    /// Segment names.
    pub segments: Vec<String>,
    /// Customers.
    pub customers: Vec<Option<f64>>,
    /// Customer shares.
    pub customer_share: Vec<Option<f64>>,
    /// Growth versus the previous period.
    pub growth: Vec<Option<f64>>,
    /// Margin per customer.
    pub avg_margin: Vec<Option<f64>>,
    /// Average CLV.
    pub avg_clv: Vec<Option<f64>>,
    /// Response rate.
    pub response: Vec<Option<f64>>,
    /// Distinctness metrics, one vector per metric.
    pub profile: Vec<Vec<Option<f64>>>,
}

/// Scores and targets of one scheme's segments, plus a note when targeting is too broad or too
/// narrow. `unclassified` segments get scores but are never targets.
pub fn evaluate(cfg: &PositioningConfig, s: &SchemeSegments) -> (Vec<Evaluated>, Option<String>) {
    let idx: Vec<usize> = (0..s.segments.len())
        .filter(|&i| s.segments[i] != UNCLASSIFIED)
        .collect();
    let pick = |v: &[Option<f64>]| idx.iter().map(|&i| v[i]).collect::<Vec<_>>();
    let size = normalise(&pick(&s.customer_share));
    let growth = normalise(&pick(&s.growth));
    let profit = normalise(&pick(&s.avg_margin));
    let value = normalise(&pick(&s.avg_clv));
    let profile: Vec<Vec<Option<f64>>> = s.profile.iter().map(|m| pick(m)).collect();
    let distinct = normalise(&distinctness(&profile));
    let response = normalise(&pick(&s.response));
    let weights = cfg.weights.as_array();
    let total: f64 = weights.iter().sum();
    // the base: every customer of the scheme, unclassified included
    let clv_base = base(&s.avg_clv, &s.customers);
    let margin_base = base(&s.avg_margin, &s.customers);
    let below = |v: Option<f64>, b: Option<f64>| matches!((v, b), (Some(v), Some(b)) if v < b);
    let mut out = vec![Evaluated::default(); s.segments.len()];
    for (k, &i) in idx.iter().enumerate() {
        let scores = [
            size[k],
            growth[k],
            profit[k],
            value[k],
            distinct[k],
            response[k],
        ];
        let attractiveness = scores.iter().zip(&weights).map(|(s, w)| s * w).sum::<f64>() / total;
        out[i] = Evaluated {
            scores,
            attractiveness,
            below_base: below(s.avg_clv[i], clv_base) && below(s.avg_margin[i], margin_base),
            ..Evaluated::default()
        };
    }
    let mut eligible: Vec<usize> = idx
        .iter()
        .copied()
        .filter(|&i| {
            s.customer_share[i].unwrap_or(0.0) >= cfg.min_customer_share
                && s.avg_margin[i].is_none_or(|m| m > cfg.min_avg_margin)
        })
        .collect();
    let demoted = |i: usize| cfg.below_base_last && out[i].below_base;
    eligible.sort_by(|&a, &b| {
        demoted(a)
            .cmp(&demoted(b))
            .then(out[b].attractiveness.total_cmp(&out[a].attractiveness))
            .then_with(|| s.segments[a].cmp(&s.segments[b]))
    });
    let chosen: Vec<usize> = match cfg.target_mode {
        TargetMode::TopN => eligible.iter().copied().take(cfg.top_n).collect(),
        TargetMode::Threshold => eligible
            .iter()
            .copied()
            .filter(|&i| out[i].attractiveness >= cfg.min_attractiveness)
            .collect(),
    };
    for (rank, &i) in chosen.iter().enumerate() {
        out[i].is_target = true;
        out[i].target_rank = Some(rank as i32 + 1);
    }
    let note = if idx.is_empty() {
        None
    } else if chosen.is_empty() {
        Some("positioning too narrow: no segment is a target".to_string())
    } else if chosen.len() == idx.len() && idx.len() > 1 {
        Some("positioning too broad: every segment is a target".to_string())
    } else {
        None
    };
    (out, note)
}

/// The x axis of a scheme: the configured column, or under `auto` the candidate with the largest
/// spread over the classified segments (ties and no spread at all: the first candidate), with
/// every candidate's spread.
pub fn choose_x_axis(
    cfg: &PositioningConfig,
    candidates: &[(&str, Vec<Option<f64>>)],
) -> (String, BTreeMap<String, Option<f64>>) {
    if cfg.x_axis != AUTO {
        return (cfg.x_axis.clone(), BTreeMap::new());
    }
    let spreads: Vec<(&str, Option<f64>)> =
        candidates.iter().map(|(c, v)| (*c, spread(v))).collect();
    let mut best: Option<(&str, f64)> = None;
    for (c, s) in &spreads {
        if let Some(s) = s
            && best.is_none_or(|(_, b)| *s > b)
        {
            best = Some((c, *s));
        }
    }
    let chosen = best
        .map(|(c, _)| c.to_string())
        .or_else(|| cfg.x_axis_candidates.first().cloned())
        .unwrap_or_default();
    let rounded = spreads
        .into_iter()
        .map(|(c, s)| (c.to_string(), s.map(|v| (v * 1e6).round() / 1e6)))
        .collect();
    (chosen, rounded)
}

/// Computes the positioning table from segment_summary.
pub struct PositioningModel {
    cfg: PositioningConfig,
}

impl PositioningModel {
    /// The configured model.
    pub fn new(cfg: PositioningConfig) -> Self {
        Self { cfg }
    }
}

/// One output row: the summary row it describes, its evaluation and its scheme's choices.
struct Row {
    i: usize,
    e: Evaluated,
    note: Option<String>,
    x_axis: String,
    rule: usize,
}

impl Model for PositioningModel {
    fn name(&self) -> &'static str {
        "positioning"
    }
    fn inputs(&self) -> Vec<&'static str> {
        vec!["segment_summary"]
    }
    fn outputs(&self) -> Vec<&'static str> {
        vec!["positioning"]
    }

    fn run(&self, inputs: &ModelInputs) -> Result<ModelOutputs> {
        let cfg = &self.cfg;
        let t = Table::new("segment_summary", inputs.table("segment_summary"))?;
        for col in cfg.columns() {
            if !t.has(&col) {
                return Err(Error::config(
                    "pipeline.yaml",
                    format!("models.positioning: segment_summary has no column `{col}`"),
                ));
            }
        }
        let schemes = t.strings("scheme")?;
        let segments = t.strings("segment")?;
        let customers = t.i64("customers")?;
        let customers_f: Vec<Option<f64>> = customers.iter().map(|c| c.map(|v| v as f64)).collect();
        let y = t.f64(&cfg.y_axis)?;
        let share = t.f64("customer_share")?;
        let growth = t.f64("growth_vs_previous")?;
        let margin = t.f64("avg_margin")?;
        let clv = t.f64("avg_clv")?;
        let response = t.f64("response_rate")?;
        let profile: Vec<Vec<Option<f64>>> = cfg
            .distinctness_metrics
            .iter()
            .map(|m| t.f64(m))
            .collect::<Result<_>>()?;
        let rulebook = cfg.rulebook();
        // every numeric column a rule or the x axis may read, by name
        let mut metrics: BTreeMap<String, Vec<Option<f64>>> = BTreeMap::new();
        for col in cfg.columns() {
            metrics.insert(col.clone(), t.f64(&col)?);
        }
        for col in ["avg_margin", "avg_clv"] {
            metrics.insert(col.into(), t.f64(col)?);
        }
        // rows by scheme, segments in name order
        let mut by_scheme: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for i in 0..t.len() {
            by_scheme
                .entry(schemes.value(i).to_string())
                .or_default()
                .push(i);
        }
        let mut rows: Vec<Row> = Vec::with_capacity(t.len());
        let mut warnings = Vec::new();
        let mut report = serde_json::Map::new();
        for (scheme, mut idx) in by_scheme {
            idx.sort_by(|&a, &b| segments.value(a).cmp(segments.value(b)));
            let pick = |v: &[Option<f64>]| idx.iter().map(|&i| v[i]).collect::<Vec<_>>();
            let classified = |v: &[Option<f64>]| {
                idx.iter()
                    .filter(|&&i| segments.value(i) != UNCLASSIFIED)
                    .map(|&i| v[i])
                    .collect::<Vec<_>>()
            };
            let input = SchemeSegments {
                segments: idx.iter().map(|&i| segments.value(i).to_string()).collect(),
                customers: pick(&customers_f),
                customer_share: pick(&share),
                growth: pick(&growth),
                avg_margin: pick(&margin),
                avg_clv: pick(&clv),
                response: pick(&response),
                profile: profile.iter().map(|m| pick(m)).collect(),
            };
            let (evaluated, note) = evaluate(cfg, &input);
            if let Some(n) = &note {
                warnings.push(format!("positioning of scheme {scheme}: {n}"));
            }
            let candidates: Vec<(&str, Vec<Option<f64>>)> = cfg
                .x_axis_candidates
                .iter()
                .filter(|_| cfg.x_axis == AUTO)
                .map(|c| (c.as_str(), classified(&metrics[c])))
                .collect();
            let (x_axis, spreads) = choose_x_axis(cfg, &candidates);
            // the base of every metric: the customer-weighted mean over the scheme's segments
            let bases: BTreeMap<&str, Option<f64>> = metrics
                .iter()
                .map(|(m, v)| (m.as_str(), base(&pick(v), &input.customers)))
                .collect();
            let mut fired = serde_json::Map::new();
            for (&i, e) in idx.iter().zip(evaluated) {
                let value = |m: &str| metrics.get(m).and_then(|v| v[i]);
                let base_of = |m: &str| bases.get(m).copied().flatten();
                let p = Profile {
                    scheme: &scheme,
                    segment: segments.value(i),
                    value: &value,
                    base: &base_of,
                };
                let rule = rulebook
                    .iter()
                    .position(|r| r.matches(&p))
                    .unwrap_or(rulebook.len() - 1);
                fired.insert(
                    segments.value(i).to_string(),
                    serde_json::json!(rulebook[rule].label()),
                );
                rows.push(Row {
                    i,
                    e,
                    note: note.clone(),
                    x_axis: x_axis.clone(),
                    rule,
                });
            }
            let targets: Vec<String> = rows
                .iter()
                .filter(|r| schemes.value(r.i) == scheme && r.e.is_target)
                .map(|r| segments.value(r.i).to_string())
                .collect();
            report.insert(
                scheme.clone(),
                serde_json::json!({
                    "targets": targets,
                    "note": note,
                    "x_axis": x_axis,
                    "x_axis_spread": spreads,
                    "base": {"avg_clv": bases.get("avg_clv"), "avg_margin": bases.get("avg_margin")},
                    "strategy_rule": fired,
                }),
            );
        }
        let text = |k: usize| -> StringArray {
            rows.iter()
                .map(|r| rulebook[r.rule].mix()[k].clone())
                .collect()
        };
        let score =
            |k: usize| -> Float64Array { rows.iter().map(|r| Some(r.e.scores[k])).collect() };
        let value = |v: &[Option<f64>]| -> Float64Array { rows.iter().map(|r| v[r.i]).collect() };
        let x_values: Float64Array = rows
            .iter()
            .map(|r| metrics.get(&r.x_axis).and_then(|v| v[r.i]))
            .collect();
        let schema = Arc::new(Schema::new(vec![
            Field::new("scheme", DataType::Utf8, false),
            Field::new("segment", DataType::Utf8, false),
            Field::new("customers", DataType::Int64, true),
            Field::new("x_axis", DataType::Utf8, false),
            Field::new("x_value", DataType::Float64, true),
            Field::new("y_axis", DataType::Utf8, false),
            Field::new("y_value", DataType::Float64, true),
            Field::new("size_score", DataType::Float64, true),
            Field::new("growth_score", DataType::Float64, true),
            Field::new("profitability_score", DataType::Float64, true),
            Field::new("value_score", DataType::Float64, true),
            Field::new("distinctness_score", DataType::Float64, true),
            Field::new("response_score", DataType::Float64, true),
            Field::new("attractiveness", DataType::Float64, true),
            Field::new("below_base", DataType::Boolean, false),
            Field::new("is_target", DataType::Boolean, false),
            Field::new("target_rank", DataType::Int32, true),
            Field::new("product_strategy", DataType::Utf8, true),
            Field::new("price_strategy", DataType::Utf8, true),
            Field::new("channel_strategy", DataType::Utf8, true),
            Field::new("promotion_strategy", DataType::Utf8, true),
            Field::new("action", DataType::Utf8, true),
            Field::new("strategy_rule", DataType::Utf8, true),
            Field::new("note", DataType::Utf8, true),
        ]));
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(StringArray::from_iter_values(
                    rows.iter().map(|r| schemes.value(r.i)),
                )),
                Arc::new(StringArray::from_iter_values(
                    rows.iter().map(|r| segments.value(r.i)),
                )),
                Arc::new(rows.iter().map(|r| customers[r.i]).collect::<Int64Array>()),
                Arc::new(StringArray::from_iter_values(
                    rows.iter().map(|r| r.x_axis.as_str()),
                )),
                Arc::new(x_values),
                Arc::new(StringArray::from_iter_values(
                    rows.iter().map(|_| cfg.y_axis.as_str()),
                )),
                Arc::new(value(&y)),
                Arc::new(score(0)),
                Arc::new(score(1)),
                Arc::new(score(2)),
                Arc::new(score(3)),
                Arc::new(score(4)),
                Arc::new(score(5)),
                Arc::new(
                    rows.iter()
                        .map(|r| Some(r.e.attractiveness))
                        .collect::<Float64Array>(),
                ),
                Arc::new(
                    rows.iter()
                        .map(|r| Some(r.e.below_base))
                        .collect::<BooleanArray>(),
                ),
                Arc::new(
                    rows.iter()
                        .map(|r| Some(r.e.is_target))
                        .collect::<BooleanArray>(),
                ),
                Arc::new(rows.iter().map(|r| r.e.target_rank).collect::<Int32Array>()),
                Arc::new(text(0)),
                Arc::new(text(1)),
                Arc::new(text(2)),
                Arc::new(text(3)),
                Arc::new(text(4)),
                Arc::new(StringArray::from_iter_values(
                    rows.iter().map(|r| rulebook[r.rule].label()),
                )),
                Arc::new(rows.iter().map(|r| r.note.clone()).collect::<StringArray>()),
            ],
        )
        .map_err(|e| Error::Internal(format!("positioning: {e}")))?;
        Ok(ModelOutputs {
            tables: vec![("positioning".into(), vec![batch])],
            report: serde_json::Value::Object(report),
            warnings,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scheme(segments: &[&str], share: &[f64], margin: &[f64]) -> SchemeSegments {
        let n = segments.len();
        SchemeSegments {
            segments: segments.iter().map(|s| s.to_string()).collect(),
            customers: share.iter().map(|v| Some(v * 1000.0)).collect(),
            customer_share: share.iter().map(|v| Some(*v)).collect(),
            growth: vec![None; n],
            avg_margin: margin.iter().map(|v| Some(*v)).collect(),
            avg_clv: vec![None; n],
            response: vec![Some(0.1); n],
            profile: vec![margin.iter().map(|v| Some(*v)).collect()],
        }
    }

    /// The pre-issue-13 weighting: every component counts once, value not at all.
    fn equal_weights() -> PositioningConfig {
        PositioningConfig {
            weights: Weights {
                size: 1.0,
                growth: 1.0,
                profitability: 1.0,
                value: 0.0,
                distinctness: 1.0,
                response: 1.0,
            },
            ..PositioningConfig::default()
        }
    }

    #[test]
    fn scores_are_min_max_normalised_and_missing_inputs_are_neutral() {
        assert_eq!(
            normalise(&[Some(1.0), Some(3.0), Some(2.0)]),
            vec![0.0, 1.0, 0.5]
        );
        assert_eq!(normalise(&[None, None]), vec![0.5, 0.5]);
        assert_eq!(normalise(&[Some(2.0), Some(2.0)]), vec![0.5, 0.5]);
        assert_eq!(
            normalise(&[Some(1.0), None, Some(3.0)]),
            vec![0.0, 0.0, 1.0]
        );
    }

    #[test]
    fn top_n_targets_by_attractiveness_never_unclassified() {
        let cfg = equal_weights();
        let s = scheme(
            &["a", "b", "c", UNCLASSIFIED],
            &[0.3, 0.2, 0.1, 0.4],
            &[10.0, 50.0, 20.0, 0.0],
        );
        let (e, note) = evaluate(&cfg, &s);
        // b: most profitable and most distinct; a: largest
        assert_eq!(e[1].target_rank, Some(1));
        assert!(e[0].is_target || e[2].is_target);
        assert!(!e[3].is_target);
        assert_eq!(e.iter().filter(|x| x.is_target).count(), 2);
        assert!(note.is_none());
        // size: a = 1, c = 0 (min-max over the classified segments only)
        assert_eq!(e[0].scores[0], 1.0);
        assert_eq!(e[2].scores[0], 0.0);
        // growth and value unknown: neutral for all
        assert!(
            e.iter()
                .take(3)
                .all(|x| x.scores[1] == 0.5 && x.scores[3] == 0.5)
        );
        for x in e.iter().take(3) {
            let w = cfg.weights.as_array();
            let mean =
                x.scores.iter().zip(&w).map(|(s, w)| s * w).sum::<f64>() / w.iter().sum::<f64>();
            assert!((x.attractiveness - mean).abs() < 1e-12);
        }
    }

    #[test]
    fn a_segment_below_the_base_on_clv_and_margin_is_not_ranked_first() {
        // "light": the largest, most responsive, growing segment, but below the base on value
        // (the usage `light` of issue 13)
        let s = SchemeSegments {
            segments: vec!["heavy".into(), "light".into(), "medium".into()],
            customers: vec![Some(3782.0), Some(7562.0), Some(7562.0)],
            customer_share: vec![Some(0.19), Some(0.38), Some(0.38)],
            growth: vec![Some(0.028), Some(0.030), Some(0.029)],
            avg_margin: vec![Some(57.8), Some(11.4), Some(24.6)],
            avg_clv: vec![Some(80.0), Some(4.4), Some(15.3)],
            response: vec![Some(0.093), Some(0.098), Some(0.095)],
            profile: vec![vec![Some(80.0), Some(4.4), Some(15.3)]],
        };
        // equal weights without the rule: light wins on size, growth and response
        let mut cfg = equal_weights();
        cfg.below_base_last = false;
        let (e, _) = evaluate(&cfg, &s);
        assert_eq!(e[1].target_rank, Some(1), "{e:?}");
        assert!(e[1].below_base && !e[0].below_base);
        // the rule puts it after every segment that is not below the base
        cfg.below_base_last = true;
        let (e, _) = evaluate(&cfg, &s);
        assert_ne!(e[1].target_rank, Some(1), "{e:?}");
        assert_eq!(e[0].target_rank, Some(1), "{e:?}");
        // and the default weights alone rank heavy first
        let cfg = PositioningConfig {
            below_base_last: false,
            ..PositioningConfig::default()
        };
        let (e, _) = evaluate(&cfg, &s);
        assert_eq!(e[0].target_rank, Some(1), "{e:?}");
    }

    #[test]
    fn too_broad_and_too_narrow_are_noted() {
        let mut cfg = PositioningConfig {
            top_n: 5,
            ..PositioningConfig::default()
        };
        let s = scheme(&["a", "b"], &[0.5, 0.5], &[1.0, 2.0]);
        assert!(evaluate(&cfg, &s).1.unwrap().contains("too broad"));
        cfg.target_mode = TargetMode::Threshold;
        cfg.min_attractiveness = 1.0;
        assert!(evaluate(&cfg, &s).1.unwrap().contains("too narrow"));
        // unprofitable segments are not eligible
        cfg.target_mode = TargetMode::TopN;
        cfg.top_n = 2;
        let loss = scheme(&["a", "b"], &[0.5, 0.5], &[-1.0, 2.0]);
        let (e, _) = evaluate(&cfg, &loss);
        assert!(!e[0].is_target && e[1].is_target);
        // tiny segments are not eligible
        cfg.top_n = 1;
        cfg.min_customer_share = 0.6;
        assert!(evaluate(&cfg, &s).1.unwrap().contains("too narrow"));
    }

    #[test]
    fn auto_x_axis_takes_the_candidate_that_spreads_the_segments() {
        let cfg = PositioningConfig::default();
        let flat = vec![Some(0.91), Some(0.915), Some(0.92)];
        let wide = vec![Some(18.0), Some(35.0), Some(98.0)];
        let (x, spreads) = choose_x_axis(
            &cfg,
            &[("avg_price_index", flat.clone()), ("avg_order_value", wide)],
        );
        assert_eq!(x, "avg_order_value");
        assert!(spreads["avg_order_value"].unwrap() > spreads["avg_price_index"].unwrap());
        // nothing to compare: the first candidate
        let (x, _) = choose_x_axis(&cfg, &[("avg_order_value", vec![Some(1.0)])]);
        assert_eq!(x, "avg_price_index");
        // a fixed axis is kept
        let fixed = PositioningConfig {
            x_axis: "avg_price_index".into(),
            ..PositioningConfig::default()
        };
        assert_eq!(choose_x_axis(&fixed, &[]).0, "avg_price_index");
        assert_eq!(
            base(&[Some(1.0), Some(4.0)], &[Some(3.0), Some(1.0)]),
            Some(1.75)
        );
    }

    #[test]
    fn a_rule_without_a_whole_mix_is_a_configuration_error() {
        let cfg = PositioningConfig {
            strategies: serde_yaml_ng::from_str("- {segments: [a], action: x}").unwrap(),
            ..PositioningConfig::default()
        };
        let err = cfg.validate().unwrap_err();
        assert!(
            err.starts_with("strategies[0]: rule `a` has no product"),
            "{err}"
        );
        assert!(PositioningConfig::default().validate().is_ok());
    }
}
