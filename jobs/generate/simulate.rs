//! The generative process for one customer (see the module documentation of `generate` for the
//! model). Every quantity is drawn from the customer's own RNG streams, one stream per concern,
//! so the purchase process does not move when, say, a basket or dirt parameter changes.

use std::ops::Range;

use rand::Rng;
use rand::distributions::{Distribution, WeightedIndex};
use rand_distr::{Beta, Exp1, Gamma, Normal, Poisson};

use super::calendar::{DAY, WEEK};
use super::catalog::campaign_start_secs;
use super::{Ctx, Stream, rng_for};

/// Why an order exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum OrderKind {
    /// A purchase of the BG/NBD process (status completed or empty).
    Process,
    /// A cancelled order outside the process.
    Cancelled,
    /// A returned order outside the process.
    Returned,
}

/// One real order (process, cancelled or returned).
#[derive(Debug, Clone)]
pub(super) struct Order {
    /// 1-based sequence within the customer, chronological.
    pub(super) seq: u32,
    /// Seconds since start.
    pub(super) ts: i64,
    pub(super) kind: OrderKind,
    pub(super) amount_cents: i64,
    pub(super) online: bool,
    /// Store number (1-based) for store orders.
    pub(super) store: u32,
    /// Status left empty (means completed); process orders only.
    pub(super) status_missing: bool,
    /// Lines in `CustomerSim::lines`.
    pub(super) lines: Range<usize>,
}

impl Order {
    /// Sum of the line discounts.
    pub(super) fn discount_cents(&self, lines: &[Line]) -> i64 {
        lines[self.lines.clone()]
            .iter()
            .map(|l| l.discount_cents)
            .sum()
    }
}

/// One order line.
#[derive(Debug, Clone)]
pub(super) struct Line {
    /// Index into the catalogue.
    pub(super) product: u32,
    pub(super) quantity: u8,
    pub(super) discount_cents: i64,
}

/// One customer-service interaction.
#[derive(Debug, Clone)]
pub(super) struct Interaction {
    pub(super) ts: i64,
    pub(super) channel: u8,
    pub(super) kind: u8,
    pub(super) satisfaction: u8,
}

/// One campaign contact.
#[derive(Debug, Clone)]
pub(super) struct Contact {
    /// Index into the campaigns.
    pub(super) campaign: usize,
    pub(super) contacted: i64,
    pub(super) responded: Option<i64>,
    /// Sequence number of the converted order.
    pub(super) converted: Option<u32>,
}

/// One survey answer.
#[derive(Debug, Clone)]
pub(super) struct Survey {
    pub(super) ts: i64,
    pub(super) nps: u8,
    pub(super) satisfaction: u8,
}

/// Demographics and contact details (indexes into the vocabularies).
#[derive(Debug, Clone, Default)]
pub(super) struct Profile {
    pub(super) gender: u8,
    pub(super) birth_day: i64,
    pub(super) age: u32,
    pub(super) occupation: u8,
    pub(super) income_cents: i64,
    pub(super) education: u8,
    pub(super) region: u8,
    pub(super) city: u8,
    pub(super) acquisition: u8,
    pub(super) membership: u8,
    pub(super) updated_at: i64,
    pub(super) family: u8,
    pub(super) given: u8,
    /// Name style: 0 "Family Given", 1 "Family, Given", 2 "English Family", 3 `Given "English" Family`.
    pub(super) name_style: u8,
    pub(super) english: u8,
    pub(super) email_domain: u8,
    pub(super) phone: u64,
    pub(super) home_store: u32,
}

