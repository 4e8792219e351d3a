//! Turns a range of simulated customers into the rows of the per-customer extracts, planting the
//! dirt as it goes (from each customer's own dirt stream), and counts what it wrote.

use std::ops::Range;

use bytes::Bytes;
use rand::Rng;
use rand::distributions::Distribution;
use rand_distr::Gamma;

use super::calendar::DAY;
use super::catalog::product_id;
use super::simulate::{CustomerSim, Order, OrderKind, simulate, time_of_day};
use super::table::{Cents, Row, Table, write_csv_record};
use super::vocab::{
    ACQUISITION_CHANNELS, CITIES, COUNTRY, EDUCATION, EMAIL_DOMAINS, ENGLISH_NAMES, FAMILY_NAMES,
    GENDERS, GIVEN_NAMES, INTERACTION_CHANNELS, INTERACTION_TYPES, MEMBERSHIP_TIERS, OCCUPATIONS,
    ORDER_CHANNELS, PREFERENCE_TYPES, REGIONS,
};
use super::{Ctx, DirtCounts, GenerateError, Stream, rng_for};

/// Columns of the customers extract.
pub(super) const CUSTOMER_COLUMNS: &[&str] = &[
    "customer_id",
    "full_name",
    "email",
    "phone",
    "gender",
    "birth_date",
    "occupation",
    "annual_income",
    "education",
    "country",
    "region",
    "city",
    "signup_date",
    "acquisition_channel",
    "membership_tier",
    "updated_at",
];
/// Columns of the orders extract.
pub(super) const ORDER_COLUMNS: &[&str] = &[
    "order_id",
    "customer_id",
    "order_ts",
    "total_amount",
    "status",
    "channel",
    "store_id",
    "currency",
    "discount_amount",
];
/// Columns of the order_items extract.
pub(super) const ITEM_COLUMNS: &[&str] = &[
    "order_id",
    "line_no",
    "product_id",
    "quantity",
    "unit_price",
    "discount",
    "unit_cost",
];
/// Columns of the interactions extract.
pub(super) const INTERACTION_COLUMNS: &[&str] = &[
    "interaction_id",
    "customer_id",
    "ts",
    "channel",
    "type",
    "satisfaction",
];
/// Columns of the campaign_contacts extract.
pub(super) const CONTACT_COLUMNS: &[&str] = &[
    "campaign_id",
    "customer_id",
    "contacted_ts",
    "responded_ts",
    "converted_order_id",
];
/// Columns of the surveys extract.
pub(super) const SURVEY_COLUMNS: &[&str] = &["customer_id", "survey_ts", "nps", "satisfaction"];
/// Columns of `_ground_truth/customers.csv`.
pub(super) const TRUTH_COLUMNS: &[&str] = &[
    "customer_id",
    "latent_type",
    "lambda_per_week",
    "dropout_p",
    "nu",
    "is_prospect",
    "purchases",
    "alive_at_end",
    "purchase_days",
];

/// The per-customer extracts, in the order their parts are listed.
pub(super) const PER_CUSTOMER_EXTRACTS: [(&str, &[&str]); 6] = [
    ("customers", CUSTOMER_COLUMNS),
    ("orders", ORDER_COLUMNS),
    ("order_items", ITEM_COLUMNS),
    ("interactions", INTERACTION_COLUMNS),
    ("campaign_contacts", CONTACT_COLUMNS),
    ("surveys", SURVEY_COLUMNS),
];

