//! Sample CRM extracts with known ground truth, for demos, benchmarks and recovery tests.
//!
//! [`generate`] writes the eight raw extracts of the data contract (customers, orders,
//! order_items, products, interactions, campaigns, campaign_contacts, surveys), a manifest
//! `_generator.json` and a `_ground_truth/` folder that the pipeline never reads.
//!
//! # Layout and formats
//! `<prefix>/<extract>/part-NNNNN.<ext>`, ext `csv`, `csv.gz` or `parquet`. The per-customer
//! extracts have one part per chunk of `chunk_size` customers (part number = chunk index;
//! customers 1..=chunk_size are part 00000); products and campaigns have one part. CSV has a
//! header row, RFC 4180 quoting (names and campaign names contain commas and quotes) and `\n`
//! line ends; Parquet has every column Utf8 so that dirty values survive, with an empty field
//! written as null (as a CSV reader reads it). Dates are `YYYY-MM-DD`, timestamps
//! `YYYY-MM-DD HH:MM:SS` in local business time without a zone, money has two decimals with
//! `.`. Ids: customers `C00000001` (8 digits, 1-based), orders `O00000001-0001` (customer
//! number, chronological order sequence within the customer; the extra dirty orders continue
//! the sequence), order lines 1-based `line_no`, products `P000001`, campaigns `K001`,
//! interactions `I00000001-0001`. Ground truth: `_ground_truth/params.json` (every
//! [`GenerativeParams`] field plus `"time_unit": "week"`), `_ground_truth/customers.csv`
//! (customer_id, latent_type, lambda_per_week, dropout_p, nu, is_prospect, purchases,
//! alive_at_end, purchase_days) and `_ground_truth/dirt.json` (see [`DirtCounts`]).
//!
//! # Generative process (time unit: week; day offsets count from `start`)
//! 1. Signup date uniform on [start, end - 1]. A customer is a prospect (no orders at all) with
//!    probability `prospect_share` (5%); otherwise the first purchase is at signup + U{0..=14}
//!    days at a uniform time of day within business hours (08:00-22:00), and the customer is a
//!    prospect too if that day is after `end`.
//! 2. Purchases follow BG/NBD (Fader, Hardie and Lee 2005): lambda ~ Gamma(shape r, rate alpha),
//!    p ~ Beta(a, b), with the published CDNOW values r = 0.243, alpha = 4.414, a = 0.793,
//!    b = 2.426 per week. Inter-purchase times are Exponential(lambda) weeks; after each repeat
//!    purchase (never after the first) the customer drops out with probability p. Purchases
//!    after `end` (23:59:59) are not written; `alive_at_end` = not dropped out by then.
//!    Written timestamps: the first purchase keeps its drawn time; a repeat purchase is written
//!    on its own calendar day (the day its continuous time falls on, bumped to the day after
//!    the previous purchase if it would share that day, never past `end`, so purchases share a
//!    day only when the bump would pass `end`) at a fresh uniform business-hours time of day.
//!    The ground truth's `purchases` counts the process purchases (the first included) and
//!    `purchase_days` their distinct days.
//! 3. Spend follows Gamma-Gamma (Fader and Hardie 2013): nu ~ Gamma(shape q, rate gamma) per
//!    customer, each process order's `total_amount` z ~ Gamma(shape p, rate nu), p = 6.25,
//!    q = 3.74, gamma = 15.44, rounded to cents (at least 0.01). Process orders have status
//!    `completed`, 5% of them an empty status (which means completed). `total_amount` is the
//!    amount paid and is authoritative; the items describe the basket and do not sum to it.
//! 4. Cancelled and returned orders (rate 3% each per process order) are extra orders with
//!    their own ids, items and Gamma(p, nu) amounts, at uniform days between the first purchase
//!    and min(end, last purchase + 30 days). They come from their own RNG stream and do not
//!    change the process purchases.
//! 5. Latent preference type: price_sensitive 25%, quality_seeking 20%, trend_following 15%,
//!    mainstream 40%. An order has 1..=4 lines (weights 45/30/15/10%), quantity 1..=3
//!    (70/20/10%). Per line, with the type's probabilities ([`TypeParams`]): premium tier
//!    (0.03 / 0.70 / 0.20 / 0.12), else budget with `budget_share_of_non_premium` (0.70 / 0.25
//!    / 0.40 / 0.40), else standard; a new product, launched within the 90 days up to the order
//!    day (0.08 / 0.12 / 0.70 / 0.10), else a product launched before that window; a discount
//!    of U[15%, 50%] of the line's gross (0.75 / 0.05 / 0.10 / 0.12). `unit_price` is the list
//!    price, `discount` the amount off the whole line, `unit_cost` the product's cost, U[55%,
//!    75%] of its list price (so deep discounts give negative margins). The order's
//!    `discount_amount` is the sum of its line discounts.
//! 6. Products: 2,000 products over 10 categories and 40 brands (4 per category), tiers budget
//!    35% / standard 45% / premium 20% with list prices x.99 in [2, 8), [7, 15), [14, 40);
//!    launch dates stratified within each tier over [start - 730 days, end] so every tier has
//!    new products at every date; ids in launch order.
//! 7. Demographics: gender F/M/other (49/48/3%), age at `start` uniform 18..=80, occupation
//!    (students and retirees by age), education, annual income lognormal (median 60,000, log-sd
//!    0.6) times the type's income factor, country CN, region north/south/east/west/central and
//!    a city of that region, acquisition channel, membership tier from the process purchases
//!    (basic < 2, silver < 5, gold < 10, else platinum), updated_at uniform in [signup, end].
//!    Orders are online with a probability falling linearly from 80% at 18 to 25% at 80, else
//!    in a store (70% the home store).
//! 8. Interactions: Poisson(1 + 0.5 x purchases) per customer at uniform days between signup
//!    and min(end, last purchase + 90 days); channel hotline/online_chat/email/social_media/store
//!    (25/25/20/15/15%), type inquiry 50% / complaint 15% / suggestion 10% / praise 15% / other
//!    10%, satisfaction 1-5 drawn per type (low for complaints, high for praise).
//! 9. Campaigns: one per calendar month overlapping [start, end], spanning that month (clipped),
//!    channel email/sms/app/direct_mail, cost U[2,000, 20,000). Each customer whose first
//!    purchase is before a campaign's start is contacted with probability 15% within its first 7
//!    days; a contact responds with probability 8% (price_sensitive 15%) within 72 hours; a
//!    responder's `converted_order_id` is their first process order within 14 days after the
//!    contact, if any. Campaigns do not influence purchases.
//! 10. Surveys: 20% of purchasing customers answer one survey at a uniform time after their first
//!     purchase: NPS = round(Normal(type mean, 2)) clamped to 0..=10 (quality_seeking 8.4,
//!     trend_following 7.2, mainstream 7.0, price_sensitive 6.3), satisfaction =
//!     round(1 + 0.4 NPS + Normal(0, 0.6)) clamped to 1..=5.
//!
//! # Planted dirt
//! Rates in [`DirtParams`]; exact counts in `_ground_truth/dirt.json` and
//! [`GenerateSummary::dirt`]. A row carries at most one dirt class, and the dirty orders are
//! extra rows, so the process truth is untouched. See [`DirtCounts`] for every key.
//!
//! # Determinism and scale
//! Every customer draws from its own ChaCha8 streams: `ChaCha8Rng::seed_from_u64(seed)` with
//! `set_stream(concern << 40 | customer_number)`, where concern 0 is the purchase process (so
//! the process stream is exactly `set_stream(customer_number)`) and the others are type,
//! orders, cancelled/returned, interactions, campaigns, surveys, profile and dirt. Products and
//! campaigns have streams of their own. The output is therefore the same for any chunk size and
//! thread count (the concatenated rows of the parts are identical), and customers 1..=n are the
//! same whatever the total number of customers. Chunks are generated in parallel with rayon in
//! waves of one chunk per thread while the previous wave is uploaded, so memory is about
//! 2 x threads x chunk_size customers.