/// Everything generated for one customer; buffers are reused between customers.
#[derive(Debug, Default)]
pub(super) struct CustomerSim {
    /// 1-based customer number.
    pub(super) number: u64,
    /// Index into `PREFERENCE_TYPES`.
    pub(super) ptype: u8,
    pub(super) lambda: f64,
    pub(super) dropout_p: f64,
    pub(super) nu: f64,
    pub(super) signup_day: i64,
    pub(super) is_prospect: bool,
    pub(super) alive_at_end: bool,
    /// Completed process purchases written, including the first.
    pub(super) purchases: u32,
    /// Distinct calendar days of those purchases.
    pub(super) purchase_days: u32,
    /// First and last process purchase (seconds since start).
    pub(super) first_ts: i64,
    pub(super) last_ts: i64,
    /// Orders sorted by time, `seq` = position + 1.
    pub(super) orders: Vec<Order>,
    pub(super) lines: Vec<Line>,
    pub(super) interactions: Vec<Interaction>,
    pub(super) contacts: Vec<Contact>,
    pub(super) survey: Option<Survey>,
    pub(super) profile: Profile,
}

/// Distributions built once per run.
#[derive(Debug)]
pub(super) struct Dists {
    lambda: Gamma<f64>,
    dropout: Beta<f64>,
    nu: Gamma<f64>,
    ptype: WeightedIndex<f64>,
    line_count: WeightedIndex<f64>,
    quantity: WeightedIndex<f64>,
    interaction_channel: WeightedIndex<f64>,
    interaction_type: WeightedIndex<f64>,
    satisfaction: [WeightedIndex<f64>; 3],
    gender: WeightedIndex<f64>,
    region: WeightedIndex<f64>,
    education: WeightedIndex<f64>,
    acquisition: WeightedIndex<f64>,
}

impl Dists {
    /// Builds the distributions; the parameters must have been validated.
    pub(super) fn new(p: &super::GenerativeParams) -> Result<Self, String> {
        let e = |what: &str, err: &dyn std::fmt::Display| format!("{what}: {err}");
        let w = |what: &str, v: &[f64]| WeightedIndex::new(v).map_err(|err| e(what, &err));
        let it = &p.interactions;
        Ok(Self {
            lambda: Gamma::new(p.bg_nbd.r, 1.0 / p.bg_nbd.alpha)
                .map_err(|err| e("bg_nbd", &err))?,
            dropout: Beta::new(p.bg_nbd.a, p.bg_nbd.b).map_err(|err| e("bg_nbd", &err))?,
            nu: Gamma::new(p.gamma_gamma.q, 1.0 / p.gamma_gamma.gamma)
                .map_err(|err| e("gamma_gamma", &err))?,
            ptype: w(
                "preference_types",
                &p.preference_types.as_array().map(|t| t.share),
            )?,
            line_count: w("basket.line_count_weights", &p.basket.line_count_weights)?,
            quantity: w("basket.quantity_weights", &p.basket.quantity_weights)?,
            interaction_channel: w("interactions.channel_weights", &it.channel_weights)?,
            interaction_type: w("interactions.type_weights", &it.type_weights)?,
            satisfaction: [
                w(
                    "interactions.satisfaction_weights_complaint",
                    &it.satisfaction_weights_complaint,
                )?,
                w(
                    "interactions.satisfaction_weights_praise",
                    &it.satisfaction_weights_praise,
                )?,
                w(
                    "interactions.satisfaction_weights_other",
                    &it.satisfaction_weights_other,
                )?,
            ],
            gender: w(
                "demographics.gender_weights",
                &p.demographics.gender_weights,
            )?,
            region: w(
                "demographics.region_weights",
                &p.demographics.region_weights,
            )?,
            education: w("education", &super::vocab::EDUCATION.map(|(_, x)| x))?,
            acquisition: w(
                "acquisition",
                &super::vocab::ACQUISITION_CHANNELS.map(|(_, x)| x),
            )?,
        })
    }
}

/// A uniform time of day within business hours, in seconds.
pub(super) fn time_of_day(ctx: &Ctx, rng: &mut impl Rng) -> i64 {
    let [open, close] = ctx.params.business_hours;
    rng.gen_range(i64::from(open) * 3600..i64::from(close) * 3600)
}

