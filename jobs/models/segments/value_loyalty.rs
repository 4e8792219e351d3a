//! Value x loyalty classes (docs/segments.md): current value x potential value x
//! loyalty, each high (H) or low (L), eight classes.
//!
//! Among customers with purchases:
//! - current value is H when the customer's `current_basis` (margin or revenue to date) is at or
//!   above the `current_high_quantile` of buyers' values;
//! - potential value is H when the predicted CLV is at or above the `potential_high_quantile` of
//!   buyers' CLVs (the CLV column is the model's prediction, or the historical fallback when the
//!   fit did not converge; the run report records which);
//! - loyalty is H when the customer has at least `loyalty_min_orders` completed orders and is
//!   still engaged: P(alive) at least `loyalty_min_p_alive` when the CLV model converged for the
//!   customer, otherwise a last purchase at most `loyalty_max_recency_days` ago.
//!
//! The code is the three letters in that order ("HHH") and its name comes from configuration;
//! the documents describe three of the eight (HHH top customers, HLH maintain, LLH minimal
//! resources). Customers without purchases are `unclassified` (no value yet). Quantiles are
//! nearest-rank over sorted values: exact and deterministic.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{CustomerView, SchemeOutput, UNCLASSIFIED, quantile};
use crate::error::Result;

/// Settings of the value x loyalty scheme (`models.value_loyalty`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ValueLoyaltyConfig {
    /// The customer_features column measuring current value: `margin` or `revenue`.
    pub current_basis: String,
    /// Buyers' quantile at or above which current value is high.
    pub current_high_quantile: f64,
    /// Buyers' CLV quantile at or above which potential value is high.
    pub potential_high_quantile: f64,
    /// Completed orders a loyal customer has at least.
    pub loyalty_min_orders: i64,
    /// P(alive) a loyal customer has at least (when the CLV model converged).
    pub loyalty_min_p_alive: f64,
    /// Days since the last purchase a loyal customer has at most (without a converged model).
    pub loyalty_max_recency_days: f64,
    /// Names by code (current, potential, loyalty; H or L each).
    pub names: BTreeMap<String, String>,
}

