//! The strategy rulebook: a rule matches a segment by its scheme and name and/or by its profile
//! (segment_summary metrics, absolute or relative to the scheme's whole base), first match wins.
//! The rules of `models.positioning.strategies` are tried first, then the built-in defaults
//! ([`default_rules`]: the documents' prescriptions as profile rules, ending in a catch-all), so
//! every segment of every scheme, a k-means cluster or a user-defined scheme's label included,
//! gets a product, price, channel and promotion strategy and an action, and the rule that fired
//! is recorded (`positioning.strategy_rule`).

use std::collections::BTreeMap;

use serde::Deserialize;

/// One bound on a metric. `min` / `max` compare the segment's value itself; `min_vs_base` /
/// `max_vs_base` compare it with that multiple of the scheme's base (the customer-weighted mean
/// over all its segments, i.e. the whole customer base for per-customer averages). A value or
/// base that is unknown, or a base that is not positive for a `*_vs_base` bound, never matches.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    /// The value is at least this.
    #[serde(default)]
    pub min: Option<f64>,
    /// The value is at most this.
    #[serde(default)]
    pub max: Option<f64>,
    /// The value is at least this multiple of the base.
    #[serde(default)]
    pub min_vs_base: Option<f64>,
    /// The value is at most this multiple of the base.
    #[serde(default)]
    pub max_vs_base: Option<f64>,
}

impl Condition {
    fn holds(&self, value: Option<f64>, base: Option<f64>) -> bool {
        let Some(v) = value.filter(|v| v.is_finite()) else {
            return false;
        };
        let positive_base = base.filter(|b| b.is_finite() && *b > 0.0);
        self.min.is_none_or(|m| v >= m)
            && self.max.is_none_or(|m| v <= m)
            && self
                .min_vs_base
                .is_none_or(|r| positive_base.is_some_and(|b| v >= r * b))
            && self
                .max_vs_base
                .is_none_or(|r| positive_base.is_some_and(|b| v <= r * b))
    }

    fn is_empty(&self) -> bool {
        self.min.is_none()
            && self.max.is_none()
            && self.min_vs_base.is_none()
            && self.max_vs_base.is_none()
    }

    /// The bound in words, e.g. `avg_clv >= 1.5 x base`.
    pub fn describe(&self, metric: &str) -> String {
        let mut parts = Vec::new();
        if let Some(m) = self.min {
            parts.push(format!("{metric} >= {m}"));
        }
        if let Some(m) = self.max {
            parts.push(format!("{metric} <= {m}"));
        }
        if let Some(r) = self.min_vs_base {
            parts.push(format!("{metric} >= {r} x base"));
        }
        if let Some(r) = self.max_vs_base {
            parts.push(format!("{metric} <= {r} x base"));
        }
        parts.join(", ")
    }
}

/// One strategy rule: it matches a segment of `scheme` (any scheme when absent) named in
/// `segments` (any segment when empty or `"*"`) whose metrics satisfy every bound of `when`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StrategyRule {
    /// The rule's name, recorded in `strategy_rule` (default: `<scheme>: <segments>`).
    #[serde(default)]
    pub name: Option<String>,
    /// The scheme it applies to (any when absent).
    #[serde(default)]
    pub scheme: Option<String>,
    /// The segments it applies to (any when empty; `"*"` = any).
    #[serde(default)]
    pub segments: Vec<String>,
    /// Bounds on segment_summary metrics, all of which must hold.
    #[serde(default)]
    pub when: BTreeMap<String, Condition>,
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

/// What a rule reads of one segment: its scheme, name and metrics, with the scheme's base.
pub struct Profile<'a> {
    /// The scheme.
    pub scheme: &'a str,
    /// The segment.
    pub segment: &'a str,
    /// The segment's value of a metric (None: unknown or not a column).
    pub value: &'a dyn Fn(&str) -> Option<f64>,
    /// The scheme's base of a metric.
    pub base: &'a dyn Fn(&str) -> Option<f64>,
}

impl StrategyRule {
    /// Whether the rule matches the segment.
    pub fn matches(&self, p: &Profile<'_>) -> bool {
        self.scheme.as_deref().is_none_or(|s| s == p.scheme)
            && (self.segments.is_empty()
                || self.segments.iter().any(|s| s == "*" || s == p.segment))
            && self
                .when
                .iter()
                .all(|(metric, c)| c.holds((p.value)(metric), (p.base)(metric)))
    }

    /// The name recorded in `strategy_rule`.
    pub fn label(&self) -> String {
        if let Some(n) = &self.name {
            return n.clone();
        }
        let segments = if self.segments.is_empty() {
            "*".to_string()
        } else {
            self.segments.join(", ")
        };
        let mut label = match &self.scheme {
            Some(s) => format!("{s}: {segments}"),
            None => segments,
        };
        if !self.when.is_empty() {
            let when: Vec<String> = self.when.iter().map(|(m, c)| c.describe(m)).collect();
            label.push_str(&format!(" when {}", when.join(", ")));
        }
        label
    }

