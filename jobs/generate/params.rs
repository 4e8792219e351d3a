//! Every generative parameter in one typed model with its defaults. Written verbatim to
//! `_ground_truth/params.json` so a recovery test knows exactly what produced the data.
//! Time unit: week for the process parameters, day where a field name says `_days`.

use serde::{Deserialize, Serialize};

/// All parameters of the generative process. `Default` gives the documented values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct GenerativeParams {
    /// BG/NBD purchase process (Fader, Hardie and Lee 2005), per week.
    pub bg_nbd: BgNbdParams,
    /// Gamma-Gamma spend model (Fader and Hardie 2013).
    pub gamma_gamma: GammaGammaParams,
    /// Share of customers who sign up and never buy.
    pub prospect_share: f64,
    /// The first purchase falls on signup + U{0..=this} days.
    pub first_purchase_max_delay_days: u32,
    /// Orders are timestamped with a uniform time of day in [open_hour, close_hour).
    pub business_hours: [u32; 2],
    /// Latent preference types: shares and per-type behaviour.
    pub preference_types: PreferenceTypes,
    /// How an order's basket (its items) is drawn.
    pub basket: BasketParams,
    /// The product catalogue.
    pub catalog: CatalogParams,
    /// Orders outside the purchase process, their status, channel and currency.
    pub orders: OrderParams,
    /// Customer-service interactions.
    pub interactions: InteractionParams,
    /// Monthly campaigns and their contacts.
    pub campaigns: CampaignParams,
    /// Satisfaction / NPS surveys.
    pub surveys: SurveyParams,
    /// Demographics of the customer table.
    pub demographics: DemographicParams,
    /// Rates of the planted dirt.
    pub dirt: DirtParams,
}

impl Default for GenerativeParams {
    fn default() -> Self {
        Self {
            bg_nbd: BgNbdParams::default(),
            gamma_gamma: GammaGammaParams::default(),
            prospect_share: 0.05,
            first_purchase_max_delay_days: 14,
            business_hours: [8, 22],
            preference_types: PreferenceTypes::default(),
            basket: BasketParams::default(),
            catalog: CatalogParams::default(),
            orders: OrderParams::default(),
            interactions: InteractionParams::default(),
            campaigns: CampaignParams::default(),
            surveys: SurveyParams::default(),
            demographics: DemographicParams::default(),
            dirt: DirtParams::default(),
        }
    }
}

/// BG/NBD: lambda ~ Gamma(shape r, rate alpha) per week; dropout p ~ Beta(a, b).
/// Defaults: the CDNOW estimates of Fader, Hardie and Lee (2005), table 1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BgNbdParams {
    /// Shape of the purchase-rate gamma.
    pub r: f64,
    /// Rate of the purchase-rate gamma (per week).
    pub alpha: f64,
    /// First shape of the dropout beta.
    pub a: f64,
    /// Second shape of the dropout beta.
    pub b: f64,
}

impl Default for BgNbdParams {
    fn default() -> Self {
        Self {
            r: 0.243,
            alpha: 4.414,
            a: 0.793,
            b: 2.426,
        }
    }
}

/// Gamma-Gamma: nu ~ Gamma(shape q, rate gamma) per customer; each order's amount
/// z ~ Gamma(shape p, rate nu). Defaults: Fader and Hardie (2013), CDNOW.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GammaGammaParams {
    /// Shape of the per-order spend gamma.
    pub p: f64,
    /// Shape of the customer-level scale gamma.
    pub q: f64,
    /// Rate of the customer-level scale gamma.
    pub gamma: f64,
}

impl Default for GammaGammaParams {
    fn default() -> Self {
        Self {
            p: 6.25,
            q: 3.74,
            gamma: 15.44,
        }
    }
}

/// The four latent preference types.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PreferenceTypes {
    /// Buys on discount, budget tiers; responds to campaigns.
    pub price_sensitive: TypeParams,
    /// Buys premium tiers, rarely on discount; higher NPS.
    pub quality_seeking: TypeParams,
    /// Buys newly launched products.
    pub trend_following: TypeParams,
    /// Everyone else.
    pub mainstream: TypeParams,
}