/// The encoded part files of one chunk of customers.
pub(super) struct ChunkOutput {
    /// Chunk index (the part number).
    pub(super) index: usize,
    /// (extract, encoded part, rows) in `PER_CUSTOMER_EXTRACTS` order.
    pub(super) parts: Vec<(&'static str, Bytes, u64)>,
    /// Ground-truth CSV rows of these customers (no header).
    pub(super) truth: Vec<u8>,
    pub(super) counts: DirtCounts,
}

/// `C00000001`.
pub(super) fn customer_id(number: u64) -> String {
    format!("C{number:08}")
}

/// An id that no customer has: `C9` + 8 digits is one character longer than every real id.
fn unknown_customer_id(number: u64) -> String {
    format!("C9{number:08}")
}

/// `O00000001-0001`.
fn order_id(customer: u64, seq: u32) -> String {
    format!("O{customer:08}-{seq:04}")
}

/// A variant of a canonical categorical value with stray case and/or whitespace; never equal to
/// it, and equal to it after trimming and case folding.
fn case_ws_variant(canonical: &str, rng: &mut impl Rng) -> String {
    loop {
        let cased = match rng.gen_range(0..3) {
            0 => canonical.to_lowercase(),
            1 => canonical.to_uppercase(),
            _ => {
                let mut c = canonical.chars();
                c.next()
                    .map(|f| {
                        f.to_uppercase()
                            .chain(c.flat_map(char::to_lowercase))
                            .collect()
                    })
                    .unwrap_or_default()
            }
        };
        let v = match rng.gen_range(0..4) {
            0 => cased,
            1 => format!(" {cased}"),
            2 => format!("{cased} "),
            _ => format!(" {cased} "),
        };
        if v != canonical {
            return v;
        }
    }
}

/// Index of the class drawn by `u` from exclusive class probabilities, `None` for clean.
fn class_of(u: f64, probs: &[f64]) -> Option<usize> {
    let mut acc = 0.0;
    for (i, p) in probs.iter().enumerate() {
        acc += p;
        if u < acc {
            return Some(i);
        }
    }
    None
}

/// Generates and encodes customers `range` (1-based numbers) as chunk `index`.
pub(super) fn generate_chunk(
    ctx: &Ctx,
    index: usize,
    range: Range<u64>,
) -> Result<ChunkOutput, GenerateError> {
    let f = ctx.format;
    let mut w = Writers {
        customers: Table::new(CUSTOMER_COLUMNS, f),
        orders: Table::new(ORDER_COLUMNS, f),
        items: Table::new(ITEM_COLUMNS, f),
        interactions: Table::new(INTERACTION_COLUMNS, f),
        contacts: Table::new(CONTACT_COLUMNS, f),
        surveys: Table::new(SURVEY_COLUMNS, f),
        truth: Vec::new(),
        row: Row::default(),
        counts: DirtCounts::default(),
    };
    let mut sim = CustomerSim::default();
    for number in range {
        simulate(ctx, number, &mut sim);
        w.customer(ctx, &sim);
    }
    let Writers {
        customers,
        orders,
        items,
        interactions,
        contacts,
        surveys,
        truth,
        counts,
        ..
    } = w;
    let mut parts = Vec::with_capacity(6);
    for (name, t) in [
        ("customers", customers),
        ("orders", orders),
        ("order_items", items),
        ("interactions", interactions),
        ("campaign_contacts", contacts),
        ("surveys", surveys),
    ] {
        let rows = t.rows();
        parts.push((name, t.finish()?, rows));
    }
    Ok(ChunkOutput {
        index,
        parts,
        truth,
        counts,
    })
}

struct Writers {
    customers: Table,
    orders: Table,
    items: Table,
    interactions: Table,
    contacts: Table,
    surveys: Table,
    truth: Vec<u8>,
    row: Row,
    counts: DirtCounts,
}

/// What goes in the order row's fields that dirt may replace.
struct OrderFields<'a> {
    customer_id: &'a str,
    ts: String,
    amount: String,
    channel: String,
}

impl Writers {
    fn customer(&mut self, ctx: &Ctx, sim: &CustomerSim) {
        let mut dirt = rng_for(ctx.seed, Stream::Dirt, sim.number);
        let cid = customer_id(sim.number);
        self.customer_rows(ctx, sim, &cid, &mut dirt);
        self.order_rows(ctx, sim, &cid, &mut dirt);
        self.activity_rows(ctx, sim, &cid);
        self.truth_row(sim, &cid);
    }