    /// The five parts of the mix, in order: product, price, channel, promotion, action.
    pub fn mix(&self) -> [&Option<String>; 5] {
        [
            &self.product,
            &self.price,
            &self.channel,
            &self.promotion,
            &self.action,
        ]
    }

    /// Every metric the rule reads.
    pub fn metrics(&self) -> impl Iterator<Item = &str> {
        self.when.keys().map(String::as_str)
    }

    /// A complete mix and sensible bounds.
    pub fn validate(&self) -> std::result::Result<(), String> {
        let missing: Vec<&str> = ["product", "price", "channel", "promotion", "action"]
            .into_iter()
            .zip(self.mix())
            .filter(|(_, v)| v.as_deref().is_none_or(|s| s.trim().is_empty()))
            .map(|(k, _)| k)
            .collect();
        if !missing.is_empty() {
            return Err(format!(
                "rule `{}` has no {}: every rule gives product, price, channel, promotion and action",
                self.label(),
                missing.join(", ")
            ));
        }
        for (metric, c) in &self.when {
            if c.is_empty() {
                return Err(format!(
                    "rule `{}`: when.{metric} needs min, max, min_vs_base or max_vs_base",
                    self.label()
                ));
            }
            let bounds = [c.min, c.max, c.min_vs_base, c.max_vs_base];
            if bounds.iter().flatten().any(|b| !b.is_finite()) {
                return Err(format!(
                    "rule `{}`: when.{metric} bounds must be numbers",
                    self.label()
                ));
            }
        }
        Ok(())
    }
}

fn rule(
    name: &str,
    when: &[(&str, Condition)],
    [product, price, channel, promotion, action]: [&str; 5],
) -> StrategyRule {
    StrategyRule {
        name: Some(format!("default: {name}")),
        scheme: None,
        segments: Vec::new(),
        when: when
            .iter()
            .map(|(m, c)| (m.to_string(), c.clone()))
            .collect(),
        product: Some(product.into()),
        price: Some(price.into()),
        channel: Some(channel.into()),
        promotion: Some(promotion.into()),
        action: Some(action.into()),
    }
}

fn at_least(r: f64) -> Condition {
    Condition {
        min_vs_base: Some(r),
        ..Condition::default()
    }
}

fn at_most(r: f64) -> Condition {
    Condition {
        max_vs_base: Some(r),
        ..Condition::default()
    }
}