/// Simulates customer `number` into `sim`.
pub(super) fn simulate(ctx: &Ctx, number: u64, sim: &mut CustomerSim) {
    sim.number = number;
    sim.orders.clear();
    sim.lines.clear();
    sim.interactions.clear();
    sim.contacts.clear();
    sim.survey = None;
    sim.purchases = 0;
    sim.purchase_days = 0;
    sim.first_ts = 0;
    sim.last_ts = 0;

    let mut process_times = purchase_process(ctx, number, sim);
    sim.ptype = ctx
        .dists
        .ptype
        .sample(&mut rng_for(ctx.seed, Stream::Type, number)) as u8;
    profile(ctx, number, sim);
    orders(ctx, number, sim, &mut process_times);
    interactions(ctx, number, sim);
    contacts(ctx, number, sim);
    survey(ctx, number, sim);
}

/// Signup, prospect status and the BG/NBD + Gamma-Gamma process. Returns the purchases as
/// (continuous time in seconds since start, amount in cents).
fn purchase_process(ctx: &Ctx, number: u64, sim: &mut CustomerSim) -> Vec<(f64, i64)> {
    let p = &ctx.params;
    let end_day = ctx.cal.end_day;
    let mut rng = rng_for(ctx.seed, Stream::Process, number);
    sim.signup_day = rng.gen_range(0..end_day);
    let prospect_draw: f64 = rng.r#gen();
    let delay = i64::from(rng.gen_range(0..=p.first_purchase_max_delay_days));
    sim.lambda = ctx.dists.lambda.sample(&mut rng);
    sim.dropout_p = ctx.dists.dropout.sample(&mut rng);
    sim.nu = ctx.dists.nu.sample(&mut rng);
    let tod = time_of_day(ctx, &mut rng);
    let first_day = sim.signup_day + delay;
    sim.is_prospect = prospect_draw < p.prospect_share || first_day > end_day;
    sim.alive_at_end = false;
    let mut out = Vec::new();
    if sim.is_prospect {
        return out;
    }
    let spend = Gamma::new(p.gamma_gamma.p, 1.0 / sim.nu).ok();
    let draw_amount = |rng: &mut rand_chacha::ChaCha8Rng| {
        let z = spend.as_ref().map_or(0.0, |g| g.sample(rng));
        ((z * 100.0).round() as i64).max(1)
    };
    let horizon = ctx.cal.horizon_secs() as f64;
    let mut t = (first_day * DAY + tod) as f64;
    out.push((t, draw_amount(&mut rng)));
    sim.alive_at_end = true;
    loop {
        let gap: f64 = Exp1.sample(&mut rng);
        t += gap / sim.lambda * WEEK;
        if t.is_nan() || t >= horizon {
            break;
        }
        out.push((t, draw_amount(&mut rng)));
        if rng.r#gen::<f64>() < sim.dropout_p {
            sim.alive_at_end = false;
            break;
        }
    }
    out
}

