//! The shared reference data every customer draws from: the product catalogue and the monthly
//! campaigns. Both are drawn from their own RNG streams, so they do not depend on the customers.

use chrono::{Datelike, NaiveDate};
use rand::Rng;
use rand::seq::SliceRandom;

use super::calendar::{Calendar, DAY};
use super::params::GenerativeParams;
use super::table::{Cents, Row, Table};
use super::vocab::{
    BRAND_PARTS, BRAND_SUFFIXES, CAMPAIGN_CHANNELS, CAMPAIGN_THEMES, CATEGORIES, TIERS,
};
use super::{OutputFormat, Stream, rng_for};

/// Columns of the products extract.
pub(super) const PRODUCT_COLUMNS: &[&str] = &[
    "product_id",
    "category",
    "brand",
    "price_tier",
    "list_price",
    "launch_date",
];

/// Columns of the campaigns extract.
pub(super) const CAMPAIGN_COLUMNS: &[&str] = &[
    "campaign_id",
    "name",
    "channel",
    "start_date",
    "end_date",
    "cost",
];

/// One product.
#[derive(Debug, Clone)]
pub(super) struct Product {
    /// 1-based product number (P000001).
    pub(super) number: u32,
    pub(super) category: u8,
    pub(super) brand: u16,
    /// Index into `TIERS`.
    pub(super) tier: u8,
    pub(super) list_cents: i64,
    /// Unit cost in cents (not in the products extract; written on order items).
    pub(super) cost_cents: i64,
    /// Launch date as a day offset from start (negative before start).
    pub(super) launch_day: i64,
}

/// The catalogue, with per-tier indexes sorted by launch day for picking new or older products.
#[derive(Debug)]
pub(super) struct Catalog {
    pub(super) products: Vec<Product>,
    /// Per tier: product indexes sorted by launch day.
    by_tier: [Vec<u32>; 3],
    /// Per tier: the launch days matching `by_tier`.
    launch_by_tier: [Vec<i64>; 3],
    new_window_days: i64,
}

/// Builds a brand name from its number.
pub(super) fn brand_name(brand: u16) -> String {
    let b = usize::from(brand);
    let head = BRAND_PARTS[b % BRAND_PARTS.len()];
    let tail = BRAND_SUFFIXES[(b / BRAND_PARTS.len()) % BRAND_SUFFIXES.len()];
    let round = b / (BRAND_PARTS.len() * BRAND_SUFFIXES.len());
    if round == 0 {
        format!("{head}{tail}")
    } else {
        format!("{head}{tail} {}", round + 1)
    }
}

impl Catalog {
    /// Draws the catalogue: tier counts from the shares, launch days stratified over
    /// [start - launch_history_days, end] within each tier (so every tier has new products at
    /// every date), ids assigned in launch order.
    pub(super) fn generate(seed: u64, cal: &Calendar, params: &GenerativeParams) -> Self {
        let cp = &params.catalog;
        let mut rng = rng_for(seed, Stream::Catalog, 0);
        let n = cp.products as usize;
        let budget =
            (n as f64 * cp.tier_shares[0] / cp.tier_shares.iter().sum::<f64>()).round() as usize;
        let premium =
            (n as f64 * cp.tier_shares[2] / cp.tier_shares.iter().sum::<f64>()).round() as usize;
        let premium = premium.min(n - budget.min(n));
        let budget = budget.min(n);
        let counts = [budget, n - budget - premium, premium];
        let first_day = -i64::from(cp.launch_history_days);
        let span = (cal.end_day - first_day + 1) as f64;
        let mut drafts: Vec<(i64, u8)> = Vec::with_capacity(n);
        for (tier, &k) in counts.iter().enumerate() {
            for i in 0..k {
                let u: f64 = rng.gen_range(0.0..1.0);
                let day = first_day + (((i as f64 + u) / k as f64) * span).floor() as i64;
                drafts.push((day.min(cal.end_day), tier as u8));
            }
        }
        drafts.sort_by_key(|&(day, tier)| (day, tier));
        let brands_per_cat = (cp.brands / cp.categories).max(1);
        let products: Vec<Product> = drafts
            .into_iter()
            .enumerate()
            .map(|(i, (launch_day, tier))| {
                let category = rng.gen_range(0..cp.categories);
                let brand = category * brands_per_cat + rng.gen_range(0..brands_per_cat);
                let [lo, hi] = cp.list_price_ranges[usize::from(tier)];
                let whole = rng.gen_range(lo..hi).floor() as i64;
                let list_cents = whole * 100 + 99;
                let [clo, chi] = params.basket.unit_cost_share;
                let cost_cents = (list_cents as f64 * rng.gen_range(clo..=chi)).round() as i64;
                Product {
                    number: i as u32 + 1,
                    category: category as u8,
                    brand: brand as u16,
                    tier,
                    list_cents,
                    cost_cents,
                    launch_day,
                }
            })
            .collect();
        let mut by_tier: [Vec<u32>; 3] = Default::default();
        for (i, p) in products.iter().enumerate() {
            by_tier[usize::from(p.tier)].push(i as u32);
        }
        let launch_by_tier = by_tier.clone().map(|ix| {
            ix.iter()
                .map(|&i| products[i as usize].launch_day)
                .collect()
        });
        Self {
            products,
            by_tier,
            launch_by_tier,
            new_window_days: i64::from(params.basket.new_product_window_days),
        }
    }

