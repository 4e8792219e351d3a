//! Value tiers and current-value classes (docs/segments.md).
//!
//! Value tier, "by frequency and amount": among customers with purchases, `high` when revenue
//! is at or above the `high_revenue_quantile` of buyers' revenue and orders are at least
//! `high_min_orders`; `medium` when revenue is at or above the `medium_revenue_quantile`;
//! otherwise `potential`. Customers without purchases are `potential` too (no value yet).
//!
//! Current-value class, by profit contribution: `negative` when margin is below zero (kept, not
//! clipped: "30% of customers have negative profit"), `high` when margin is at or above the
//! `high_margin_quantile` of the positive margins, otherwise `low`; `unclassified` when the
//! margin is unknown (order lines without cost). Quantiles are nearest-rank over sorted values,
//! so they are exact and deterministic.

use serde::Deserialize;

use super::{CustomerView, SchemeOutput, UNCLASSIFIED, quantile};
use crate::error::Result;

/// Settings of the value-tier and current-value schemes (`models.value_tiers`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ValueTierConfig {
    /// Buyers' revenue quantile at or above which a customer can be `high`.
    pub high_revenue_quantile: f64,
    /// Buyers' revenue quantile at or above which a customer is at least `medium`.
    pub medium_revenue_quantile: f64,
    /// Orders a `high` customer needs at least.
    pub high_min_orders: i64,
    /// Positive-margin quantile at or above which the current value is `high`.
    pub high_margin_quantile: f64,
}

impl Default for ValueTierConfig {
    fn default() -> Self {
        Self {
            high_revenue_quantile: 0.8,
            medium_revenue_quantile: 0.4,
            high_min_orders: 2,
            high_margin_quantile: 0.8,
        }
    }
}

impl ValueTierConfig {
    /// Quantiles in [0, 1], medium below high.
    pub fn validate(&self) -> std::result::Result<(), String> {
        for (k, v) in [
            ("high_revenue_quantile", self.high_revenue_quantile),
            ("medium_revenue_quantile", self.medium_revenue_quantile),
            ("high_margin_quantile", self.high_margin_quantile),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return Err(format!("{k} must be in [0, 1], got {v}"));
            }
        }
        if self.medium_revenue_quantile > self.high_revenue_quantile {
            return Err("medium_revenue_quantile must not exceed high_revenue_quantile".into());
        }
        Ok(())
    }
}

/// The value tier of each customer from revenue and orders.
pub fn value_tiers(
    cfg: &ValueTierConfig,
    revenue: &[Option<f64>],
    orders: &[Option<i64>],
) -> Vec<String> {
    let mut buyers: Vec<f64> = revenue
        .iter()
        .zip(orders)
        .filter(|(_, o)| o.unwrap_or(0) > 0)
        .filter_map(|(r, _)| *r)
        .collect();
    buyers.sort_by(f64::total_cmp);
    let high = quantile(&buyers, cfg.high_revenue_quantile);
    let medium = quantile(&buyers, cfg.medium_revenue_quantile);
    revenue
        .iter()
        .zip(orders)
        .map(|(r, o)| {
            let (r, o) = (r.unwrap_or(0.0), o.unwrap_or(0));
            let tier = match (high, medium) {
                _ if o == 0 => "potential",
                (Some(h), _) if r >= h && o >= cfg.high_min_orders => "high",
                (_, Some(m)) if r >= m => "medium",
                _ => "potential",
            };
            tier.to_string()
        })
        .collect()
}

/// The current-value class of each customer from margin.
pub fn current_value_classes(cfg: &ValueTierConfig, margin: &[Option<f64>]) -> Vec<String> {
    let mut positive: Vec<f64> = margin
        .iter()
        .flatten()
        .copied()
        .filter(|m| *m > 0.0)
        .collect();
    positive.sort_by(f64::total_cmp);
    let high = quantile(&positive, cfg.high_margin_quantile);
    margin
        .iter()
        .map(|m| {
            match (m, high) {
                (None, _) => UNCLASSIFIED,
                (Some(m), _) if *m < 0.0 => "negative",
                (Some(m), Some(h)) if *m > 0.0 && *m >= h => "high",
                _ => "low",
            }
            .to_string()
        })
        .collect()
}

/// Computes value_tier.
pub fn assign_value_tier(cfg: &ValueTierConfig, view: &CustomerView) -> Result<SchemeOutput> {
    let labels = value_tiers(cfg, &view.f64("revenue")?, &view.orders);
    let mut out = SchemeOutput::new("value_tier");
    out.set_label("value_tier", labels);
    out.report = serde_json::json!({
        "high_revenue_quantile": cfg.high_revenue_quantile,
        "medium_revenue_quantile": cfg.medium_revenue_quantile,
        "high_min_orders": cfg.high_min_orders,
    });
    Ok(out)
}

/// Computes current_value_class.
pub fn assign_current_value(cfg: &ValueTierConfig, view: &CustomerView) -> Result<SchemeOutput> {
    let labels = current_value_classes(cfg, &view.f64("margin")?);
    let mut out = SchemeOutput::new("current_value");
    out.set_label("current_value_class", labels);
    out.report = serde_json::json!({"high_margin_quantile": cfg.high_margin_quantile});
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiers_by_amount_and_frequency() {
        let cfg = ValueTierConfig::default();
        // five buyers with revenue 10..50 and one prospect
        let revenue = [
            Some(10.0),
            Some(20.0),
            Some(30.0),
            Some(40.0),
            Some(50.0),
            Some(0.0),
        ];
        let orders = [Some(1), Some(1), Some(2), Some(3), Some(1), Some(0)];
        // P80 (nearest rank 4 of 5) = 40, P40 (rank 2) = 20
        let t = value_tiers(&cfg, &revenue, &orders);
        assert_eq!(
            t,
            vec![
                "potential",
                "medium",
                "medium",
                "high",
                "medium",
                "potential"
            ]
        );
        // 50 is above P80 but bought once: not high
    }

    #[test]
    fn negative_margins_are_kept_and_unknown_margins_unclassified() {
        let cfg = ValueTierConfig::default();
        let margin = [
            Some(-5.0),
            Some(0.0),
            Some(10.0),
            Some(20.0),
            Some(30.0),
            None,
        ];
        // positive margins 10, 20, 30: P80 nearest rank 3 = 30
        let c = current_value_classes(&cfg, &margin);
        assert_eq!(
            c,
            vec!["negative", "low", "low", "low", "high", "unclassified"]
        );
    }

    #[test]
    fn ties_at_the_threshold_share_the_tier() {
        let cfg = ValueTierConfig::default();
        let revenue = [Some(5.0); 4];
        let orders = [Some(2); 4];
        assert!(
            value_tiers(&cfg, &revenue, &orders)
                .iter()
                .all(|t| t == "high")
        );
    }
}