mod calendar;
mod catalog;
mod chunk;
mod dirt;
mod manifest;
mod params;
mod simulate;
mod table;
#[cfg(test)]
mod tests;
mod vocab;

/// Arrow and Parquet, through DataFusion's re-exports (the versions DataFusion pins).
mod deps {
    pub(super) use datafusion::arrow;
    pub(super) use datafusion::parquet;
}

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use bytes::Bytes;
use chrono::{Datelike, NaiveDate};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

pub use params::{
    BasketParams, BgNbdParams, CampaignParams, CatalogParams, DemographicParams, DirtParams,
    GammaGammaParams, GenerativeParams, InteractionParams, OrderParams, PreferenceTypes,
    SurveyParams, TypeParams,
};

pub use dirt::DirtCounts;
pub use manifest::{
    GenerateSummary, GeneratorManifest, GroundTruthParams, MANIFEST, WrittenFile, read_manifest,
};

use calendar::Calendar;
use catalog::{Campaign, Catalog};
use chunk::{ChunkOutput, PER_CUSTOMER_EXTRACTS, TRUTH_COLUMNS};
use simulate::Dists;

/// Version of the generator's output; bumped whenever the same options give different data.
pub const GENERATOR_VERSION: &str = "1.0.0";

/// The largest number of customers: ids have eight digits.
pub const MAX_CUSTOMERS: u64 = 99_999_999;