/// The built-in rules, tried after the configured ones, in order (docs/segments.md lists them):
/// the documents' prescriptions (docs/segments.md, "Positioning") as profile rules, then three by value
/// alone and a catch-all, so no segment is left without a strategy.
pub fn default_rules() -> Vec<StrategyRule> {
    vec![
        rule(
            "high value",
            &[("avg_clv", at_least(1.5)), ("avg_margin", at_least(1.5))],
            [
                "exclusive offers and early access to new lines",
                "full price",
                "VIP service",
                "exclusive events",
                "VIP service and exclusive offers",
            ],
        ),
        rule(
            "lapsed valuable",
            &[
                ("avg_margin", at_least(1.2)),
                ("avg_recency_days", at_least(1.5)),
            ],
            [
                "past favourites",
                "win-back offer",
                "phone call-back and email",
                "win-back campaign",
                "win back lapsed valuable customers",
            ],
        ),
        rule(
            "new",
            &[
                ("avg_days_since_first_order", at_most(0.5)),
                ("one_order_share", at_least(1.2)),
            ],
            [
                "trial packs",
                "new-customer coupon",
                "online",
                "second-purchase incentive",
                "stimulate the second purchase",
            ],
        ),
        rule(
            "price-sensitive",
            &[("avg_discount_line_share", at_least(1.5))],
            [
                "value lines and bundles",
                "discounts",
                "online",
                "discounts and bundles",
                "compete on value",
            ],
        ),
        rule(
            "quality-seeking",
            &[("avg_premium_line_share", at_least(1.5))],
            [
                "premium lines",
                "premium price",
                "store service",
                "stress quality and design",
                "lead with quality",
            ],
        ),
        rule(
            "trend-following",
            &[("avg_new_product_line_share", at_least(1.5))],
            [
                "new arrivals and limited editions",
                "launch price",
                "online and social",
                "launches and limited editions",
                "first access to what is new",
            ],
        ),
        rule(
            "frequent",
            &[("avg_orders", at_least(1.5))],
            [
                "core range",
                "member price",
                "app",
                "points and member benefits",
                "reward frequency",
            ],
        ),
        rule(
            "above-base value",
            &[("avg_clv", at_least(1.0))],
            [
                "core range and upgrades",
                "standard price",
                "usual channel",
                "loyalty rewards and cross-sell",
                "retain and upsell",
            ],
        ),
        rule(
            "above-base margin",
            &[("avg_margin", at_least(1.0))],
            [
                "past favourites and recommendations",
                "loyalty price",
                "email and app",
                "loyalty programme enrolment",
                "build loyalty before their value fades",
            ],
        ),
        rule(
            "below-base value",
            &[("avg_clv", at_most(1.0))],
            [
                "core range",
                "spend-X-save-Y",
                "email and self-service",
                "low-cost reminders",
                "develop at low cost",
            ],
        ),
        rule(
            "any segment",
            &[],
            [
                "core range",
                "standard price",
                "usual channel",
                "regular newsletter",
                "review the segment profile",
            ],
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A hand-built segment profile: metric -> (value, base).
    fn fired(scheme: &str, segment: &str, metrics: &[(&str, f64, f64)]) -> String {
        let m: BTreeMap<&str, (f64, f64)> =
            metrics.iter().map(|(k, v, b)| (*k, (*v, *b))).collect();
        let value = |k: &str| m.get(k).map(|x| x.0);
        let base = |k: &str| m.get(k).map(|x| x.1);
        let p = Profile {
            scheme,
            segment,
            value: &value,
            base: &base,
        };
        default_rules()
            .iter()
            .find(|r| r.matches(&p))
            .map(StrategyRule::label)
            .unwrap()
    }

    #[test]
    fn a_high_clv_cluster_gets_the_vip_rule_and_a_discount_heavy_one_the_price_rule() {
        let vip = fired(
            "clusters",
            "2: frequent, broad baskets",
            &[
                ("avg_clv", 68.4, 22.0),
                ("avg_margin", 71.7, 25.0),
                ("avg_orders", 6.0, 2.5),
                ("avg_discount_line_share", 0.2, 0.2),
            ],
        );
        assert_eq!(vip, "default: high value");
        let price = fired(
            "clusters",
            "3: discount-driven, budget",
            &[
                ("avg_clv", 12.0, 22.0),
                ("avg_margin", 9.0, 25.0),
                ("avg_discount_line_share", 0.55, 0.2),
                ("avg_orders", 2.0, 2.5),
            ],
        );
        assert_eq!(price, "default: price-sensitive");
    }

    #[test]
    fn every_default_prescription_fires_on_its_profile() {
        let base = |k: &'static str, v: f64| (k, v, 1.0);
        type Case<'a> = (&'a [(&'a str, f64, f64)], &'a str);
        let cases: &[Case] = &[
            (
                &[
                    base("avg_margin", 1.4),
                    base("avg_recency_days", 2.0),
                    base("avg_clv", 0.3),
                ],
                "lapsed valuable",
            ),
            (
                &[
                    base("avg_days_since_first_order", 0.2),
                    base("one_order_share", 1.8),
                    base("avg_clv", 0.8),
                ],
                "new",
            ),
            (&[base("avg_premium_line_share", 2.0)], "quality-seeking"),
            (
                &[base("avg_new_product_line_share", 1.6)],
                "trend-following",
            ),
            (&[base("avg_orders", 1.7)], "frequent"),
            (&[base("avg_clv", 1.1)], "above-base value"),
            (
                &[base("avg_clv", 0.4), base("avg_margin", 1.1)],
                "above-base margin",
            ),
            (&[base("avg_clv", 0.4)], "below-base value"),
            (&[], "any segment"),
        ];
        for (metrics, name) in cases {
            assert_eq!(fired("my_scheme", "x", metrics), format!("default: {name}"));
        }
        // a base that is not positive never satisfies a relative bound
        assert_eq!(
            fired(
                "s",
                "x",
                &[("avg_clv", 5.0, -1.0), ("avg_margin", 5.0, 0.0)]
            ),
            "default: any segment"
        );
    }

    #[test]
    fn rules_match_names_and_profiles_and_need_a_whole_mix() {
        let rules: Vec<StrategyRule> = serde_yaml_ng::from_str(
            "- {scheme: value_tier, segments: [high], product: p, price: q, channel: c, promotion: m, action: VIP}\n\
             - {name: big baskets, when: {avg_order_value: {min: 50}}, product: p, price: q, channel: c, promotion: m, action: upsell}\n\
             - {segments: ['*'], action: review}\n",
        )
        .unwrap();
        let none = |_: &str| None;
        let aov = |k: &str| (k == "avg_order_value").then_some(60.0);
        let find = |sc: &str, sg: &str, value: &dyn Fn(&str) -> Option<f64>| {
            let p = Profile {
                scheme: sc,
                segment: sg,
                value,
                base: &none,
            };
            rules
                .iter()
                .find(|r| r.matches(&p))
                .and_then(|r| r.action.clone())
        };
        assert_eq!(find("value_tier", "high", &none).as_deref(), Some("VIP"));
        assert_eq!(find("rfm", "high", &aov).as_deref(), Some("upsell"));
        assert_eq!(find("rfm", "high", &none).as_deref(), Some("review"));
        assert_eq!(rules[0].label(), "value_tier: high");
        assert_eq!(rules[1].label(), "big baskets");
        assert!(rules[0].validate().is_ok() && rules[1].validate().is_ok());
        let err = rules[2].validate().unwrap_err();
        assert!(err.contains("product, price, channel, promotion"), "{err}");
        for r in default_rules() {
            r.validate().unwrap();
        }
    }
}
