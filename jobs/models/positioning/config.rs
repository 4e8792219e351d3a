//! The settings of positioning (`models.positioning` in pipeline.yaml): the map's axes, the
//! score weights, the target rule and the strategy rulebook, with their defaults (one home: the
//! `Default` impls) and range checks.

use serde::Deserialize;

use super::strategies::{StrategyRule, default_rules};

/// Weights of the component scores in the attractiveness score.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Weights {
    /// Customer share.
    pub size: f64,
    /// Growth versus the previous period.
    pub growth: f64,
    /// Margin per customer.
    pub profitability: f64,
    /// Average CLV.
    pub value: f64,
    /// Distinct profile.
    pub distinctness: f64,
    /// Campaign response.
    pub response: f64,
}

impl Default for Weights {
    fn default() -> Self {
        Self {
            size: 1.0,
            growth: 0.5,
            profitability: 2.0,
            value: 2.0,
            distinctness: 0.5,
            response: 0.5,
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
#[serde(default, deny_unknown_fields)]
pub struct PositioningConfig {
    /// segment_summary column on the map's x axis, or `auto`.
    pub x_axis: String,
    /// The columns `auto` chooses from, in order of preference on ties.
    pub x_axis_candidates: Vec<String>,
    /// segment_summary column on the map's y axis.
    pub y_axis: String,
    /// Component weights.
    pub weights: Weights,
    /// segment_summary columns whose standardised profile measures distinctness.
    pub distinctness_metrics: Vec<String>,
    /// top_n or threshold.
    pub target_mode: TargetMode,
    /// Targets per scheme in top_n mode.
    pub top_n: usize,
    /// Attractiveness at or above which a segment is a target in threshold mode.
    pub min_attractiveness: f64,
    /// Smallest customer share a target may have.
    pub min_customer_share: f64,
    /// A target's margin per customer must exceed this (unprofitable segments are not targets).
    pub min_avg_margin: f64,
    /// Segments below the base on both average CLV and margin rank after all others.
    pub below_base_last: bool,
    /// The strategy rulebook, first match wins; the built-in defaults follow it.
    pub strategies: Vec<StrategyRule>,
}

impl Default for PositioningConfig {
    fn default() -> Self {
        Self {
            x_axis: AUTO.into(),
            x_axis_candidates: [
                "avg_price_index",
                "avg_order_value",
                "avg_discount_line_share",
                "avg_premium_line_share",
                "avg_new_product_line_share",
            ]
            .map(String::from)
            .to_vec(),
            y_axis: "avg_clv".into(),
            weights: Weights::default(),
            distinctness_metrics: [
                "avg_order_value",
                "repeat_purchase_rate",
                "avg_clv",
                "avg_price_index",
                "response_rate",
                "complaint_rate",
            ]
            .map(String::from)
            .to_vec(),
            target_mode: TargetMode::TopN,
            top_n: 2,
            min_attractiveness: 0.6,
            min_customer_share: 0.02,
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
    pub(super) fn columns(&self) -> Vec<String> {
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