/// File format of the extracts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutputFormat {
    /// Plain CSV with a header row.
    #[default]
    Csv,
    /// Gzip-compressed CSV (`.csv.gz`).
    CsvGzip,
    /// Parquet with every column Utf8.
    Parquet,
}

impl OutputFormat {
    /// File extension without the dot.
    pub fn extension(self) -> &'static str {
        match self {
            OutputFormat::Csv => "csv",
            OutputFormat::CsvGzip => "csv.gz",
            OutputFormat::Parquet => "parquet",
        }
    }

    /// The name used in the manifest and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            OutputFormat::Csv => "csv",
            OutputFormat::CsvGzip => "csv_gzip",
            OutputFormat::Parquet => "parquet",
        }
    }
}

impl fmt::Display for OutputFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for OutputFormat {
    type Err = GenerateError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "csv" => Ok(OutputFormat::Csv),
            "csv_gzip" | "csv-gzip" | "csv.gz" | "gzip" | "gz" => Ok(OutputFormat::CsvGzip),
            "parquet" => Ok(OutputFormat::Parquet),
            other => Err(GenerateError::InvalidOptions(format!(
                "unknown format `{other}`: use csv, csv_gzip or parquet"
            ))),
        }
    }
}

/// What to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerateOptions {
    /// Number of customers (1..=99,999,999).
    pub customers: u64,
    /// Seed of every random draw.
    pub seed: u64,
    /// First day of the observation window.
    pub start: NaiveDate,
    /// Last day of the observation window (inclusive); purchases after it are not written.
    pub end: NaiveDate,
    /// File format of the extracts.
    pub format: OutputFormat,
    /// Customers per part file; memory grows with chunk_size x threads.
    pub chunk_size: usize,
    /// The generative process.
    pub params: GenerativeParams,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        Self {
            customers: 10_000,
            seed: 42,
            start: NaiveDate::from_ymd_opt(2022, 1, 1).unwrap_or(NaiveDate::MIN),
            end: NaiveDate::from_ymd_opt(2024, 12, 31).unwrap_or(NaiveDate::MIN),
            format: OutputFormat::Csv,
            chunk_size: 50_000,
            params: GenerativeParams::default(),
        }
    }
}