/// Default class names; the first, fifth and seventh are the documents' own.
pub fn default_names() -> BTreeMap<String, String> {
    [
        ("HHH", "top customers"),
        ("HHL", "high value, not yet loyal"),
        ("HLH", "maintain"),
        ("HLL", "harvest"),
        ("LHH", "grow"),
        ("LHL", "develop"),
        ("LLH", "loyal, minimal resources"),
        ("LLL", "low priority"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

impl Default for ValueLoyaltyConfig {
    fn default() -> Self {
        Self {
            current_basis: "margin".into(),
            current_high_quantile: 0.5,
            potential_high_quantile: 0.5,
            loyalty_min_orders: 2,
            loyalty_min_p_alive: 0.5,
            loyalty_max_recency_days: 365.0,
            names: default_names(),
        }
    }
}

impl ValueLoyaltyConfig {
    /// A known basis, quantiles in [0, 1], a name for each of the eight codes.
    pub fn validate(&self) -> std::result::Result<(), String> {
        if !["margin", "revenue"].contains(&self.current_basis.as_str()) {
            return Err(format!(
                "current_basis must be margin or revenue, got {:?}",
                self.current_basis
            ));
        }
        for (k, v) in [
            ("current_high_quantile", self.current_high_quantile),
            ("potential_high_quantile", self.potential_high_quantile),
            ("loyalty_min_p_alive", self.loyalty_min_p_alive),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return Err(format!("{k} must be in [0, 1], got {v}"));
            }
        }
        for code in default_names().keys() {
            if !self.names.contains_key(code) {
                return Err(format!("names: no name for code {code}"));
            }
        }
        if let Some(k) = self
            .names
            .keys()
            .find(|k| !default_names().contains_key(*k))
        {
            return Err(format!(
                "names: unknown code {k:?}; codes are three letters H/L (current, potential, loyalty)"
            ));
        }
        Ok(())
    }
}

/// One buyer's inputs.
#[derive(Debug, Clone, Copy, Default)]
pub struct ValueLoyaltyInputs {
    /// Completed orders to date.
    pub orders: i64,
    /// Margin or revenue to date.
    pub current: Option<f64>,
    /// Predicted CLV.
    pub clv: Option<f64>,
    /// P(alive), only when the CLV model converged for the customer.
    pub p_alive: Option<f64>,
    /// Days since the last purchase.
    pub recency_days: Option<f64>,
}

/// The cut-offs of a population: (current, potential) high thresholds among buyers.
pub fn cutoffs(
    cfg: &ValueLoyaltyConfig,
    rows: &[ValueLoyaltyInputs],
) -> (Option<f64>, Option<f64>) {
    let sorted = |f: fn(&ValueLoyaltyInputs) -> Option<f64>| {
        let mut v: Vec<f64> = rows.iter().filter(|r| r.orders > 0).filter_map(f).collect();
        v.sort_by(f64::total_cmp);
        v
    };
    (
        quantile(&sorted(|r| r.current), cfg.current_high_quantile),
        quantile(&sorted(|r| r.clv), cfg.potential_high_quantile),
    )
}

/// The code of one customer (None: no purchases or value unknown).
pub fn code(
    cfg: &ValueLoyaltyConfig,
    cut: (Option<f64>, Option<f64>),
    c: &ValueLoyaltyInputs,
) -> Option<[u8; 3]> {
    if c.orders <= 0 {
        return None;
    }
    let hl = |high: bool| if high { b'H' } else { b'L' };
    let current = hl(c.current? >= cut.0?);
    let potential = hl(c.clv? >= cut.1?);
    let engaged = match c.p_alive {
        Some(p) => p >= cfg.loyalty_min_p_alive,
        None => c
            .recency_days
            .is_some_and(|d| d <= cfg.loyalty_max_recency_days),
    };
    let loyalty = hl(c.orders >= cfg.loyalty_min_orders && engaged);
    Some([current, potential, loyalty])
}

/// Computes value_loyalty_code and value_loyalty_class.
pub fn assign(cfg: &ValueLoyaltyConfig, view: &CustomerView) -> Result<SchemeOutput> {
    let current = view.f64(&cfg.current_basis)?;
    let clv = view.f64("clv")?;
    let p_alive = view.f64("p_alive")?;
    let recency = view.f64("recency_days")?;
    let methods = view.strings("clv_method")?;
    let rows: Vec<ValueLoyaltyInputs> = (0..view.len())
        .map(|i| ValueLoyaltyInputs {
            orders: view.orders[i].unwrap_or(0),
            current: current[i],
            clv: clv[i],
            p_alive: (methods[i].as_deref() == Some("model"))
                .then_some(p_alive[i])
                .flatten(),
            recency_days: recency[i],
        })
        .collect();
    let cut = cutoffs(cfg, &rows);
    let mut codes = Vec::with_capacity(rows.len());
    let mut labels = Vec::with_capacity(rows.len());
    for r in &rows {
        match code(cfg, cut, r) {
            Some(c) => {
                let c = String::from_utf8_lossy(&c).into_owned();
                labels.push(cfg.names[&c].as_str());
                codes.push(Some(c));
            }
            None => {
                labels.push(UNCLASSIFIED);
                codes.push(None);
            }
        }
    }
    let model_share = if rows.is_empty() {
        0.0
    } else {
        methods
            .iter()
            .filter(|m| m.as_deref() == Some("model"))
            .count() as f64
            / rows.len() as f64
    };
    let mut out = SchemeOutput::new("value_loyalty");
    out.why_unclassified = "no purchases (or value unknown)".into();
    out.push_str("value_loyalty_code", codes);
    out.set_label("value_loyalty_class", labels);
    out.report = serde_json::json!({
        "current_basis": cfg.current_basis,
        "current_high_cutoff": cut.0,
        "potential_high_cutoff": cut.1,
        "potential_from_model_share": model_share,
    });
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(
        orders: i64,
        current: f64,
        clv: f64,
        p_alive: Option<f64>,
        recency: f64,
    ) -> ValueLoyaltyInputs {
        ValueLoyaltyInputs {
            orders,
            current: Some(current),
            clv: Some(clv),
            p_alive,
            recency_days: Some(recency),
        }
    }

    fn code_of(cut: (f64, f64), x: &ValueLoyaltyInputs) -> Option<String> {
        code(
            &ValueLoyaltyConfig::default(),
            (Some(cut.0), Some(cut.1)),
            x,
        )
        .map(|c| String::from_utf8_lossy(&c).into_owned())
    }

    #[test]
    fn codes_by_hand() {
        let cut = (100.0, 50.0);
        assert_eq!(
            code_of(cut, &c(5, 150.0, 80.0, Some(0.9), 10.0)).unwrap(),
            "HHH"
        );
        // high current and potential, but a single order: not loyal
        assert_eq!(
            code_of(cut, &c(1, 150.0, 80.0, Some(0.9), 10.0)).unwrap(),
            "HHL"
        );
        // ties sit on the high side
        assert_eq!(
            code_of(cut, &c(3, 100.0, 50.0, Some(0.5), 10.0)).unwrap(),
            "HHH"
        );
        // negative margin is low current value, kept as is
        assert_eq!(
            code_of(cut, &c(4, -20.0, 10.0, Some(0.8), 10.0)).unwrap(),
            "LLH"
        );
        // P(alive) below the threshold overrides a recent purchase
        assert_eq!(
            code_of(cut, &c(4, 150.0, 10.0, Some(0.2), 10.0)).unwrap(),
            "HLL"
        );
        // without a converged model, recency decides
        assert_eq!(
            code_of(cut, &c(4, 150.0, 10.0, None, 100.0)).unwrap(),
            "HLH"
        );
        assert_eq!(
            code_of(cut, &c(4, 150.0, 10.0, None, 400.0)).unwrap(),
            "HLL"
        );
        assert_eq!(code_of(cut, &c(0, 0.0, 0.0, None, 0.0)), None);
    }

    #[test]
    fn cutoffs_are_buyers_medians() {
        let cfg = ValueLoyaltyConfig::default();
        let rows = [
            c(1, 10.0, 1.0, None, 1.0),
            c(1, 20.0, 2.0, None, 1.0),
            c(1, 30.0, 3.0, None, 1.0),
            c(0, 1000.0, 1000.0, None, 1.0),
        ];
        // nearest-rank median of 3 values is the 2nd; the non-buyer is left out
        assert_eq!(cutoffs(&cfg, &rows), (Some(20.0), Some(2.0)));
    }

    #[test]
    fn every_code_needs_a_name() {
        let mut cfg = ValueLoyaltyConfig::default();
        assert!(cfg.validate().is_ok());
        cfg.names.remove("LHL");
        assert!(cfg.validate().unwrap_err().contains("LHL"));
        cfg.names.insert("LHL".into(), "x".into());
        cfg.names.insert("HHX".into(), "x".into());
        assert!(cfg.validate().is_err());
    }
}