impl PreferenceTypes {
    /// The types in the fixed order used for sampling.
    pub fn as_array(&self) -> [&TypeParams; 4] {
        [
            &self.price_sensitive,
            &self.quality_seeking,
            &self.trend_following,
            &self.mainstream,
        ]
    }
}

impl Default for PreferenceTypes {
    fn default() -> Self {
        Self {
            price_sensitive: TypeParams {
                share: 0.25,
                discount_prob: 0.75,
                premium_prob: 0.03,
                budget_share_of_non_premium: 0.70,
                new_product_prob: 0.08,
                campaign_response_prob: 0.15,
                nps_mean: 6.3,
                income_factor: 0.8,
            },
            quality_seeking: TypeParams {
                share: 0.20,
                discount_prob: 0.05,
                premium_prob: 0.70,
                budget_share_of_non_premium: 0.25,
                new_product_prob: 0.12,
                campaign_response_prob: 0.08,
                nps_mean: 8.4,
                income_factor: 1.3,
            },
            trend_following: TypeParams {
                share: 0.15,
                discount_prob: 0.10,
                premium_prob: 0.20,
                budget_share_of_non_premium: 0.40,
                new_product_prob: 0.70,
                campaign_response_prob: 0.08,
                nps_mean: 7.2,
                income_factor: 1.0,
            },
            mainstream: TypeParams {
                share: 0.40,
                discount_prob: 0.12,
                premium_prob: 0.12,
                budget_share_of_non_premium: 0.40,
                new_product_prob: 0.10,
                campaign_response_prob: 0.08,
                nps_mean: 7.0,
                income_factor: 1.0,
            },
        }
    }
}

/// Behaviour of one latent preference type; probabilities are per order line unless noted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TypeParams {
    /// Share of customers of this type (the four shares sum to 1).
    pub share: f64,
    /// Probability that a line is discounted.
    pub discount_prob: f64,
    /// Probability that a line is a premium-tier product.
    pub premium_prob: f64,
    /// Of the non-premium lines, the share from the budget tier (the rest: standard).
    pub budget_share_of_non_premium: f64,
    /// Probability that a line is a product launched within `new_product_window_days`.
    pub new_product_prob: f64,
    /// Probability that a contacted customer responds to a campaign.
    pub campaign_response_prob: f64,
    /// Mean of the survey NPS (0-10) before rounding and clamping.
    pub nps_mean: f64,
    /// Multiplier on annual income.
    pub income_factor: f64,
}

/// How baskets are drawn.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BasketParams {
    /// Weights of 1, 2, 3, 4 lines per order.
    pub line_count_weights: Vec<f64>,
    /// Weights of quantity 1, 2, 3 per line.
    pub quantity_weights: Vec<f64>,
    /// A discounted line gets U[min, max] of its gross amount off.
    pub discount_share: [f64; 2],
    /// A product's unit cost is U[min, max] of its list price.
    pub unit_cost_share: [f64; 2],
    /// A product is "new" at an order date when launched at most this many days before it.
    pub new_product_window_days: u32,
}

impl Default for BasketParams {
    fn default() -> Self {
        Self {
            line_count_weights: vec![0.45, 0.30, 0.15, 0.10],
            quantity_weights: vec![0.70, 0.20, 0.10],
            discount_share: [0.15, 0.50],
            unit_cost_share: [0.55, 0.75],
            new_product_window_days: 90,
        }
    }
}

/// The product catalogue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CatalogParams {
    /// Number of products.
    pub products: u32,
    /// Number of categories (at most the built-in vocabulary of 10).
    pub categories: u32,
    /// Number of brands, spread evenly over the categories.
    pub brands: u32,
    /// Shares of the budget, standard and premium tiers.
    pub tier_shares: [f64; 3],
    /// List price ranges [min, max) per tier (budget, standard, premium); prices end in .99.
    pub list_price_ranges: [[f64; 2]; 3],
    /// Launch dates are spread evenly from `start - launch_history_days` to `end`.
    pub launch_history_days: u32,
}