impl GenerateOptions {
    /// Checks the options; the message says what to change.
    pub fn validate(&self) -> Result<(), GenerateError> {
        let bad = |m: String| Err(GenerateError::InvalidOptions(m));
        if self.customers == 0 || self.customers > MAX_CUSTOMERS {
            return bad(format!(
                "customers must be in 1..={MAX_CUSTOMERS}, got {}",
                self.customers
            ));
        }
        if self.chunk_size == 0 {
            return bad("chunk_size must be at least 1".to_string());
        }
        if self.end <= self.start {
            return bad(format!(
                "end ({}) must be after start ({})",
                self.end, self.start
            ));
        }
        if self.start.year() < 1900 || self.end.year() > 9990 {
            return bad("start and end must lie in the years 1900..=9990".to_string());
        }
        self.params
            .validate()
            .map_err(GenerateError::InvalidOptions)
    }
}

/// Errors of the generator.
#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    /// The options or parameters are invalid.
    #[error("invalid generate options: {0}")]
    InvalidOptions(String),
    /// The object store failed.
    #[error("writing {path}: {source}")]
    Store {
        /// The object being written.
        path: String,
        /// The store's error.
        #[source]
        source: object_store::Error,
    },
    /// A part file could not be encoded.
    #[error("encoding output: {0}")]
    Encode(String),
    /// A JSON file could not be serialised.
    #[error("serialising {what}: {source}")]
    Json {
        /// Which file.
        what: &'static str,
        /// The serialiser's error.
        #[source]
        source: serde_json::Error,
    },
    /// A worker thread failed (a bug).
    #[error("generator worker failed: {0}")]
    Worker(String),
}

impl From<GenerateError> for crate::Error {
    fn from(e: GenerateError) -> Self {
        match e {
            GenerateError::InvalidOptions(m) => crate::Error::Usage(m),
            GenerateError::Store { path, source } => crate::Error::store(path, source),
            other => crate::Error::Internal(other.to_string()),
        }
    }
}

/// RNG streams: one per concern, so changing one part of the process leaves the others alone.
#[derive(Debug, Clone, Copy)]
enum Stream {
    Process = 0,
    Type = 1,
    Orders = 2,
    Extra = 3,
    Interactions = 4,
    Campaign = 5,
    Survey = 6,
    Profile = 7,
    Dirt = 8,
    Catalog = 9,
    Campaigns = 10,
}

/// The RNG of `stream` for customer `number` (0 for the shared streams).
fn rng_for(seed: u64, stream: Stream, number: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(((stream as u64) << 40) | number);
    rng
}

/// Shared, read-only state of one run.
struct Ctx {
    seed: u64,
    params: GenerativeParams,
    cal: Calendar,
    catalog: Catalog,
    campaigns: Vec<Campaign>,
    dists: Dists,
    format: OutputFormat,
}

impl Ctx {
    fn new(opts: &GenerateOptions) -> Result<Self, GenerateError> {
        let cal = Calendar::new(opts.start, opts.end);
        Ok(Self {
            seed: opts.seed,
            dists: Dists::new(&opts.params).map_err(GenerateError::InvalidOptions)?,
            catalog: Catalog::generate(opts.seed, &cal, &opts.params),
            campaigns: catalog::campaigns(opts.seed, &cal, &opts.params),
            params: opts.params.clone(),
            format: opts.format,
            cal,
        })
    }
}

/// Writes files under the prefix and records them.
struct Sink {
    store: Arc<dyn ObjectStore>,
    prefix: Path,
    files: Vec<WrittenFile>,
}

impl Sink {
    fn path(&self, rel: &str) -> Path {
        sink_path(&self.prefix, rel)
    }

    async fn put(&self, rel: &str, bytes: Bytes) -> Result<(), GenerateError> {
        let path = self.path(rel);
        self.store
            .put(&path, PutPayload::from(bytes))
            .await
            .map(|_| ())
            .map_err(|source| GenerateError::Store {
                path: path.to_string(),
                source,
            })
    }

