//! Segments 1,000,000 customers with every scheme (RFM quintiles and eight classes, value tiers,
//! current value, lifecycle, preference, usage, value x loyalty, k-means clusters with silhouette
//! selection of k) plus migration against a previous period, and prints the wall time per scheme
//! and the process's peak memory. Inputs are synthetic segment_inputs rows with four behavioural
//! groups, generated with a fixed seed.
//!
//! Run: `cargo bench --bench segmentation_1m` (release build). Optional argument: customers.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use crm_pipeline::models::ModelsConfig;
use crm_pipeline::models::segments::SegmentsModel;
use crm_pipeline::models::{Model, ModelInputs};
use datafusion::arrow::array::{ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Gamma, Normal};

fn inputs(n: usize, seed: u64) -> RecordBatch {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let noise = Normal::new(0.0, 0.08).unwrap();
    let spend = Gamma::new(6.0, 8.0).unwrap();
    let mut cols: BTreeMap<&str, Vec<Option<f64>>> = BTreeMap::new();
    let names = [
        "recency_days",
        "frequency",
        "revenue",
        "margin",
        "avg_order_value",
        "days_since_first_order",
        "period_orders",
        "days_without_purchase_before_period",
        "p_alive",
        "clv",
        "discount_line_share",
        "premium_line_share",
        "new_product_line_share",
        "categories",
    ];
    let mut ids = Vec::with_capacity(n);
    let mut orders = Vec::with_capacity(n);
    let mut methods = Vec::with_capacity(n);
    for i in 0..n {
        ids.push(format!("C{i:08}"));
        let prospect = rng.gen_bool(0.05);
        let o: i64 = if prospect {
            0
        } else {
            1 + (rng.r#gen::<f64>().powi(3) * 30.0) as i64
        };
        orders.push(Some(o));
        methods.push(Some("model"));
        let group = rng.gen_range(0..4);
        let (d, p, nw) = match group {
            0 => (0.75, 0.03, 0.08),
            1 => (0.05, 0.70, 0.12),
            2 => (0.10, 0.20, 0.70),
            _ => (0.12, 0.12, 0.10),
        };
        let aov = spend.sample(&mut rng);
        let since_first: f64 = rng.gen_range(1.0..1460.0);
        let recency: f64 = rng.gen_range(0.0..since_first);
        let share =
            |x: f64, r: &mut rand_chacha::ChaCha8Rng| Some((x + noise.sample(r)).clamp(0.0, 1.0));
        let row: [Option<f64>; 14] = if prospect {
            [
                None,
                Some(0.0),
                Some(0.0),
                Some(0.0),
                None,
                None,
                Some(0.0),
                None,
                None,
                None,
                None,
                None,
                None,
                Some(0.0),
            ]
        } else {
            let revenue = aov * o as f64;
            [
                Some(recency.round()),
                Some((o - 1) as f64),
                Some(revenue),
                Some(revenue * rng.gen_range(-0.1..0.35)),
                Some(aov),
                Some(since_first.round()),
                Some(if recency < 30.0 { 1.0 } else { 0.0 }),
                Some(recency.round()),
                Some(rng.r#gen::<f64>()),
                Some(revenue * rng.gen_range(0.1..1.5)),
                share(d, &mut rng),
                share(p, &mut rng),
                share(nw, &mut rng),
                Some(rng.gen_range(1..8) as f64),
            ]
        };
        for (name, v) in names.iter().zip(row) {
            cols.entry(name).or_default().push(v);
        }
    }
    let mut fields = vec![
        Field::new("customer_id", DataType::Utf8, false),
        Field::new("orders", DataType::Int64, true),
        Field::new("clv_method", DataType::Utf8, true),
    ];
    let mut arrays: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(ids)),
        Arc::new(Int64Array::from(orders)),
        Arc::new(StringArray::from(methods)),
    ];
    for (name, v) in cols {
        fields.push(Field::new(name, DataType::Float64, true));
        arrays.push(Arc::new(Float64Array::from(v)));
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays).unwrap()
}

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kib| kib / 1024.0)
}

fn main() {
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let model = SegmentsModel::new(&ModelsConfig::default());
    let t = Instant::now();
    let previous = inputs(n, 1);
    let current = inputs(n, 2);
    let generated = t.elapsed().as_secs_f64();
    // the previous period's labels, to migrate from
    let mut tables = BTreeMap::new();
    tables.insert("segment_inputs".to_string(), vec![previous]);
    let prev = model
        .run(&ModelInputs {
            tables,
            period: None,
        })
        .unwrap();
    let prev_segments = prev.tables[0].1.clone();
    drop(prev);
    let rss_before = peak_rss_mib();

    let mut tables = BTreeMap::new();
    tables.insert("segment_inputs".to_string(), vec![current]);
    tables.insert("previous.customer_segments".to_string(), prev_segments);
    let inputs = ModelInputs {
        tables,
        period: None,
    };
    let t = Instant::now();
    let out = model.run(&inputs).unwrap();
    let seconds = t.elapsed().as_secs_f64();
    let rows: Vec<(String, usize)> = out
        .tables
        .iter()
        .map(|(name, b)| (name.clone(), b.iter().map(RecordBatch::num_rows).sum()))
        .collect();
    let report = serde_json::json!({
        "customers": n,
        "threads": rayon::current_num_threads(),
        "seconds_all_schemes_and_migration": (seconds * 1000.0).round() / 1000.0,
        "customers_per_second": (n as f64 / seconds).round(),
        "seconds_by_scheme": out.report["seconds_by_scheme"],
        "k_chosen": out.report["clusters"]["k"],
        "k_selection_seconds": out.report["clusters"]["k_selection_seconds"],
        "output_rows": rows,
        "input_generation_seconds": (generated * 100.0).round() / 100.0,
        "peak_rss_mib_before_timed_run": rss_before.round(),
        "peak_rss_mib": peak_rss_mib().round(),
    });
    println!("{}", serde_json::to_string_pretty(&report).unwrap());
}
