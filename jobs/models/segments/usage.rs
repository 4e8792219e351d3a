//! Usage-rate tiers (docs/segments.md): light / medium / heavy users.
//!
//! The usage rate is completed orders per 365 days since the first purchase, the observation
//! window floored at `min_observation_days` so a customer whose first order was yesterday does
//! not look like the heaviest user. Among customers with purchases, `heavy` at or above the
//! `heavy_quantile` of rates, `medium` at or above the `medium_quantile`, otherwise `light`.
//! Customers without purchases have no usage and are `unclassified`.

use serde::Deserialize;

use super::{CustomerView, SchemeOutput, UNCLASSIFIED, quantile};
use crate::error::Result;

/// Settings of the usage-tier scheme (`models.usage`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UsageConfig {
    /// Rate quantile at or above which a buyer is `heavy`.
    pub heavy_quantile: f64,
    /// Rate quantile at or above which a buyer is at least `medium`.
    pub medium_quantile: f64,
    /// Shortest observation window, in days.
    pub min_observation_days: f64,
}

impl Default for UsageConfig {
    fn default() -> Self {
        Self {
            heavy_quantile: 0.8,
            medium_quantile: 0.4,
            min_observation_days: 90.0,
        }
    }
}

impl UsageConfig {
    /// Quantiles in [0, 1] with medium below heavy; a positive window.
    pub fn validate(&self) -> std::result::Result<(), String> {
        if !(0.0..=1.0).contains(&self.heavy_quantile)
            || !(0.0..=1.0).contains(&self.medium_quantile)
        {
            return Err("heavy_quantile and medium_quantile must be in [0, 1]".into());
        }
        if self.medium_quantile > self.heavy_quantile {
            return Err("medium_quantile must not exceed heavy_quantile".into());
        }
        if self.min_observation_days.is_nan() || self.min_observation_days <= 0.0 {
            return Err("min_observation_days must be positive".into());
        }
        Ok(())
    }
}

/// Orders per 365 days since the first purchase (None without purchases).
pub fn usage_rates(
    cfg: &UsageConfig,
    orders: &[Option<i64>],
    days_since_first: &[Option<f64>],
) -> Vec<Option<f64>> {
    orders
        .iter()
        .zip(days_since_first)
        .map(|(o, d)| match (o, d) {
            (Some(o), Some(d)) if *o > 0 => {
                Some(*o as f64 * 365.0 / d.max(cfg.min_observation_days))
            }
            _ => None,
        })
        .collect()
}

/// The usage tier of each rate.
pub fn usage_tiers(cfg: &UsageConfig, rates: &[Option<f64>]) -> Vec<String> {
    let mut sorted: Vec<f64> = rates.iter().flatten().copied().collect();
    sorted.sort_by(f64::total_cmp);
    let (heavy, medium) = (
        quantile(&sorted, cfg.heavy_quantile),
        quantile(&sorted, cfg.medium_quantile),
    );
    rates
        .iter()
        .map(|r| {
            match (r, heavy, medium) {
                (None, _, _) => UNCLASSIFIED,
                (Some(r), Some(h), _) if *r >= h => "heavy",
                (Some(r), _, Some(m)) if *r >= m => "medium",
                _ => "light",
            }
            .to_string()
        })
        .collect()
}

/// Computes usage_rate and usage_tier.
pub fn assign(cfg: &UsageConfig, view: &CustomerView) -> Result<SchemeOutput> {
    let rates = usage_rates(cfg, &view.orders, &view.f64("days_since_first_order")?);
    let labels = usage_tiers(cfg, &rates);
    let mut out = SchemeOutput::new("usage");
    out.push_f64("usage_rate", rates);
    out.set_label("usage_tier", labels);
    out.report = serde_json::json!({
        "heavy_quantile": cfg.heavy_quantile,
        "medium_quantile": cfg.medium_quantile,
        "min_observation_days": cfg.min_observation_days,
    });
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_use_a_floored_window_and_skip_non_buyers() {
        let cfg = UsageConfig::default();
        let r = usage_rates(
            &cfg,
            &[Some(2), Some(2), Some(0), None],
            &[Some(730.0), Some(1.0), Some(10.0), None],
        );
        // 2 orders in two years = 1 a year; 2 orders on day 1 count over the 90-day floor
        assert_eq!(r[0], Some(1.0));
        assert!((r[1].unwrap() - 2.0 * 365.0 / 90.0).abs() < 1e-12);
        assert_eq!(r[2], None);
        assert_eq!(r[3], None);
    }

    #[test]
    fn tiers_by_rate_quantiles() {
        let cfg = UsageConfig::default();
        let rates = [Some(1.0), Some(2.0), Some(3.0), Some(4.0), Some(5.0), None];
        // P80 = 4 (rank 4 of 5), P40 = 2 (rank 2 of 5)
        assert_eq!(
            usage_tiers(&cfg, &rates),
            vec![
                "light",
                "medium",
                "medium",
                "heavy",
                "heavy",
                "unclassified"
            ]
        );
    }
}