    fn record(&mut self, rel: String, extract: &str, rows: u64, bytes: u64) {
        self.files.push(WrittenFile {
            path: rel,
            extract: extract.to_string(),
            rows,
            bytes,
        });
    }

    async fn put_json(
        &mut self,
        rel: &str,
        what: &'static str,
        value: &impl Serialize,
    ) -> Result<(), GenerateError> {
        let mut text = serde_json::to_vec_pretty(value)
            .map_err(|source| GenerateError::Json { what, source })?;
        text.push(b'\n');
        let len = text.len() as u64;
        self.put(rel, Bytes::from(text)).await?;
        self.record(rel.to_string(), what, 0, len);
        Ok(())
    }
}

fn part_name(extract: &str, index: usize, format: OutputFormat) -> String {
    format!("{extract}/part-{index:05}.{}", format.extension())
}

/// Writes the extracts, the ground truth and the manifest under `prefix` in `store` (see the
/// module documentation for the layout). The manifest `_generator.json` is written last.
pub async fn generate(
    opts: &GenerateOptions,
    store: Arc<dyn ObjectStore>,
    prefix: &Path,
) -> Result<GenerateSummary, GenerateError> {
    opts.validate()?;
    let ctx = Arc::new(Ctx::new(opts)?);
    let format = opts.format;
    let mut sink = Sink {
        store: Arc::clone(&store),
        prefix: prefix.clone(),
        files: Vec::new(),
    };
    let mut rows: BTreeMap<String, u64> = BTreeMap::new();

    // Shared extracts first.
    for (extract, table) in [
        ("products", ctx.catalog.table(&ctx.cal, format)),
        (
            "campaigns",
            catalog::campaign_table(&ctx.campaigns, &ctx.cal, format),
        ),
    ] {
        let n = table.rows();
        let bytes = table.finish()?;
        let rel = part_name(extract, 0, format);
        let len = bytes.len() as u64;
        sink.put(&rel, bytes).await?;
        sink.record(rel, extract, n, len);
        rows.insert(extract.to_string(), n);
    }
    sink.put_json(
        "_ground_truth/params.json",
        "_ground_truth",
        &GroundTruthParams {
            time_unit: "week".to_string(),
            seed: opts.seed,
            start: opts.start,
            end: opts.end,
            params: opts.params.clone(),
        },
    )
    .await?;

    // Per-customer extracts, streamed chunk by chunk; the ground-truth customers in order.
    let truth_rel = "_ground_truth/customers.csv";
    let truth_path = sink.path(truth_rel);
    let upload = store
        .put_multipart(&truth_path)
        .await
        .map_err(|source| GenerateError::Store {
            path: truth_path.to_string(),
            source,
        })?;
    let mut truth = WriteMultipart::new(upload);
    let mut header = Vec::new();
    table::write_csv_record(&mut header, TRUTH_COLUMNS.iter().copied());
    let mut truth_bytes = header.len() as u64;
    truth.write(&header);
    let mut counts = DirtCounts::default();
    let result = write_chunks(
        opts,
        &ctx,
        &mut sink,
        &mut truth,
        &mut truth_bytes,
        &mut counts,
    )
    .await;
    if let Err(e) = result {
        // Best effort: the error being reported matters more than a failed abort.
        let _ = truth.abort().await;
        return Err(e);
    }
    truth
        .finish()
        .await
        .map_err(|source| GenerateError::Store {
            path: truth_path.to_string(),
            source,
        })?;

    // Extract files first, ordered by extract then part; total the rows per extract.
    let (mut extract_files, truth_files): (Vec<_>, Vec<_>) = std::mem::take(&mut sink.files)
        .into_iter()
        .partition(|f| !f.extract.starts_with('_'));
    extract_files.sort_by(|a, b| a.path.cmp(&b.path));
    for f in &extract_files {
        if PER_CUSTOMER_EXTRACTS.iter().any(|(e, _)| *e == f.extract) {
            *rows.entry(f.extract.clone()).or_default() += f.rows;
        }
    }
    for (extract, _) in PER_CUSTOMER_EXTRACTS {
        rows.entry(extract.to_string()).or_default();
    }
    sink.files = extract_files.clone();
    sink.files.extend(truth_files);
    sink.record(
        truth_rel.to_string(),
        "_ground_truth",
        counts.customers,
        truth_bytes,
    );
    let dirt = counts.to_map();
    sink.put_json("_ground_truth/dirt.json", "_ground_truth", &dirt)
        .await?;
    let manifest = GeneratorManifest {
        generator: "crm-pipeline generate".to_string(),
        generator_version: GENERATOR_VERSION.to_string(),
        seed: opts.seed,
        customers: opts.customers,
        start: opts.start,
        end: opts.end,
        format,
        chunk_size: opts.chunk_size,
        time_unit: "week".to_string(),
        timestamps: "YYYY-MM-DD HH:MM:SS, local business time without a zone".to_string(),
        ground_truth: "_ground_truth/".to_string(),
        rows: rows.clone(),
        files: extract_files,
    };
    sink.put_json(MANIFEST, "_generator", &manifest).await?;
    let bytes_written = sink.files.iter().map(|f| f.bytes).sum();
    Ok(GenerateSummary {
        rows,
        dirt,
        files: sink.files,
        bytes_written,
    })
}

