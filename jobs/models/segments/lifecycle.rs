//! Lifecycle stage (docs/segments.md): prospect, new, active, mature, at-risk, lost
//! and reactivated. The documents name the stages without rules; these are ours, every
//! threshold in `models.lifecycle`, applied in this order (first match wins):
//!
//! 1. `prospect`: no completed order yet.
//! 2. `reactivated`: bought in this period after at least `reactivation_gap_days` without a
//!    purchase before the period started.
//! 3. `new`: first purchase at most `new_days` before the as-of date.
//! 4. `lost`: no purchase for more than `lost_days`, or P(alive) below `lost_p_alive` when the
//!    CLV model converged.
//! 5. `at-risk`: a repeat buyer silent for more than `at_risk_gap_multiple` times their own
//!    typical gap between purchase days ((last - first) / repeat purchase days), or a one-time
//!    buyer silent for more than `at_risk_days`.
//! 6. `mature`: at least `mature_min_orders` orders over at least `mature_min_days`.
//! 7. `active`: everyone else who has bought.

use serde::Deserialize;

use super::{CustomerView, SchemeOutput};
use crate::error::Result;

/// Settings of the lifecycle scheme (`models.lifecycle`).
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LifecycleConfig {
    /// Days since the first purchase within which a customer is new.
    pub new_days: f64,
    /// Days without a purchase after which a customer is lost.
    pub lost_days: f64,
    /// P(alive) below which a customer is lost (used when the CLV model converged).
    pub lost_p_alive: f64,
    /// A repeat buyer is at risk when silent for this many typical gaps.
    pub at_risk_gap_multiple: f64,
    /// A one-time buyer is at risk when silent for this many days.
    pub at_risk_days: f64,
    /// Orders a mature customer has at least.
    pub mature_min_orders: i64,
    /// Days since the first purchase a mature customer has at least.
    pub mature_min_days: f64,
    /// Days without a purchase before this period that make a purchase in it a reactivation.
    pub reactivation_gap_days: f64,
}

impl Default for LifecycleConfig {
    fn default() -> Self {
        Self {
            new_days: 90.0,
            lost_days: 365.0,
            lost_p_alive: 0.1,
            at_risk_gap_multiple: 2.0,
            at_risk_days: 180.0,
            mature_min_orders: 5,
            mature_min_days: 365.0,
            reactivation_gap_days: 180.0,
        }
    }
}

impl LifecycleConfig {
    /// Non-negative thresholds; P(alive) in [0, 1].
    pub fn validate(&self) -> std::result::Result<(), String> {
        let days = [
            self.new_days,
            self.lost_days,
            self.at_risk_days,
            self.mature_min_days,
            self.reactivation_gap_days,
        ];
        if days.iter().any(|d| d.is_nan() || *d < 0.0)
            || self.at_risk_gap_multiple.is_nan()
            || self.at_risk_gap_multiple <= 0.0
        {
            return Err(
                "day thresholds must be non-negative and at_risk_gap_multiple positive".into(),
            );
        }
        if !(0.0..=1.0).contains(&self.lost_p_alive) {
            return Err("lost_p_alive must be in [0, 1]".into());
        }
        Ok(())
    }
}

/// One customer's lifecycle inputs (days are calendar days up to the as-of date).
#[derive(Debug, Clone, Copy, Default)]
pub struct LifecycleInputs {
    /// Completed orders to date.
    pub orders: i64,
    /// Repeat purchase days.
    pub frequency: f64,
    /// Days since the last purchase.
    pub recency_days: Option<f64>,
    /// Days since the first purchase.
    pub days_since_first: Option<f64>,
    /// Completed orders in the period.
    pub period_orders: i64,
    /// Days between the last purchase before the period and the period's start.
    pub gap_before_period: Option<f64>,
    /// P(alive) when the model converged.
    pub p_alive: Option<f64>,
}

