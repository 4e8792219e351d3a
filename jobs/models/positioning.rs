//! Market positioning (DOMAIN.md section 7): evaluate each scheme's segments as target markets,
//! choose targets and attach a marketing mix from a configurable rulebook. Reads segment_summary,
//! writes `positioning` (one row per scheme and segment).
//!
//! Per scheme, over its classified segments (`unclassified` is never a target):
//! - the positioning map: `x_axis` and `y_axis` name segment_summary columns (default the price
//!   level paid relative to list price, and the average CLV); both names are recorded per row;
//! - component scores, each min-max normalised to 0-1 across the scheme's segments (0.5 for all
//!   when the segments do not differ or the input is missing): size (customer share), growth
//!   (growth versus the previous period), profitability (margin per customer), distinctness (the
//!   distance of the segment's standardised profile over `distinctness_metrics` from the scheme's
//!   average segment) and response (campaign response rate);
//! - attractiveness = the weighted mean of the scores (`weights`);
//! - targets: the `top_n` most attractive segments, or those at or above `min_attractiveness`
//!   (`target_mode`), among segments holding at least `min_customer_share` of customers and
//!   earning more than `min_avg_margin` per customer (unknown margin: eligible). Choosing
//!   every segment (too broad) or none (too narrow) is the documents' named failure: it is kept
//!   but written in `note` and raised as a run warning;
//! - strategies: the first rule of `strategies` matching the scheme and segment gives product,
//!   price, channel, promotion and action.

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::array::{
    BooleanArray, Float64Array, Int32Array, Int64Array, RecordBatch, StringArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use serde::Deserialize;

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
    #[serde(default = "one")]
    pub growth: f64,
    /// Margin per customer.
    #[serde(default = "one")]
    pub profitability: f64,
    /// Distinct profile.
    #[serde(default = "one")]
    pub distinctness: f64,
    /// Campaign response.
    #[serde(default = "one")]
    pub response: f64,
}

fn one() -> f64 {
    1.0
}

impl Default for Weights {
    fn default() -> Self {
        Self {
            size: 1.0,
            growth: 1.0,
            profitability: 1.0,
            distinctness: 1.0,
            response: 1.0,
        }
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

/// One strategy rule: matches a scheme (any when absent) and segments (`"*"` for any).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StrategyRule {
    /// The scheme it applies to (any when absent).
    #[serde(default)]
    pub scheme: Option<String>,
    /// The segments it applies to.
    pub segments: Vec<String>,
    /// Product strategy.
    #[serde(default)]
    pub product: Option<String>,
    /// Price strategy.
    #[serde(default)]
    pub price: Option<String>,
    /// Channel strategy.
    #[serde(default)]
    pub channel: Option<String>,
    /// Promotion strategy.
    #[serde(default)]
    pub promotion: Option<String>,
    /// The action.
    #[serde(default)]
    pub action: Option<String>,
}

impl StrategyRule {
    fn matches(&self, scheme: &str, segment: &str) -> bool {
        self.scheme.as_deref().is_none_or(|s| s == scheme)
            && self.segments.iter().any(|s| s == "*" || s == segment)
    }
}

/// Settings of positioning (`models.positioning`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PositioningConfig {
    /// segment_summary column on the map's x axis.
    #[serde(default = "default_x")]
    pub x_axis: String,
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
    /// The strategy rulebook, first match wins.
    #[serde(default)]
    pub strategies: Vec<StrategyRule>,
}

