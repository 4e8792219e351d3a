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

mod config;
pub mod strategies;

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::array::{
    BooleanArray, Float64Array, Int32Array, Int64Array, RecordBatch, StringArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema};

pub use self::config::{AUTO, PositioningConfig, TargetMode, Weights};
pub use self::strategies::{Condition, Profile, StrategyRule, default_rules};
use super::segments::UNCLASSIFIED;
use super::table::Table;
use super::{Model, ModelInputs, ModelOutputs};
use crate::error::{Error, Result};

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
mod tests;