/// Generates the chunks in waves of one chunk per rayon thread, generating the next wave while
/// the current one is uploaded.
async fn write_chunks(
    opts: &GenerateOptions,
    ctx: &Arc<Ctx>,
    sink: &mut Sink,
    truth: &mut WriteMultipart,
    truth_bytes: &mut u64,
    counts: &mut DirtCounts,
) -> Result<(), GenerateError> {
    let chunk = opts.chunk_size as u64;
    let n_chunks = opts.customers.div_ceil(chunk) as usize;
    let wave = rayon::current_num_threads().max(1);
    let customers = opts.customers;
    let spawn = |first: usize| {
        let ctx = Arc::clone(ctx);
        tokio::task::spawn_blocking(move || {
            (first..(first + wave).min(n_chunks))
                .into_par_iter()
                .map(|c| {
                    let lo = c as u64 * chunk + 1;
                    let hi = ((c as u64 + 1) * chunk).min(customers);
                    chunk::generate_chunk(&ctx, c, lo..hi + 1)
                })
                .collect::<Vec<Result<ChunkOutput, GenerateError>>>()
        })
    };
    let mut next = Some(spawn(0));
    let mut first = 0;
    while let Some(handle) = next.take() {
        let outputs = handle
            .await
            .map_err(|e| GenerateError::Worker(e.to_string()))?;
        first += wave;
        if first < n_chunks {
            next = Some(spawn(first));
        }
        let store = &sink.store;
        let prefix = &sink.prefix;
        let mut uploads = Vec::new();
        let mut written = Vec::new();
        for out in outputs {
            let out = out?;
            truth
                .wait_for_capacity(4)
                .await
                .map_err(|source| GenerateError::Store {
                    path: "_ground_truth/customers.csv".to_string(),
                    source,
                })?;
            truth.write(&out.truth);
            *truth_bytes += out.truth.len() as u64;
            counts.add(&out.counts);
            for (extract, bytes, n) in out.parts {
                let rel = part_name(extract, out.index, opts.format);
                written.push((rel.clone(), extract, n, bytes.len() as u64));
                uploads.push(async move {
                    let path = sink_path(prefix, &rel);
                    store
                        .put(&path, PutPayload::from(bytes))
                        .await
                        .map_err(|source| GenerateError::Store {
                            path: path.to_string(),
                            source,
                        })
                });
            }
        }
        futures::future::try_join_all(uploads).await?;
        for (rel, extract, n, len) in written {
            sink.record(rel, extract, n, len);
        }
    }
    Ok(())
}

fn sink_path(prefix: &Path, rel: &str) -> Path {
    rel.split('/').fold(prefix.clone(), |p, part| p.join(part))
}