/// Demographics and contact details.
fn profile(ctx: &Ctx, number: u64, sim: &mut CustomerSim) {
    use super::vocab::{EMAIL_DOMAINS, ENGLISH_NAMES, FAMILY_NAMES, GIVEN_NAMES, OCCUPATIONS};
    let p = &ctx.params;
    let d = &p.demographics;
    let mut rng = rng_for(ctx.seed, Stream::Profile, number);
    let pr = &mut sim.profile;
    pr.gender = ctx.dists.gender.sample(&mut rng) as u8;
    pr.age = rng.gen_range(d.age_range[0]..=d.age_range[1]);
    let years = f64::from(pr.age) + rng.gen_range(0.0..1.0);
    pr.birth_day = -((years * 365.2425).floor() as i64);
    let general = OCCUPATIONS.len() - 2;
    pr.occupation = if pr.age <= 23 && rng.gen_bool(0.6) {
        (OCCUPATIONS.len() - 2) as u8
    } else if pr.age >= 62 && rng.gen_bool(0.6) {
        (OCCUPATIONS.len() - 1) as u8
    } else {
        rng.gen_range(0..general) as u8
    };
    pr.education = ctx.dists.education.sample(&mut rng) as u8;
    let ln = Normal::new(d.income_median.ln(), d.income_log_sd.max(0.0))
        .map(|n| n.sample(&mut rng))
        .unwrap_or(d.income_median.ln());
    let life_stage = if pr.occupation as usize >= general {
        0.5
    } else {
        1.0
    };
    let factor = p.preference_types.as_array()[usize::from(sim.ptype)].income_factor;
    pr.income_cents = (ln.exp() * factor * life_stage * 100.0).round() as i64;
    pr.region = ctx.dists.region.sample(&mut rng) as u8;
    pr.city = rng.gen_range(0..4);
    pr.acquisition = ctx.dists.acquisition.sample(&mut rng) as u8;
    let start = sim.signup_day * DAY;
    pr.updated_at = rng.gen_range(start..ctx.cal.horizon_secs());
    pr.family = rng.gen_range(0..FAMILY_NAMES.len()) as u8;
    pr.given = rng.gen_range(0..GIVEN_NAMES.len()) as u8;
    pr.english = rng.gen_range(0..ENGLISH_NAMES.len()) as u8;
    let style: f64 = rng.r#gen();
    pr.name_style = if style < 0.80 {
        0
    } else if style < 0.90 {
        1
    } else if style < 0.96 {
        2
    } else {
        3
    };
    pr.email_domain = rng.gen_range(0..EMAIL_DOMAINS.len()) as u8;
    pr.phone = rng.gen_range(3_000_000_000u64..10_000_000_000);
    pr.home_store = rng.gen_range(1..=p.orders.stores);
}

/// Membership tier index from the number of process purchases.
fn membership(purchases: u32) -> u8 {
    match purchases {
        0..=1 => 0,
        2..=4 => 1,
        5..=9 => 2,
        _ => 3,
    }
}

/// Draws an order's basket into `sim.lines`.
fn basket(
    ctx: &Ctx,
    ptype: u8,
    day: i64,
    rng: &mut impl Rng,
    lines: &mut Vec<Line>,
) -> Range<usize> {
    let t = ctx.params.preference_types.as_array()[usize::from(ptype)];
    let [dlo, dhi] = ctx.params.basket.discount_share;
    let first = lines.len();
    let n = ctx.dists.line_count.sample(rng) + 1;
    for _ in 0..n {
        let tier = if rng.gen_bool(t.premium_prob) {
            2
        } else if rng.gen_bool(t.budget_share_of_non_premium) {
            0
        } else {
            1
        };
        let new = rng.gen_bool(t.new_product_prob);
        let product = ctx.catalog.pick(tier, day, new, rng);
        let quantity = (ctx.dists.quantity.sample(rng) + 1) as u8;
        let discount_cents = if rng.gen_bool(t.discount_prob) {
            let gross = product.list_cents * i64::from(quantity);
            (gross as f64 * rng.gen_range(dlo..=dhi)).round() as i64
        } else {
            0
        };
        lines.push(Line {
            product: product.number - 1,
            quantity,
            discount_cents,
        });
    }
    first..lines.len()
}

/// Probability of an online order at the customer's age.
fn online_share(ctx: &Ctx, age: u32) -> f64 {
    let [young, old] = ctx.params.orders.online_share_by_age;
    let [lo, hi] = ctx.params.demographics.age_range;
    let x = if hi > lo {
        f64::from(age.saturating_sub(lo)) / f64::from(hi - lo)
    } else {
        0.0
    };
    (young + (old - young) * x.clamp(0.0, 1.0)).clamp(0.0, 1.0)
}