impl Default for CatalogParams {
    fn default() -> Self {
        Self {
            products: 2000,
            categories: 10,
            brands: 40,
            tier_shares: [0.35, 0.45, 0.20],
            list_price_ranges: [[2.0, 8.0], [7.0, 15.0], [14.0, 40.0]],
            launch_history_days: 730,
        }
    }
}

/// Orders outside the purchase process and order attributes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OrderParams {
    /// Expected cancelled orders per process order.
    pub cancelled_rate: f64,
    /// Expected returned orders per process order.
    pub returned_rate: f64,
    /// Cancelled/returned orders fall between the first purchase and
    /// min(end, last purchase + this many days).
    pub extra_window_after_last_days: u32,
    /// Share of process orders whose status is empty (meaning completed).
    pub status_missing_share: f64,
    /// Probability of an online (vs store) order at age 18 and at age 80, linear between.
    pub online_share_by_age: [f64; 2],
    /// Number of stores (store ids S001..).
    pub stores: u32,
    /// Currency code of every amount.
    pub currency: String,
}

impl Default for OrderParams {
    fn default() -> Self {
        Self {
            cancelled_rate: 0.03,
            returned_rate: 0.03,
            extra_window_after_last_days: 30,
            status_missing_share: 0.05,
            online_share_by_age: [0.80, 0.25],
            stores: 50,
            currency: "CNY".to_string(),
        }
    }
}

/// Customer-service interactions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InteractionParams {
    /// Poisson mean = base_mean + per_purchase * process purchases.
    pub base_mean: f64,
    /// See `base_mean`.
    pub per_purchase: f64,
    /// Weights of hotline, online_chat, email, social_media, store.
    pub channel_weights: Vec<f64>,
    /// Weights of inquiry, complaint, suggestion, praise, other.
    pub type_weights: Vec<f64>,
    /// Satisfaction 1..5 weights for complaints.
    pub satisfaction_weights_complaint: Vec<f64>,
    /// Satisfaction 1..5 weights for praise.
    pub satisfaction_weights_praise: Vec<f64>,
    /// Satisfaction 1..5 weights for the other types.
    pub satisfaction_weights_other: Vec<f64>,
    /// Interactions fall between signup and min(end, last purchase + this many days).
    pub window_after_last_days: u32,
}

impl Default for InteractionParams {
    fn default() -> Self {
        Self {
            base_mean: 1.0,
            per_purchase: 0.5,
            channel_weights: vec![0.25, 0.25, 0.20, 0.15, 0.15],
            type_weights: vec![0.50, 0.15, 0.10, 0.15, 0.10],
            satisfaction_weights_complaint: vec![0.35, 0.30, 0.20, 0.10, 0.05],
            satisfaction_weights_praise: vec![0.0, 0.02, 0.08, 0.35, 0.55],
            satisfaction_weights_other: vec![0.05, 0.10, 0.25, 0.35, 0.25],
            window_after_last_days: 90,
        }
    }
}

/// Monthly campaigns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CampaignParams {
    /// Probability that an eligible customer (first purchase before the campaign start) is contacted.
    pub contact_rate: f64,
    /// Contacts happen within this many days of the campaign start.
    pub contact_window_days: u32,
    /// A response comes U[0, this many hours) after the contact.
    pub response_delay_hours: u32,
    /// A responder's converted order is their first completed order within this many days of contact.
    pub conversion_window_days: u32,
    /// Campaign cost range [min, max).
    pub cost_range: [f64; 2],
}

impl Default for CampaignParams {
    fn default() -> Self {
        Self {
            contact_rate: 0.15,
            contact_window_days: 7,
            response_delay_hours: 72,
            conversion_window_days: 14,
            cost_range: [2000.0, 20000.0],
        }
    }
}