    fn customer_rows(&mut self, ctx: &Ctx, sim: &CustomerSim, cid: &str, dirt: &mut impl Rng) {
        let cal = &ctx.cal;
        let pr = &sim.profile;
        let family = FAMILY_NAMES[usize::from(pr.family)];
        let given = GIVEN_NAMES[usize::from(pr.given)];
        let english = ENGLISH_NAMES[usize::from(pr.english)];
        let full_name = match pr.name_style {
            0 => format!("{family} {given}"),
            1 => format!("{family}, {given}"),
            2 => format!("{english} {family}"),
            _ => format!("{given} \"{english}\" {family}"),
        };
        let local = format!(
            "{}.{}{}",
            given.to_lowercase(),
            family.to_lowercase(),
            sim.number
        );
        let mut email = format!("{local}@{}", EMAIL_DOMAINS[usize::from(pr.email_domain)]);
        let p = pr.phone;
        let phone = format!(
            "+86 1{:02} {:04} {:04}",
            p / 100_000_000,
            (p / 10_000) % 10_000,
            p % 10_000
        );
        let mut gender = GENDERS[usize::from(pr.gender)].to_string();
        let region = usize::from(pr.region);
        let mut region_text = REGIONS[region].to_string();

        let class = class_of(dirt.r#gen(), &ctx.params.dirt.customer_classes());
        // For a duplicated customer: (older row's membership, region, updated_at, newer updated_at).
        let mut older = None;
        match class {
            Some(0) => {
                let start = sim.signup_day * DAY;
                let horizon = cal.horizon_secs();
                let old_ts = dirt.gen_range(start..horizon - 1);
                let new_ts = dirt.gen_range(old_ts + 1..horizon);
                let change_tier = pr.membership > 0 && dirt.gen_bool(0.5);
                let (old_tier, old_region) = if change_tier {
                    (pr.membership - 1, region)
                } else {
                    let shift = dirt.gen_range(1..REGIONS.len());
                    (pr.membership, (region + shift) % REGIONS.len())
                };
                let newer_first = dirt.gen_bool(0.5);
                older = Some((old_tier, old_region, old_ts, new_ts, newer_first));
                self.counts.duplicate_customer += 1;
            }
            Some(1) => {
                email = match dirt.gen_range(0..4) {
                    0 => format!("{local}#example.com"),
                    1 => "@example.com".to_string(),
                    2 => "no-email".to_string(),
                    _ => "a@b".to_string(),
                };
                self.counts.invalid_email += 1;
            }
            Some(2) => {
                region_text = case_ws_variant(&region_text, dirt);
                self.counts.region_case_whitespace += 1;
            }
            Some(3) => {
                gender = case_ws_variant(&gender, dirt);
                self.counts.gender_case_whitespace += 1;
            }
            _ => {}
        }

        let write =
            |this: &mut Self, tier: u8, region_ix: usize, region_text: &str, updated: i64| {
                this.row
                    .clear()
                    .s(cid)
                    .s(&full_name)
                    .s(&email)
                    .s(&phone)
                    .s(&gender)
                    .d(cal.d(pr.birth_day))
                    .s(OCCUPATIONS[usize::from(pr.occupation)])
                    .d(Cents(pr.income_cents))
                    .s(EDUCATION[usize::from(pr.education)].0)
                    .s(COUNTRY)
                    .s(region_text)
                    .s(CITIES[region_ix][usize::from(pr.city)])
                    .d(cal.d(sim.signup_day))
                    .s(ACQUISITION_CHANNELS[usize::from(pr.acquisition)].0)
                    .s(MEMBERSHIP_TIERS[usize::from(tier)])
                    .d(cal.ts(updated));
                this.customers.push(&this.row);
                this.counts.customer_rows += 1;
            };
        match older {
            Some((old_tier, old_region, old_ts, new_ts, newer_first)) => {
                let old_text = REGIONS[old_region];
                if newer_first {
                    write(self, pr.membership, region, &region_text, new_ts);
                    write(self, old_tier, old_region, old_text, old_ts);
                } else {
                    write(self, old_tier, old_region, old_text, old_ts);
                    write(self, pr.membership, region, &region_text, new_ts);
                }
            }
            None => {
                write(self, pr.membership, region, &region_text, pr.updated_at);
            }
        }
    }

    fn order_row(&mut self, ctx: &Ctx, o: &Order, sim: &CustomerSim, f: &OrderFields<'_>) {
        let status = match o.kind {
            OrderKind::Process if o.status_missing => "",
            OrderKind::Process => "completed",
            OrderKind::Cancelled => "cancelled",
            OrderKind::Returned => "returned",
        };
        self.row
            .clear()
            .s(&order_id(sim.number, o.seq))
            .s(f.customer_id)
            .s(&f.ts)
            .s(&f.amount)
            .s(status)
            .s(&f.channel);
        if o.online {
            self.row.empty();
        } else {
            self.row.d(format_args!("S{:03}", o.store));
        }
        self.row
            .s(&ctx.params.orders.currency)
            .d(Cents(o.discount_cents(&sim.lines)));
        self.orders.push(&self.row);
        self.counts.order_rows += 1;
    }

    fn order_rows(&mut self, ctx: &Ctx, sim: &CustomerSim, cid: &str, dirt: &mut impl Rng) {
        let cal = &ctx.cal;
        let dp = &ctx.params.dirt;
        let mut duplicates: Vec<(usize, String)> = Vec::new();
        let mut extra_classes: Vec<usize> = Vec::new();
        for (i, o) in sim.orders.iter().enumerate() {
            let canonical = ORDER_CHANNELS[usize::from(!o.online)];
            let mut channel = canonical.to_string();
            let u: f64 = dirt.r#gen();
            match o.kind {
                OrderKind::Process => {
                    self.counts.process_orders += 1;
                    if o.status_missing {
                        self.counts.status_missing += 1;
                    }
                    match class_of(u, &[dp.duplicate_order_id, dp.channel_case_whitespace]) {
                        Some(0) => duplicates.push((i, channel.clone())),
                        Some(1) => {
                            channel = case_ws_variant(canonical, dirt);
                            self.counts.channel_case_whitespace += 1;
                        }
                        _ => {}
                    }
                    if let Some(c) = class_of(dirt.r#gen(), &dp.extra_order_classes()) {
                        extra_classes.push(c);
                    }
                }
                OrderKind::Cancelled | OrderKind::Returned => {
                    if o.kind == OrderKind::Cancelled {
                        self.counts.cancelled_orders += 1;
                    } else {
                        self.counts.returned_orders += 1;
                    }
                    if u < dp.channel_case_whitespace {
                        channel = case_ws_variant(canonical, dirt);
                        self.counts.channel_case_whitespace += 1;
                    }
                }
            }
            let fields = OrderFields {
                customer_id: cid,
                ts: cal.ts(o.ts).to_string(),
                amount: Cents(o.amount_cents).to_string(),
                channel,
            };
            self.order_row(ctx, o, sim, &fields);

            // Items of every real order; invalid quantities only on process orders.
            let sale_day = o.ts.div_euclid(DAY);
            for (line_no, line) in sim.lines[o.lines.clone()].iter().enumerate() {
                let product = &ctx.catalog.products[line.product as usize];
                debug_assert!(product.launch_day <= sale_day);
                self.row
                    .clear()
                    .s(&order_id(sim.number, o.seq))
                    .d(line_no + 1);
                self.row.s(&product_id(product.number));
                let bad = o.kind == OrderKind::Process && dirt.gen_bool(dp.invalid_quantity);
                if bad {
                    let v = ["two", "1.5.0", ""][dirt.gen_range(0..3)];
                    self.row.s(v);
                    self.counts.invalid_quantity += 1;
                } else {
                    self.row.d(line.quantity);
                }
                self.row
                    .d(Cents(product.list_cents))
                    .d(Cents(line.discount_cents))
                    .d(Cents(product.cost_cents));
                self.items.push(&self.row);
                self.counts.item_rows += 1;
            }
        }

        // Extra dirty orders (no items), numbered after the real ones.
        let spend = Gamma::new(ctx.params.gamma_gamma.p, 1.0 / sim.nu).ok();
        let first_day = sim.first_ts.div_euclid(DAY);
        let last_day = (sim.last_ts.div_euclid(DAY)
            + i64::from(ctx.params.orders.extra_window_after_last_days))
        .min(cal.end_day);
        let unknown_id = unknown_customer_id(sim.number);
        for (seq, class) in (sim.orders.len() as u32 + 1..).zip(extra_classes) {
            let day = dirt.gen_range(first_day..=last_day);
            let tod = time_of_day(ctx, dirt);
            let z = spend.as_ref().map_or(10.0, |g| g.sample(dirt));
            let amount = ((z * 100.0).round() as i64).max(1);
            let online = dirt.gen_bool(0.6);
            let o = Order {
                seq,
                ts: day * DAY + tod,
                kind: OrderKind::Process,
                amount_cents: amount,
                online,
                store: sim.profile.home_store,
                status_missing: false,
                lines: 0..0,
            };
            let mut fields = OrderFields {
                customer_id: cid,
                ts: cal.ts(o.ts).to_string(),
                amount: Cents(amount).to_string(),
                channel: ORDER_CHANNELS[usize::from(!online)].to_string(),
            };
            let year = cal.date(day).format("%Y").to_string();
            let hh = tod / 3600;
            let mm = (tod / 60) % 60;
            match class {
                0 => {
                    fields.ts = match dirt.gen_range(0..4) {
                        0 => {
                            let md = ["02-30", "02-31", "04-31", "06-31", "09-31", "11-31"]
                                [dirt.gen_range(0..6)];
                            format!("{year}-{md} {hh:02}:{mm:02}:00")
                        }
                        1 => format!("{} {hh:02}:{mm:02}", cal.date(day).format("%d/%m/%Y")),
                        2 => "not a date".to_string(),
                        _ => format!("{year}-13-{:02}", dirt.gen_range(1..=28)),
                    };
                    self.counts.invalid_order_ts += 1;
                }
                1 => {
                    let (whole, cents) = (amount / 100, amount % 100);
                    fields.amount = match dirt.gen_range(0..4) {
                        0 => format!("{whole},{cents:02}"),
                        1 => "N/A".to_string(),
                        2 => format!("{whole}.{cents:02}.{}", dirt.gen_range(0..10)),
                        _ => format!("USD {whole}"),
                    };
                    self.counts.invalid_total_amount += 1;
                }
                2 => {
                    fields.amount = match dirt.gen_range(0..3) {
                        0 => "0".to_string(),
                        1 => "0.00".to_string(),
                        _ => Cents(-amount).to_string(),
                    };
                    self.counts.non_positive_amount += 1;
                }
                3 => {
                    fields.customer_id = &unknown_id;
                    self.counts.unknown_customer += 1;
                }
                _ => {
                    let after = cal.end_day + dirt.gen_range(1..=3 * 365);
                    fields.ts = cal.ts(after * DAY + tod).to_string();
                    self.counts.after_end += 1;
                }
            }
            self.order_row(ctx, &o, sim, &fields);
        }

        // Duplicated process orders: an identical copy after the customer's other orders.
        for (i, channel) in duplicates {
            let o = &sim.orders[i];
            let fields = OrderFields {
                customer_id: cid,
                ts: cal.ts(o.ts).to_string(),
                amount: Cents(o.amount_cents).to_string(),
                channel,
            };
            self.order_row(ctx, o, sim, &fields);
            self.counts.duplicate_order_id += 1;
        }
    }

    fn activity_rows(&mut self, ctx: &Ctx, sim: &CustomerSim, cid: &str) {
        let cal = &ctx.cal;
        for (k, it) in sim.interactions.iter().enumerate() {
            self.row
                .clear()
                .d(format_args!("I{:08}-{:04}", sim.number, k + 1))
                .s(cid)
                .d(cal.ts(it.ts))
                .s(INTERACTION_CHANNELS[usize::from(it.channel)])
                .s(INTERACTION_TYPES[usize::from(it.kind)])
                .d(it.satisfaction);
            self.interactions.push(&self.row);
        }
        for c in &sim.contacts {
            let campaign = &ctx.campaigns[c.campaign];
            self.row
                .clear()
                .s(&campaign.id())
                .s(cid)
                .d(cal.ts(c.contacted));
            match c.responded {
                Some(ts) => self.row.d(cal.ts(ts)),
                None => self.row.empty(),
            };
            match c.converted {
                Some(seq) => self.row.s(&order_id(sim.number, seq)),
                None => self.row.empty(),
            };
            self.contacts.push(&self.row);
            self.counts.contacts_responded += u64::from(c.responded.is_some());
            self.counts.contacts_converted += u64::from(c.converted.is_some());
        }
        if let Some(s) = &sim.survey {
            self.row
                .clear()
                .s(cid)
                .d(cal.ts(s.ts))
                .d(s.nps)
                .d(s.satisfaction);
            self.surveys.push(&self.row);
        }
    }

    fn truth_row(&mut self, sim: &CustomerSim, cid: &str) {
        self.row
            .clear()
            .s(cid)
            .s(PREFERENCE_TYPES[usize::from(sim.ptype)])
            .d(sim.lambda)
            .d(sim.dropout_p)
            .d(sim.nu)
            .d(sim.is_prospect)
            .d(sim.purchases)
            .d(sim.alive_at_end)
            .d(sim.purchase_days);
        write_csv_record(&mut self.truth, self.row.fields());
        self.counts.customers += 1;
        self.counts.prospects += u64::from(sim.is_prospect);
        self.counts.alive_at_end += u64::from(sim.alive_at_end);
    }
}