/// Orders: the process purchases with their written timestamps, then cancelled and returned
/// orders, all sorted by time and numbered.
fn orders(ctx: &Ctx, number: u64, sim: &mut CustomerSim, process: &mut [(f64, i64)]) {
    let p = &ctx.params;
    let end_day = ctx.cal.end_day;
    let online_p = online_share(ctx, sim.profile.age);
    let mut rng = rng_for(ctx.seed, Stream::Orders, number);
    let mut prev_day = i64::MIN;
    for (k, &(t, amount_cents)) in process.iter().enumerate() {
        // Each purchase on its own calendar day where the window allows (the process time is
        // continuous; the written day is bumped past the previous one, never past `end`).
        let ts = if k == 0 {
            t.floor() as i64
        } else {
            let day = (t / DAY as f64).floor() as i64;
            let day = if day > prev_day {
                day
            } else {
                (prev_day + 1).min(end_day)
            };
            day * DAY + time_of_day(ctx, &mut rng)
        };
        let day = ts.div_euclid(DAY);
        if day != prev_day {
            sim.purchase_days += 1;
        }
        prev_day = day;
        let online = rng.gen_bool(online_p);
        let store = if rng.gen_bool(0.7) {
            sim.profile.home_store
        } else {
            rng.gen_range(1..=p.orders.stores)
        };
        let status_missing = rng.gen_bool(p.orders.status_missing_share);
        let lines = basket(ctx, sim.ptype, day, &mut rng, &mut sim.lines);
        sim.orders.push(Order {
            seq: 0,
            ts,
            kind: OrderKind::Process,
            amount_cents,
            online,
            store,
            status_missing,
            lines,
        });
    }
    sim.purchases = process.len() as u32;
    sim.profile.membership = membership(sim.purchases);
    if let (Some(first), Some(last)) = (sim.orders.first(), sim.orders.last()) {
        sim.first_ts = first.ts;
        sim.last_ts = last.ts;
    }

    // Cancelled and returned orders: own stream, so the process above is untouched.
    if !sim.orders.is_empty() {
        let mut rng = rng_for(ctx.seed, Stream::Extra, number);
        let spend = Gamma::new(p.gamma_gamma.p, 1.0 / sim.nu).ok();
        let first_day = sim.first_ts.div_euclid(DAY);
        let last_day = (sim.last_ts.div_euclid(DAY)
            + i64::from(p.orders.extra_window_after_last_days))
        .min(end_day);
        for _ in 0..sim.purchases {
            for (kind, rate) in [
                (OrderKind::Cancelled, p.orders.cancelled_rate),
                (OrderKind::Returned, p.orders.returned_rate),
            ] {
                if !rng.gen_bool(rate) {
                    continue;
                }
                let day = rng.gen_range(first_day..=last_day);
                let ts = day * DAY + time_of_day(ctx, &mut rng);
                let z = spend.as_ref().map_or(0.0, |g| g.sample(&mut rng));
                let online = rng.gen_bool(online_p);
                let store = sim.profile.home_store;
                let lines = basket(ctx, sim.ptype, day, &mut rng, &mut sim.lines);
                sim.orders.push(Order {
                    seq: 0,
                    ts,
                    kind,
                    amount_cents: ((z * 100.0).round() as i64).max(1),
                    online,
                    store,
                    status_missing: false,
                    lines,
                });
            }
        }
        sim.orders.sort_by_key(|o| (o.ts, o.kind));
    }
    for (i, o) in sim.orders.iter_mut().enumerate() {
        o.seq = i as u32 + 1;
    }
}