fn default_x() -> String {
    "avg_price_index".into()
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

impl Default for PositioningConfig {
    fn default() -> Self {
        Self {
            x_axis: default_x(),
            y_axis: default_y(),
            weights: Weights::default(),
            distinctness_metrics: default_distinct(),
            target_mode: default_mode(),
            top_n: default_top_n(),
            min_attractiveness: default_min_attr(),
            min_customer_share: default_min_share(),
            min_avg_margin: 0.0,
            strategies: Vec::new(),
        }
    }
}

impl PositioningConfig {
    /// Non-negative weights with a positive sum, sensible target settings.
    pub fn validate(&self) -> std::result::Result<(), String> {
        let w = &self.weights;
        let all = [
            w.size,
            w.growth,
            w.profitability,
            w.distinctness,
            w.response,
        ];
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
        if let Some((i, _)) = self
            .strategies
            .iter()
            .enumerate()
            .find(|(_, r)| r.segments.is_empty())
        {
            return Err(format!("strategies[{i}]: segments must not be empty"));
        }
        Ok(())
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

/// One segment's evaluation.
#[derive(Debug, Clone, Default)]
pub struct Evaluated {
    /// Component scores: size, growth, profitability, distinctness, response.
    pub scores: [f64; 5],
    /// Weighted mean of the scores.
    pub attractiveness: f64,
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
    /// Customer shares.
    pub customer_share: Vec<Option<f64>>,
    /// Growth versus the previous period.
    pub growth: Vec<Option<f64>>,
    /// Margin per customer.
    pub avg_margin: Vec<Option<f64>>,
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
    let profile: Vec<Vec<Option<f64>>> = s.profile.iter().map(|m| pick(m)).collect();
    let distinct = normalise(&distinctness(&profile));
    let response = normalise(&pick(&s.response));
    let w = &cfg.weights;
    let weights = [
        w.size,
        w.growth,
        w.profitability,
        w.distinctness,
        w.response,
    ];
    let total: f64 = weights.iter().sum();
    let mut out = vec![Evaluated::default(); s.segments.len()];
    for (k, &i) in idx.iter().enumerate() {
        let scores = [size[k], growth[k], profit[k], distinct[k], response[k]];
        let attractiveness = scores.iter().zip(&weights).map(|(s, w)| s * w).sum::<f64>() / total;
        out[i] = Evaluated {
            scores,
            attractiveness,
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
    eligible.sort_by(|&a, &b| {
        out[b]
            .attractiveness
            .total_cmp(&out[a].attractiveness)
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
        for col in [&cfg.x_axis, &cfg.y_axis]
            .into_iter()
            .chain(&cfg.distinctness_metrics)
        {
            if !t.has(col) {
                return Err(Error::config(
                    "pipeline.yaml",
                    format!("models.positioning: segment_summary has no column `{col}`"),
                ));
            }
        }
        let schemes = t.strings("scheme")?;
        let segments = t.strings("segment")?;
        let customers = t.i64("customers")?;
        let (x, y) = (t.f64(&cfg.x_axis)?, t.f64(&cfg.y_axis)?);
        let share = t.f64("customer_share")?;
        let growth = t.f64("growth_vs_previous")?;
        let margin = t.f64("avg_margin")?;
        let response = t.f64("response_rate")?;
        let profile: Vec<Vec<Option<f64>>> = cfg
            .distinctness_metrics
            .iter()
            .map(|m| t.f64(m))
            .collect::<Result<_>>()?;
        // rows by scheme, segments in name order
        let mut by_scheme: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for i in 0..t.len() {
            by_scheme
                .entry(schemes.value(i).to_string())
                .or_default()
                .push(i);
        }
        let mut rows: Vec<(usize, Evaluated, Option<String>)> = Vec::with_capacity(t.len());
        let mut warnings = Vec::new();
        let mut report = serde_json::Map::new();
        for (scheme, mut idx) in by_scheme {
            idx.sort_by(|&a, &b| segments.value(a).cmp(segments.value(b)));
            let pick = |v: &[Option<f64>]| idx.iter().map(|&i| v[i]).collect::<Vec<_>>();
            let input = SchemeSegments {
                segments: idx.iter().map(|&i| segments.value(i).to_string()).collect(),
                customer_share: pick(&share),
                growth: pick(&growth),
                avg_margin: pick(&margin),
                response: pick(&response),
                profile: profile.iter().map(|m| pick(m)).collect(),
            };
            let (evaluated, note) = evaluate(cfg, &input);
            if let Some(n) = &note {
                warnings.push(format!("positioning of scheme {scheme}: {n}"));
            }
            report.insert(
                scheme.clone(),
                serde_json::json!({
                    "targets": idx.iter().zip(&evaluated).filter(|(_, e)| e.is_target)
                        .map(|(&i, _)| segments.value(i).to_string()).collect::<Vec<_>>(),
                    "note": note,
                }),
            );
            for (&i, e) in idx.iter().zip(evaluated) {
                rows.push((i, e, note.clone()));
            }
        }
        let rule = |i: usize| {
            cfg.strategies
                .iter()
                .find(|r| r.matches(schemes.value(i), segments.value(i)))
        };
        let text = |f: fn(&StrategyRule) -> &Option<String>| -> StringArray {
            rows.iter()
                .map(|(i, _, _)| rule(*i).and_then(|r| f(r).clone()))
                .collect()
        };
        let score =
            |k: usize| -> Float64Array { rows.iter().map(|(_, e, _)| Some(e.scores[k])).collect() };
        let value =
            |v: &[Option<f64>]| -> Float64Array { rows.iter().map(|(i, _, _)| v[*i]).collect() };
        let constant = |s: &str| StringArray::from_iter_values(rows.iter().map(|_| s));
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
            Field::new("distinctness_score", DataType::Float64, true),
            Field::new("response_score", DataType::Float64, true),
            Field::new("attractiveness", DataType::Float64, true),
            Field::new("is_target", DataType::Boolean, false),
            Field::new("target_rank", DataType::Int32, true),
            Field::new("product_strategy", DataType::Utf8, true),
            Field::new("price_strategy", DataType::Utf8, true),
            Field::new("channel_strategy", DataType::Utf8, true),
            Field::new("promotion_strategy", DataType::Utf8, true),
            Field::new("action", DataType::Utf8, true),
            Field::new("note", DataType::Utf8, true),
        ]));
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(StringArray::from_iter_values(
                    rows.iter().map(|(i, _, _)| schemes.value(*i)),
                )),
                Arc::new(StringArray::from_iter_values(
                    rows.iter().map(|(i, _, _)| segments.value(*i)),
                )),
                Arc::new(
                    rows.iter()
                        .map(|(i, _, _)| customers[*i])
                        .collect::<Int64Array>(),
                ),
                Arc::new(constant(&cfg.x_axis)),
                Arc::new(value(&x)),
                Arc::new(constant(&cfg.y_axis)),
                Arc::new(value(&y)),
                Arc::new(score(0)),
                Arc::new(score(1)),
                Arc::new(score(2)),
                Arc::new(score(3)),
                Arc::new(score(4)),
                Arc::new(
                    rows.iter()
                        .map(|(_, e, _)| Some(e.attractiveness))
                        .collect::<Float64Array>(),
                ),
                Arc::new(
                    rows.iter()
                        .map(|(_, e, _)| Some(e.is_target))
                        .collect::<BooleanArray>(),
                ),
                Arc::new(
                    rows.iter()
                        .map(|(_, e, _)| e.target_rank)
                        .collect::<Int32Array>(),
                ),
                Arc::new(text(|r| &r.product)),
                Arc::new(text(|r| &r.price)),
                Arc::new(text(|r| &r.channel)),
                Arc::new(text(|r| &r.promotion)),
                Arc::new(text(|r| &r.action)),
                Arc::new(
                    rows.iter()
                        .map(|(_, _, n)| n.clone())
                        .collect::<StringArray>(),
                ),
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
            customer_share: share.iter().map(|v| Some(*v)).collect(),
            growth: vec![None; n],
            avg_margin: margin.iter().map(|v| Some(*v)).collect(),
            response: vec![Some(0.1); n],
            profile: vec![margin.iter().map(|v| Some(*v)).collect()],
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
        let cfg = PositioningConfig::default();
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
        // growth unknown: neutral for all
        assert!(e.iter().take(3).all(|x| x.scores[1] == 0.5));
        for x in e.iter().take(3) {
            let mean = x.scores.iter().sum::<f64>() / 5.0;
            assert!((x.attractiveness - mean).abs() < 1e-12);
        }
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
    fn first_matching_strategy_rule_wins() {
        let rules: Vec<StrategyRule> = serde_yaml_ng::from_str(
            "- {scheme: value_tier, segments: [high], action: VIP}\n- {segments: ['*'], action: review}\n",
        )
        .unwrap();
        let find = |sc: &str, sg: &str| {
            rules
                .iter()
                .find(|r| r.matches(sc, sg))
                .and_then(|r| r.action.clone())
        };
        assert_eq!(find("value_tier", "high").as_deref(), Some("VIP"));
        assert_eq!(find("rfm", "high").as_deref(), Some("review"));
    }
}