/// The stage of one customer.
pub fn stage(cfg: &LifecycleConfig, c: &LifecycleInputs) -> &'static str {
    if c.orders <= 0 {
        return "prospect";
    }
    let recency = c.recency_days.unwrap_or(0.0);
    let since_first = c.days_since_first.unwrap_or(0.0);
    if c.period_orders > 0
        && c.gap_before_period
            .is_some_and(|g| g >= cfg.reactivation_gap_days)
    {
        return "reactivated";
    }
    if since_first <= cfg.new_days {
        return "new";
    }
    if recency > cfg.lost_days || c.p_alive.is_some_and(|p| p < cfg.lost_p_alive) {
        return "lost";
    }
    let at_risk = if c.frequency > 0.0 {
        let typical_gap = (since_first - recency) / c.frequency;
        recency > cfg.at_risk_gap_multiple * typical_gap
    } else {
        recency > cfg.at_risk_days
    };
    if at_risk {
        return "at-risk";
    }
    if c.orders >= cfg.mature_min_orders && since_first >= cfg.mature_min_days {
        return "mature";
    }
    "active"
}

/// Computes lifecycle_stage.
pub fn assign(cfg: &LifecycleConfig, view: &CustomerView) -> Result<SchemeOutput> {
    let frequency = view.f64("frequency")?;
    let recency = view.f64("recency_days")?;
    let since_first = view.f64("days_since_first_order")?;
    let period_orders = view.f64("period_orders")?;
    let gap = view.f64("days_without_purchase_before_period")?;
    let p_alive = view.f64("p_alive")?;
    let methods = view.strings("clv_method")?;
    let labels: Vec<&str> = (0..view.len())
        .map(|i| {
            let c = LifecycleInputs {
                orders: view.orders[i].unwrap_or(0),
                frequency: frequency[i].unwrap_or(0.0),
                recency_days: recency[i],
                days_since_first: since_first[i],
                period_orders: period_orders[i].unwrap_or(0.0) as i64,
                gap_before_period: gap[i],
                p_alive: if methods[i].as_deref() == Some("model") {
                    p_alive[i]
                } else {
                    None
                },
            };
            stage(cfg, &c)
        })
        .collect();
    let mut out = SchemeOutput::new("lifecycle");
    out.set_label("lifecycle_stage", labels);
    out.report = serde_json::to_value(cfg).unwrap_or_default();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(orders: i64, frequency: f64, recency: f64, since_first: f64) -> LifecycleInputs {
        LifecycleInputs {
            orders,
            frequency,
            recency_days: Some(recency),
            days_since_first: Some(since_first),
            ..Default::default()
        }
    }

    #[test]
    fn stages_by_hand() {
        let cfg = LifecycleConfig::default();
        assert_eq!(stage(&cfg, &LifecycleInputs::default()), "prospect");
        assert_eq!(stage(&cfg, &c(1, 0.0, 30.0, 30.0)), "new");
        assert_eq!(stage(&cfg, &c(1, 0.0, 400.0, 400.0)), "lost");
        assert_eq!(stage(&cfg, &c(1, 0.0, 200.0, 200.0)), "at-risk");
        assert_eq!(stage(&cfg, &c(1, 0.0, 100.0, 100.0)), "active");
        // bought every 30 days for 300 days, silent for 70 days (> 2 x 30): at risk
        assert_eq!(stage(&cfg, &c(11, 10.0, 70.0, 370.0)), "at-risk");
        // the same customer silent for 20 days: mature (11 orders over a year)
        assert_eq!(stage(&cfg, &c(11, 10.0, 20.0, 400.0)), "mature");
        let mut back = c(3, 2.0, 5.0, 700.0);
        back.period_orders = 1;
        back.gap_before_period = Some(300.0);
        assert_eq!(stage(&cfg, &back), "reactivated");
        let mut doomed = c(3, 2.0, 20.0, 400.0);
        doomed.p_alive = Some(0.05);
        assert_eq!(stage(&cfg, &doomed), "lost");
    }
}