/// Surveys.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SurveyParams {
    /// Share of purchasing customers with one survey.
    pub share: f64,
    /// Standard deviation of NPS around the type's mean (then rounded and clamped to 0..10).
    pub nps_sd: f64,
}

impl Default for SurveyParams {
    fn default() -> Self {
        Self {
            share: 0.20,
            nps_sd: 2.0,
        }
    }
}

/// Demographics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DemographicParams {
    /// Weights of F, M, other.
    pub gender_weights: Vec<f64>,
    /// Age at `start` is uniform on [min, max] years.
    pub age_range: [u32; 2],
    /// ln(annual income) ~ Normal(ln(median), sd), times the type's income factor.
    pub income_median: f64,
    /// See `income_median`.
    pub income_log_sd: f64,
    /// Weights of the regions north, south, east, west, central.
    pub region_weights: Vec<f64>,
}

impl Default for DemographicParams {
    fn default() -> Self {
        Self {
            gender_weights: vec![0.49, 0.48, 0.03],
            age_range: [18, 80],
            income_median: 60000.0,
            income_log_sd: 0.6,
            region_weights: vec![0.20, 0.22, 0.28, 0.12, 0.18],
        }
    }
}

/// Rates of planted dirt. Within each group the classes are exclusive (one categorical draw), so
/// a row carries at most one dirt class and the recorded counts are exact.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DirtParams {
    /// Per customer: an extra, superseded row with an older updated_at.
    pub duplicate_customer: f64,
    /// Per customer: an invalid email.
    pub invalid_email: f64,
    /// Per customer: stray case / whitespace in region.
    pub region_case_whitespace: f64,
    /// Per customer: stray case / whitespace in gender.
    pub gender_case_whitespace: f64,
    /// Per process order: written twice.
    pub duplicate_order_id: f64,
    /// Per process, cancelled or returned order: stray case / whitespace in channel.
    pub channel_case_whitespace: f64,
    /// Per process order: an extra order with an unparseable order_ts.
    pub invalid_order_ts: f64,
    /// Per process order: an extra order with an unparseable total_amount.
    pub invalid_total_amount: f64,
    /// Per process order: an extra order with a zero or negative total_amount.
    pub non_positive_amount: f64,
    /// Per process order: an extra order of a customer_id that does not exist.
    pub unknown_customer: f64,
    /// Per process order: an extra order of the same customer dated after `end`.
    pub after_end: f64,
    /// Per item line of a process order: an invalid quantity.
    pub invalid_quantity: f64,
}

impl Default for DirtParams {
    fn default() -> Self {
        Self {
            duplicate_customer: 0.01,
            invalid_email: 0.02,
            region_case_whitespace: 0.03,
            gender_case_whitespace: 0.03,
            duplicate_order_id: 0.005,
            channel_case_whitespace: 0.03,
            invalid_order_ts: 0.002,
            invalid_total_amount: 0.002,
            non_positive_amount: 0.003,
            unknown_customer: 0.002,
            after_end: 0.001,
            invalid_quantity: 0.001,
        }
    }
}

impl DirtParams {
    /// No dirt at all: every extract is clean.
    pub fn none() -> Self {
        Self {
            duplicate_customer: 0.0,
            invalid_email: 0.0,
            region_case_whitespace: 0.0,
            gender_case_whitespace: 0.0,
            duplicate_order_id: 0.0,
            channel_case_whitespace: 0.0,
            invalid_order_ts: 0.0,
            invalid_total_amount: 0.0,
            non_positive_amount: 0.0,
            unknown_customer: 0.0,
            after_end: 0.0,
            invalid_quantity: 0.0,
        }
    }

    /// Dirt classes of a customer row, in draw order.
    pub(super) fn customer_classes(&self) -> [f64; 4] {
        [
            self.duplicate_customer,
            self.invalid_email,
            self.region_case_whitespace,
            self.gender_case_whitespace,
        ]
    }

    /// Extra dirty orders spawned per process order, in draw order.
    pub(super) fn extra_order_classes(&self) -> [f64; 5] {
        [
            self.invalid_order_ts,
            self.invalid_total_amount,
            self.non_positive_amount,
            self.unknown_customer,
            self.after_end,
        ]
    }
}