    /// Picks a product of `tier` on sale on `day`: when `new`, one launched within the new-product
    /// window before `day`; otherwise one launched before the window. Falls back to the other
    /// group, then to any tier, when a group is empty (only with tiny catalogues).
    pub(super) fn pick(&self, tier: usize, day: i64, new: bool, rng: &mut impl Rng) -> &Product {
        for t in std::iter::once(tier).chain((0..3).filter(|&t| t != tier)) {
            let launches = &self.launch_by_tier[t];
            let on_sale = launches.partition_point(|&d| d <= day);
            let old = launches.partition_point(|&d| d <= day - self.new_window_days);
            let (preferred, other) = if new {
                (old..on_sale, 0..old)
            } else {
                (0..old, old..on_sale)
            };
            for range in [preferred, other] {
                if !range.is_empty() {
                    let i = self.by_tier[t][rng.gen_range(range)];
                    return &self.products[i as usize];
                }
            }
        }
        // The catalogue is never empty and every launch day is at most `end`; orders before the
        // first launch do not exist, but be safe.
        &self.products[rng.gen_range(0..self.products.len())]
    }

    /// Writes the products extract.
    pub(super) fn table(&self, cal: &Calendar, format: OutputFormat) -> Table {
        let mut t = Table::new(PRODUCT_COLUMNS, format);
        let mut row = Row::default();
        for p in &self.products {
            row.clear()
                .s(&product_id(p.number))
                .s(CATEGORIES[usize::from(p.category)])
                .s(&brand_name(p.brand))
                .s(TIERS[usize::from(p.tier)])
                .d(Cents(p.list_cents))
                .d(cal.d(p.launch_day));
            t.push(&row);
        }
        t
    }
}

/// `P000001`.
pub(super) fn product_id(number: u32) -> String {
    format!("P{number:06}")
}

/// One monthly campaign.
#[derive(Debug, Clone)]
pub(super) struct Campaign {
    /// 1-based number (K001).
    pub(super) number: u32,
    pub(super) name: String,
    pub(super) channel: u8,
    /// First and last day (offsets from start), clipped to [start, end].
    pub(super) start_day: i64,
    pub(super) end_day: i64,
    pub(super) cost_cents: i64,
}

impl Campaign {
    /// `K001`.
    pub(super) fn id(&self) -> String {
        format!("K{:03}", self.number)
    }
}

/// One campaign per calendar month overlapping [start, end], running over that month (clipped).
pub(super) fn campaigns(seed: u64, cal: &Calendar, params: &GenerativeParams) -> Vec<Campaign> {
    let mut rng = rng_for(seed, Stream::Campaigns, 0);
    let mut out = Vec::new();
    let mut month = cal.date(0).with_day(1).unwrap_or(cal.date(0));
    let [lo, hi] = params.campaigns.cost_range;
    while cal.day_of(month) <= cal.end_day {
        let next = next_month(month);
        let start_day = cal.day_of(month).max(0);
        let end_day = (cal.day_of(next) - 1).min(cal.end_day);
        let channel = *[0u8, 1, 2, 3].choose(&mut rng).unwrap_or(&0);
        let theme = CAMPAIGN_THEMES[month.month0() as usize];
        let label = CAMPAIGN_CHANNELS[usize::from(channel)].replace('_', " ");
        out.push(Campaign {
            number: out.len() as u32 + 1,
            name: format!("{theme} {label}, {}-{:02}", month.year(), month.month()),
            channel,
            start_day,
            end_day,
            cost_cents: (rng.gen_range(lo..hi) * 100.0).round() as i64,
        });
        month = next;
    }
    out
}

fn next_month(d: NaiveDate) -> NaiveDate {
    let (y, m) = if d.month() == 12 {
        (d.year() + 1, 1)
    } else {
        (d.year(), d.month() + 1)
    };
    NaiveDate::from_ymd_opt(y, m, 1).unwrap_or(NaiveDate::MAX)
}

/// Writes the campaigns extract.
pub(super) fn campaign_table(list: &[Campaign], cal: &Calendar, format: OutputFormat) -> Table {
    let mut t = Table::new(CAMPAIGN_COLUMNS, format);
    let mut row = Row::default();
    for c in list {
        row.clear()
            .s(&c.id())
            .s(&c.name)
            .s(CAMPAIGN_CHANNELS[usize::from(c.channel)])
            .d(cal.d(c.start_day))
            .d(cal.d(c.end_day))
            .d(Cents(c.cost_cents));
        t.push(&row);
    }
    t
}

/// Start of the campaign's first day in seconds since start.
pub(super) fn campaign_start_secs(c: &Campaign) -> i64 {
    c.start_day * DAY
}