/// Customer-service interactions: Poisson count, uniform days within the customer's history.
fn interactions(ctx: &Ctx, number: u64, sim: &mut CustomerSim) {
    let ip = &ctx.params.interactions;
    let mut rng = rng_for(ctx.seed, Stream::Interactions, number);
    let mean = ip.base_mean + ip.per_purchase * f64::from(sim.purchases);
    let count = if mean > 0.0 {
        Poisson::new(mean)
            .map(|d| d.sample(&mut rng) as u32)
            .unwrap_or(0)
    } else {
        0
    };
    let last_activity = if sim.purchases > 0 {
        sim.last_ts.div_euclid(DAY)
    } else {
        sim.signup_day
    };
    let last_day = (last_activity + i64::from(ip.window_after_last_days)).min(ctx.cal.end_day);
    for _ in 0..count {
        let day = rng.gen_range(sim.signup_day..=last_day);
        let ts = day * DAY + time_of_day(ctx, &mut rng);
        let channel = ctx.dists.interaction_channel.sample(&mut rng) as u8;
        let kind = ctx.dists.interaction_type.sample(&mut rng) as u8;
        let scale = match kind {
            1 => &ctx.dists.satisfaction[0],
            3 => &ctx.dists.satisfaction[1],
            _ => &ctx.dists.satisfaction[2],
        };
        let satisfaction = scale.sample(&mut rng) as u8 + 1;
        sim.interactions.push(Interaction {
            ts,
            channel,
            kind,
            satisfaction,
        });
    }
    sim.interactions.sort_by_key(|i| i.ts);
}

/// Campaign contacts of customers whose first purchase is before the campaign starts.
fn contacts(ctx: &Ctx, number: u64, sim: &mut CustomerSim) {
    if sim.purchases == 0 {
        return;
    }
    let cp = &ctx.params.campaigns;
    let response_p =
        ctx.params.preference_types.as_array()[usize::from(sim.ptype)].campaign_response_prob;
    let mut rng = rng_for(ctx.seed, Stream::Campaign, number);
    let horizon = ctx.cal.horizon_secs();
    for (ci, c) in ctx.campaigns.iter().enumerate() {
        if sim.first_ts >= campaign_start_secs(c) || !rng.gen_bool(cp.contact_rate) {
            continue;
        }
        let days = i64::from(cp.contact_window_days)
            .min(c.end_day - c.start_day + 1)
            .max(1);
        let contacted = (c.start_day + rng.gen_range(0..days)) * DAY + time_of_day(ctx, &mut rng);
        let responded = rng.gen_bool(response_p).then(|| {
            let delay = rng.gen_range(0..i64::from(cp.response_delay_hours.max(1)) * 3600);
            (contacted + delay).min(horizon - 1)
        });
        let window_end = contacted + i64::from(cp.conversion_window_days) * DAY;
        let converted = responded.and_then(|_| {
            sim.orders
                .iter()
                .find(|o| o.kind == OrderKind::Process && o.ts >= contacted && o.ts <= window_end)
                .map(|o| o.seq)
        });
        sim.contacts.push(Contact {
            campaign: ci,
            contacted,
            responded,
            converted,
        });
    }
}

/// One survey for some purchasing customers, at a random time after the first purchase.
fn survey(ctx: &Ctx, number: u64, sim: &mut CustomerSim) {
    if sim.purchases == 0 {
        return;
    }
    let sp = &ctx.params.surveys;
    let mut rng = rng_for(ctx.seed, Stream::Survey, number);
    if !rng.gen_bool(sp.share) {
        return;
    }
    let ts = rng.gen_range(sim.first_ts + 1..ctx.cal.horizon_secs().max(sim.first_ts + 2));
    let mean = ctx.params.preference_types.as_array()[usize::from(sim.ptype)].nps_mean;
    let noise = Normal::new(0.0, 1.0)
        .map(|n| n.sample(&mut rng))
        .unwrap_or(0.0);
    let nps = (mean + sp.nps_sd * noise).round().clamp(0.0, 10.0);
    let noise = Normal::new(0.0, 1.0)
        .map(|n| n.sample(&mut rng))
        .unwrap_or(0.0);
    let satisfaction = (1.0 + 0.4 * nps + 0.6 * noise).round().clamp(1.0, 5.0);
    sim.survey = Some(Survey {
        ts,
        nps: nps as u8,
        satisfaction: satisfaction as u8,
    });
}