impl GenerativeParams {
    /// Checks ranges and that shares sum as they must; the message names the field.
    pub fn validate(&self) -> Result<(), String> {
        let mut errs = Vec::new();
        let mut positive = |name: &str, v: f64| {
            if !(v.is_finite() && v > 0.0) {
                errs.push(format!("{name} must be a positive number, got {v}"));
            }
        };
        let bg = &self.bg_nbd;
        positive("bg_nbd.r", bg.r);
        positive("bg_nbd.alpha", bg.alpha);
        positive("bg_nbd.a", bg.a);
        positive("bg_nbd.b", bg.b);
        let gg = &self.gamma_gamma;
        positive("gamma_gamma.p", gg.p);
        positive("gamma_gamma.q", gg.q);
        positive("gamma_gamma.gamma", gg.gamma);
        positive(
            "demographics.income_median",
            self.demographics.income_median,
        );
        positive("surveys.nps_sd", self.surveys.nps_sd);

        let mut prob = |name: &str, v: f64| {
            if !(0.0..=1.0).contains(&v) {
                errs.push(format!("{name} must be a probability in [0, 1], got {v}"));
            }
        };
        prob("prospect_share", self.prospect_share);
        prob("orders.cancelled_rate", self.orders.cancelled_rate);
        prob("orders.returned_rate", self.orders.returned_rate);
        prob(
            "orders.status_missing_share",
            self.orders.status_missing_share,
        );
        prob(
            "orders.online_share_by_age[0]",
            self.orders.online_share_by_age[0],
        );
        prob(
            "orders.online_share_by_age[1]",
            self.orders.online_share_by_age[1],
        );
        prob("campaigns.contact_rate", self.campaigns.contact_rate);
        prob("surveys.share", self.surveys.share);
        let names = [
            "price_sensitive",
            "quality_seeking",
            "trend_following",
            "mainstream",
        ];
        for (name, t) in names.iter().zip(self.preference_types.as_array()) {
            prob(&format!("preference_types.{name}.share"), t.share);
            prob(
                &format!("preference_types.{name}.discount_prob"),
                t.discount_prob,
            );
            prob(
                &format!("preference_types.{name}.premium_prob"),
                t.premium_prob,
            );
            prob(
                &format!("preference_types.{name}.budget_share_of_non_premium"),
                t.budget_share_of_non_premium,
            );
            prob(
                &format!("preference_types.{name}.new_product_prob"),
                t.new_product_prob,
            );
            prob(
                &format!("preference_types.{name}.campaign_response_prob"),
                t.campaign_response_prob,
            );
        }
        let d = &self.dirt;
        for (name, v) in [
            ("duplicate_customer", d.duplicate_customer),
            ("invalid_email", d.invalid_email),
            ("region_case_whitespace", d.region_case_whitespace),
            ("gender_case_whitespace", d.gender_case_whitespace),
            ("duplicate_order_id", d.duplicate_order_id),
            ("channel_case_whitespace", d.channel_case_whitespace),
            ("invalid_order_ts", d.invalid_order_ts),
            ("invalid_total_amount", d.invalid_total_amount),
            ("non_positive_amount", d.non_positive_amount),
            ("unknown_customer", d.unknown_customer),
            ("after_end", d.after_end),
            ("invalid_quantity", d.invalid_quantity),
        ] {
            prob(&format!("dirt.{name}"), v);
        }

        let type_sum: f64 = self
            .preference_types
            .as_array()
            .iter()
            .map(|t| t.share)
            .sum();
        if (type_sum - 1.0).abs() > 1e-6 {
            errs.push(format!(
                "preference_types shares must sum to 1, got {type_sum}"
            ));
        }
        let groups = [
            (
                "dirt customer classes",
                d.customer_classes().iter().sum::<f64>(),
            ),
            (
                "dirt extra-order classes",
                d.extra_order_classes().iter().sum::<f64>(),
            ),
            ("dirt.duplicate_order_id + dirt.channel_case_whitespace", {
                d.duplicate_order_id + d.channel_case_whitespace
            }),
        ];
        for (name, s) in groups {
            if s > 1.0 {
                errs.push(format!("{name} must sum to at most 1, got {s}"));
            }
        }
        let weights: [(&str, &[f64], usize); 10] = [
            (
                "basket.line_count_weights",
                &self.basket.line_count_weights,
                4,
            ),
            ("basket.quantity_weights", &self.basket.quantity_weights, 3),
            ("catalog.tier_shares", &self.catalog.tier_shares, 3),
            (
                "interactions.channel_weights",
                &self.interactions.channel_weights,
                5,
            ),
            (
                "interactions.type_weights",
                &self.interactions.type_weights,
                5,
            ),
            (
                "interactions.satisfaction_weights_complaint",
                &self.interactions.satisfaction_weights_complaint,
                5,
            ),
            (
                "interactions.satisfaction_weights_praise",
                &self.interactions.satisfaction_weights_praise,
                5,
            ),
            (
                "interactions.satisfaction_weights_other",
                &self.interactions.satisfaction_weights_other,
                5,
            ),
            (
                "demographics.gender_weights",
                &self.demographics.gender_weights,
                3,
            ),
            (
                "demographics.region_weights",
                &self.demographics.region_weights,
                5,
            ),
        ];
        for (name, w, len) in weights {
            let ok = w.len() == len
                && w.iter().all(|x| x.is_finite() && *x >= 0.0)
                && w.iter().sum::<f64>() > 0.0;
            if !ok {
                errs.push(format!(
                    "{name} must be {len} non-negative weights with a positive sum"
                ));
            }
        }
        let ranges = [
            (
                "basket.discount_share",
                self.basket.discount_share,
                0.0,
                1.0,
            ),
            (
                "basket.unit_cost_share",
                self.basket.unit_cost_share,
                0.0,
                10.0,
            ),
            ("campaigns.cost_range", self.campaigns.cost_range, 0.0, 1e12),
            (
                "catalog.list_price_ranges[0]",
                self.catalog.list_price_ranges[0],
                0.0,
                1e9,
            ),
            (
                "catalog.list_price_ranges[1]",
                self.catalog.list_price_ranges[1],
                0.0,
                1e9,
            ),
            (
                "catalog.list_price_ranges[2]",
                self.catalog.list_price_ranges[2],
                0.0,
                1e9,
            ),
        ];
        for (name, [lo, hi], min, max) in ranges {
            if !(lo.is_finite() && hi.is_finite() && min <= lo && lo < hi && hi <= max) {
                errs.push(format!(
                    "{name} must be [min, max] with {min} <= min < max <= {max}"
                ));
            }
        }
        let [open, close] = self.business_hours;
        if open >= close || close > 24 {
            errs.push(format!("business_hours must be [open, close] with open < close <= 24, got [{open}, {close}]"));
        }
        let [lo, hi] = self.demographics.age_range;
        if lo > hi || hi > 120 {
            errs.push(
                "demographics.age_range must be [min, max] with min <= max <= 120".to_string(),
            );
        }
        if self.catalog.products == 0 || self.catalog.products > 999_999 {
            errs.push("catalog.products must be in 1..=999999".to_string());
        }
        if self.catalog.categories == 0 || self.catalog.categories > 10 {
            errs.push("catalog.categories must be in 1..=10".to_string());
        }
        if self.catalog.brands < self.catalog.categories {
            errs.push("catalog.brands must be at least catalog.categories".to_string());
        }
        if self.orders.stores == 0 || self.orders.stores > 999 {
            errs.push("orders.stores must be in 1..=999".to_string());
        }
        if self.campaigns.contact_window_days == 0 {
            errs.push("campaigns.contact_window_days must be at least 1".to_string());
        }
        if errs.is_empty() {
            Ok(())
        } else {
            Err(errs.join("; "))
        }
    }
}
