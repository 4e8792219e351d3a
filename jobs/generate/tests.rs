//! Specification tests of the generator: determinism, exact dirt counts checked by an independent
//! re-parse, sanity of the purchase process and of the type signals, and readable Parquet.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Read as _;
use std::sync::Arc;

use bytes::Bytes;
use chrono::{NaiveDate, NaiveDateTime};
use futures::TryStreamExt as _;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};

use super::deps::arrow::array::{Array, AsArray};
use super::deps::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use super::{DirtParams, GenerateError, GenerateOptions, OutputFormat, generate, read_manifest};

/// Every file under `prefix`, by path relative to it.
async fn read_all(store: &InMemory, prefix: &str) -> BTreeMap<String, Bytes> {
    let root = Path::from(prefix);
    let metas: Vec<_> = store.list(Some(&root)).try_collect().await.expect("list");
    let mut out = BTreeMap::new();
    for m in metas {
        let bytes = store
            .get(&m.location)
            .await
            .expect("get")
            .bytes()
            .await
            .expect("bytes");
        let rel = m
            .location
            .as_ref()
            .strip_prefix(&format!("{prefix}/"))
            .unwrap_or_default();
        out.insert(rel.to_string(), bytes);
    }
    out
}

async fn run(opts: &GenerateOptions) -> (BTreeMap<String, Bytes>, super::GenerateSummary) {
    let store = Arc::new(InMemory::new());
    let summary = generate(opts, store.clone(), &Path::from("raw"))
        .await
        .expect("generate");
    (read_all(&store, "raw").await, summary)
}

fn opts(customers: u64, chunk_size: usize, format: OutputFormat) -> GenerateOptions {
    GenerateOptions {
        customers,
        chunk_size,
        format,
        seed: 7,
        ..GenerateOptions::default()
    }
}

/// A small RFC 4180 parser, independent of the writer.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut chars = text.chars().peekable();
    let mut in_quotes = false;
    while let Some(c) = chars.next() {
        if in_quotes {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => in_quotes = false,
                _ => field.push(c),
            }
        } else {
            match c {
                '"' => in_quotes = true,
                ',' => row.push(std::mem::take(&mut field)),
                '\n' => {
                    row.push(std::mem::take(&mut field));
                    rows.push(std::mem::take(&mut row));
                }
                _ => field.push(c),
            }
        }
    }
    assert!(
        field.is_empty() && row.is_empty(),
        "CSV must end with a newline"
    );
    rows
}

fn text_of(path: &str, bytes: &Bytes) -> String {
    if path.ends_with(".gz") {
        let mut s = String::new();
        flate2::read::GzDecoder::new(&bytes[..])
            .read_to_string(&mut s)
            .expect("gunzip");
        s
    } else {
        String::from_utf8(bytes.to_vec()).expect("utf8")
    }
}

/// Header and data rows of an extract, parts concatenated in order (CSV or CSV.gz).
fn extract(files: &BTreeMap<String, Bytes>, name: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let mut header = None;
    let mut rows = Vec::new();
    for (path, bytes) in files.range(format!("{name}/")..format!("{name}0")) {
        let mut parsed = parse_csv(&text_of(path, bytes));
        let h = parsed.remove(0);
        assert!(
            header.as_ref().is_none_or(|x| *x == h),
            "same header in every part"
        );
        header = Some(h);
        rows.extend(parsed);
    }
    (header.unwrap_or_default(), rows)
}

/// Rows as maps column -> value.
fn records(files: &BTreeMap<String, Bytes>, name: &str) -> Vec<HashMap<String, String>> {
    let (h, rows) = extract(files, name);
    rows.into_iter()
        .map(|r| {
            assert_eq!(r.len(), h.len(), "{name}: row width");
            h.iter().cloned().zip(r).collect()
        })
        .collect()
}

fn dirt_json(files: &BTreeMap<String, Bytes>) -> BTreeMap<String, BTreeMap<String, u64>> {
    serde_json::from_slice(&files["_ground_truth/dirt.json"]).expect("dirt.json")
}

#[tokio::test]
async fn same_seed_gives_the_same_bytes() {
    let o = opts(400, 150, OutputFormat::Csv);
    let (a, sa) = run(&o).await;
    let (b, sb) = run(&o).await;
    assert_eq!(a, b);
    assert_eq!(sa, sb);
    let mut other = o.clone();
    other.seed = 8;
    let (c, _) = run(&other).await;
    assert_ne!(a["orders/part-00000.csv"], c["orders/part-00000.csv"]);
}

#[tokio::test]
async fn chunk_size_and_thread_count_do_not_change_the_data() {
    let (small, s1) = run(&opts(300, 7, OutputFormat::Csv)).await;
    let (large, s2) = run(&opts(300, 1000, OutputFormat::Csv)).await;
    assert_eq!(
        small.keys().filter(|k| k.starts_with("orders/")).count(),
        43
    );
    assert_eq!(large.keys().filter(|k| k.starts_with("orders/")).count(), 1);
    for name in [
        "customers",
        "orders",
        "order_items",
        "interactions",
        "campaign_contacts",
        "surveys",
        "products",
        "campaigns",
    ] {
        assert_eq!(extract(&small, name), extract(&large, name), "{name}");
    }
    assert_eq!(
        small["_ground_truth/customers.csv"],
        large["_ground_truth/customers.csv"]
    );
    assert_eq!(
        small["_ground_truth/dirt.json"],
        large["_ground_truth/dirt.json"]
    );
    assert_eq!(s1.rows, s2.rows);
    assert_eq!(s1.dirt, s2.dirt);

    // A one-thread pool produces what the global pool produced.
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("pool");
    let ctx = super::Ctx::new(&opts(300, 1000, OutputFormat::Csv)).expect("ctx");
    let one = pool
        .install(|| super::chunk::generate_chunk(&ctx, 0, 1..301))
        .expect("chunk");
    assert_eq!(one.parts[1].1, large["orders/part-00000.csv"]);
}

#[tokio::test]
async fn the_first_customers_do_not_depend_on_the_total() {
    let (a, _) = run(&opts(100, 50, OutputFormat::Csv)).await;
    let (b, _) = run(&opts(250, 50, OutputFormat::Csv)).await;
    for part in [
        "customers/part-00001.csv",
        "orders/part-00001.csv",
        "order_items/part-00001.csv",
    ] {
        assert_eq!(a[part], b[part], "{part}");
    }
}

fn valid_email(e: &str) -> bool {
    let Some((local, domain)) = e.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && local
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
        && domain.contains('.')
        && domain
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-".contains(c))
        && !domain.starts_with('.')
        && !domain.ends_with('.')
}

fn strict_decimal(s: &str) -> Option<f64> {
    let body = s.strip_prefix('-').unwrap_or(s);
    let (int, frac) = body.split_once('.').unwrap_or((body, "0"));
    let digits = |x: &str| !x.is_empty() && x.bytes().all(|b| b.is_ascii_digit());
    (digits(int) && digits(frac))
        .then(|| s.parse().ok())
        .flatten()
}

fn ts(s: &str) -> Option<NaiveDateTime> {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").ok()
}

/// A categorical cell with stray case/whitespace: not canonical, but canonical once normalised.
fn case_ws(v: &str, canonical: &[&str]) -> bool {
    !canonical.contains(&v) && canonical.iter().any(|c| c.eq_ignore_ascii_case(v.trim()))
}

#[tokio::test]
async fn dirt_counts_match_an_independent_reparse() {
    let o = opts(12_000, 5_000, OutputFormat::Csv);
    let (files, summary) = run(&o).await;
    let dirt = dirt_json(&files);
    assert_eq!(dirt, summary.dirt);
    let end = o.end;
    let mut found: BTreeMap<&str, BTreeMap<&str, u64>> = BTreeMap::new();
    let mut count =
        |e: &'static str, k: &'static str| *found.entry(e).or_default().entry(k).or_default() += 1;

    // customers
    let customers = records(&files, "customers");
    let mut by_id: HashMap<&str, Vec<&HashMap<String, String>>> = HashMap::new();
    for c in &customers {
        by_id.entry(c["customer_id"].as_str()).or_default().push(c);
        let mut classes = 0;
        if !valid_email(&c["email"]) {
            count("customers", "invalid_email");
            classes += 1;
        }
        if case_ws(&c["region"], &["north", "south", "east", "west", "central"]) {
            count("customers", "region_case_whitespace");
            classes += 1;
        }
        if case_ws(&c["gender"], &["F", "M", "other"]) {
            count("customers", "gender_case_whitespace");
            classes += 1;
        }
        assert!(classes <= 1, "one dirt class per row: {c:?}");
    }
    for rows in by_id.values().filter(|r| r.len() > 1) {
        assert_eq!(rows.len(), 2);
        count("customers", "duplicate_customer");
        let (a, b) = (rows[0], rows[1]);
        assert!(a["membership_tier"] != b["membership_tier"] || a["region"] != b["region"]);
        assert_ne!(a["updated_at"], b["updated_at"]);
        for r in rows {
            assert!(
                valid_email(&r["email"]) && !r["region"].starts_with(' '),
                "duplicates are otherwise clean"
            );
        }
    }
    assert_eq!(by_id.len() as u64, dirt["customers"]["valid"]);
    assert_eq!(customers.len() as u64, dirt["customers"]["rows"]);

    // orders
    let orders = records(&files, "orders");
    let mut seen = HashSet::new();
    let mut valid_ids: HashMap<&str, &str> = HashMap::new();
    let mut process_by_customer: HashMap<&str, u64> = HashMap::new();
    for r in &orders {
        let id = r["order_id"].as_str();
        if !seen.insert(id) {
            count("orders", "duplicate_order_id");
            continue;
        }
        let mut classes = 0;
        let t = ts(&r["order_ts"]);
        let amount = strict_decimal(&r["total_amount"]);
        if t.is_none() {
            count("orders", "invalid_order_ts");
            classes += 1;
        }
        if amount.is_none() {
            count("orders", "invalid_total_amount");
            classes += 1;
        }
        if amount.is_some_and(|a| a <= 0.0) {
            count("orders", "non_positive_amount");
            classes += 1;
        }
        if !by_id.contains_key(r["customer_id"].as_str()) {
            count("orders", "unknown_customer");
            classes += 1;
        }
        if t.is_some_and(|t| t.date() > end) {
            count("orders", "after_end");
            classes += 1;
        }
        if case_ws(&r["channel"], &["online", "store"]) {
            count("orders", "channel_case_whitespace");
        } else {
            assert!(["online", "store"].contains(&r["channel"].as_str()));
        }
        assert!(classes <= 1, "one dirt class per row: {r:?}");
        if classes == 0 {
            let status = r["status"].as_str();
            valid_ids.insert(id, status);
            match status {
                "" | "completed" => {
                    count("orders", "process");
                    *process_by_customer
                        .entry(r["customer_id"].as_str())
                        .or_default() += 1;
                    if status.is_empty() {
                        count("orders", "status_missing");
                    }
                }
                "cancelled" => count("orders", "cancelled"),
                "returned" => count("orders", "returned"),
                other => panic!("unexpected status {other}"),
            }
        }
    }
    assert_eq!(orders.len() as u64, dirt["orders"]["rows"]);
    assert_eq!(valid_ids.len() as u64, dirt["orders"]["valid"]);

    // order_items: only of real orders; invalid quantities only on process orders.
    let items = records(&files, "order_items");
    for r in &items {
        let status = valid_ids
            .get(r["order_id"].as_str())
            .expect("items belong to valid orders");
        let q = r["quantity"]
            .parse::<u32>()
            .ok()
            .filter(|q| (1..=3).contains(q));
        if q.is_none() {
            assert!(["two", "1.5.0", ""].contains(&r["quantity"].as_str()));
            assert!(matches!(*status, "" | "completed"));
            count("order_items", "invalid_quantity");
        }
    }
    assert_eq!(items.len() as u64, dirt["order_items"]["rows"]);

    for (extract, keys) in &found {
        for (key, n) in keys {
            assert_eq!(dirt[*extract][*key], *n, "{extract}.{key}");
        }
    }
    for (extract, keys) in &dirt {
        for (key, n) in keys {
            if *n > 0
                && ![
                    "rows",
                    "valid",
                    "prospects",
                    "alive_at_end",
                    "responded",
                    "converted",
                ]
                .contains(&key.as_str())
            {
                assert!(
                    found[extract.as_str()].contains_key(key.as_str()),
                    "{extract}.{key} found"
                );
            }
        }
    }
    // Every dirt class was planted at this size.
    for (extract, key) in [
        ("customers", "duplicate_customer"),
        ("customers", "invalid_email"),
        ("orders", "invalid_order_ts"),
        ("orders", "unknown_customer"),
        ("orders", "after_end"),
        ("order_items", "invalid_quantity"),
    ] {
        assert!(dirt[extract][key] > 0, "{extract}.{key} planted");
    }

    // The ground truth's purchases are exactly the process orders of each customer.
    let truth = parse_csv(&text_of("", &files["_ground_truth/customers.csv"]));
    assert_eq!(truth[0].join(","), super::chunk::TRUTH_COLUMNS.join(","));
    let mut total = 0;
    for r in &truth[1..] {
        let purchases: u64 = r[6].parse().expect("purchases");
        total += purchases;
        assert_eq!(
            process_by_customer.get(r[0].as_str()).copied().unwrap_or(0),
            purchases,
            "{}",
            r[0]
        );
        assert_eq!(r[5] == "true", purchases == 0);
    }
    assert_eq!(total, dirt["orders"]["process"]);
}

#[tokio::test]
async fn no_dirt_gives_clean_extracts() {
    let mut o = opts(2_000, 1_000, OutputFormat::Csv);
    o.params.dirt = DirtParams::none();
    let (files, summary) = run(&o).await;
    for (extract, keys) in &summary.dirt {
        for key in [
            "duplicate_customer",
            "invalid_email",
            "duplicate_order_id",
            "invalid_order_ts",
            "invalid_quantity",
        ] {
            assert_eq!(keys.get(key).copied().unwrap_or(0), 0, "{extract}.{key}");
        }
    }
    let orders = records(&files, "orders");
    assert_eq!(orders.len() as u64, summary.dirt["orders"]["valid"]);
    assert!(
        orders
            .iter()
            .all(|r| ts(&r["order_ts"]).is_some_and(|t| t.date() <= o.end))
    );
}

/// Sample moments of the process against the model: loose bounds, a sanity check only.
#[tokio::test]
async fn the_purchase_process_looks_like_bg_nbd_and_gamma_gamma() {
    let o = opts(30_000, 10_000, OutputFormat::Csv);
    let (files, summary) = run(&o).await;
    let truth = parse_csv(&text_of("", &files["_ground_truth/customers.csv"]));
    let rows = &truth[1..];
    let n = rows.len() as f64;
    let col = |i: usize| {
        rows.iter()
            .map(move |r| r[i].parse::<f64>().expect("number"))
    };
    let mean = |it: &mut dyn Iterator<Item = f64>| {
        let v: Vec<f64> = it.collect();
        v.iter().sum::<f64>() / v.len() as f64
    };
    let bg = &o.params.bg_nbd;
    let gg = &o.params.gamma_gamma;
    let lambda = mean(&mut col(2));
    assert!(
        (lambda / (bg.r / bg.alpha) - 1.0).abs() < 0.08,
        "E[lambda] {lambda}"
    );
    let p = mean(&mut col(3));
    assert!((p / (bg.a / (bg.a + bg.b)) - 1.0).abs() < 0.03, "E[p] {p}");
    let nu = mean(&mut col(4));
    assert!((nu / (gg.q / gg.gamma) - 1.0).abs() < 0.03, "E[nu] {nu}");

    // Prospects: 5% plus those whose first purchase would fall after `end` (~0.5%).
    let prospects = rows.iter().filter(|r| r[5] == "true").count() as f64 / n;
    assert!(
        (0.045..0.065).contains(&prospects),
        "prospect share {prospects}"
    );
    // Repeat purchases per purchaser: CDNOW has about 1.0 in 39 weeks; here ~78 weeks on average.
    let purchasers: Vec<_> = rows.iter().filter(|r| r[5] == "false").collect();
    let repeats = purchasers
        .iter()
        .map(|r| r[6].parse::<f64>().unwrap_or(0.0) - 1.0)
        .sum::<f64>()
        / purchasers.len() as f64;
    assert!(
        (0.8..3.0).contains(&repeats),
        "mean repeat purchases {repeats}"
    );
    let one_time =
        purchasers.iter().filter(|r| r[6] == "1").count() as f64 / purchasers.len() as f64;
    assert!(
        (0.4..0.75).contains(&one_time),
        "one-time buyers {one_time}"
    );
    // Purchases share a day only at the very end of the window.
    let same_day = purchasers.iter().filter(|r| r[6] != r[8]).count();
    assert!(
        same_day as f64 <= 0.01 * purchasers.len() as f64,
        "same-day purchases {same_day}"
    );
    // Nobody who made no repeat purchase has dropped out.
    assert!(
        purchasers
            .iter()
            .filter(|r| r[6] == "1")
            .all(|r| r[7] == "true")
    );

    // Gamma-Gamma: E[z] = p * gamma / (q - 1) over customers.
    let orders = records(&files, "orders");
    let amounts: Vec<f64> = orders
        .iter()
        .filter(|r| matches!(r["status"].as_str(), "" | "completed"))
        .filter_map(|r| strict_decimal(&r["total_amount"]).filter(|a| *a > 0.0))
        .collect();
    let mean_z = amounts.iter().sum::<f64>() / amounts.len() as f64;
    let expected = gg.p * gg.gamma / (gg.q - 1.0);
    assert!(
        (mean_z / expected - 1.0).abs() < 0.15,
        "mean order amount {mean_z} vs {expected}"
    );
    assert!(summary.dirt["orders"]["process"] as f64 > 2.0 * n);
}

/// The latent types leave the intended traces in the baskets and surveys.
#[tokio::test]
async fn preference_types_show_in_baskets() {
    let o = opts(6_000, 6_000, OutputFormat::Csv);
    let (files, _) = run(&o).await;
    let truth = parse_csv(&text_of("", &files["_ground_truth/customers.csv"]));
    let type_of: HashMap<String, String> = truth[1..]
        .iter()
        .map(|r| (r[0].clone(), r[1].clone()))
        .collect();
    let products: HashMap<String, HashMap<String, String>> = records(&files, "products")
        .into_iter()
        .map(|p| (p["product_id"].clone(), p))
        .collect();
    let customer_of: HashMap<String, String> = records(&files, "orders")
        .into_iter()
        .map(|r| (r["order_id"].clone(), r["customer_id"].clone()))
        .collect();
    let order_day: HashMap<String, NaiveDate> = records(&files, "orders")
        .into_iter()
        .filter_map(|r| ts(&r["order_ts"]).map(|t| (r["order_id"].clone(), t.date())))
        .collect();
    // per type: lines, discounted, premium, new
    let mut stats: HashMap<String, [f64; 4]> = HashMap::new();
    for it in records(&files, "order_items") {
        let t = &type_of[&customer_of[&it["order_id"]]];
        let p = &products[&it["product_id"]];
        let launch = NaiveDate::parse_from_str(&p["launch_date"], "%Y-%m-%d").expect("date");
        let day = order_day[&it["order_id"]];
        assert!(launch <= day, "products are sold only after launch");
        let s = stats.entry(t.clone()).or_default();
        s[0] += 1.0;
        s[1] += f64::from(u8::from(it["discount"] != "0.00"));
        s[2] += f64::from(u8::from(p["price_tier"] == "premium"));
        s[3] += f64::from(u8::from((day - launch).num_days() < 90));
    }
    let share = |t: &str, i: usize| stats[t][i] / stats[t][0];
    let params = o.params.preference_types.clone();
    for (name, tp) in [
        ("price_sensitive", &params.price_sensitive),
        ("quality_seeking", &params.quality_seeking),
        ("trend_following", &params.trend_following),
        ("mainstream", &params.mainstream),
    ] {
        for (i, expected) in [
            (1, tp.discount_prob),
            (2, tp.premium_prob),
            (3, tp.new_product_prob),
        ] {
            let got = share(name, i);
            assert!(
                (got - expected).abs() < 0.05,
                "{name} share {i}: {got} vs {expected}"
            );
        }
    }
}

#[tokio::test]
async fn gzip_and_parquet_hold_the_same_rows_as_csv() {
    let (csv, _) = run(&opts(500, 200, OutputFormat::Csv)).await;
    let (gz, _) = run(&opts(500, 200, OutputFormat::CsvGzip)).await;
    let (pq, summary) = run(&opts(500, 200, OutputFormat::Parquet)).await;
    assert!(gz.keys().any(|k| k == "orders/part-00002.csv.gz"));
    for (path, bytes) in &csv {
        if let Some(stem) = path.strip_suffix(".csv").filter(|_| !path.starts_with('_')) {
            assert_eq!(
                text_of("x.gz", &gz[&format!("{stem}.csv.gz")]),
                text_of(path, bytes)
            );
            // Parquet: every column Utf8, empty CSV fields as nulls.
            let reader =
                ParquetRecordBatchReaderBuilder::try_new(pq[&format!("{stem}.parquet")].clone())
                    .expect("parquet")
                    .build()
                    .expect("reader");
            let mut rows: Vec<Vec<String>> = Vec::new();
            let mut header = Vec::new();
            for batch in reader {
                let batch = batch.expect("batch");
                header = batch
                    .schema()
                    .fields()
                    .iter()
                    .map(|f| f.name().clone())
                    .collect();
                for f in batch.schema().fields() {
                    assert_eq!(
                        f.data_type(),
                        &super::deps::arrow::datatypes::DataType::Utf8
                    );
                }
                for i in 0..batch.num_rows() {
                    rows.push(
                        batch
                            .columns()
                            .iter()
                            .map(|c| {
                                let s = c.as_string::<i32>();
                                if s.is_null(i) {
                                    String::new()
                                } else {
                                    s.value(i).to_string()
                                }
                            })
                            .collect(),
                    );
                }
            }
            let mut expected = parse_csv(&text_of(path, bytes));
            assert_eq!(expected.remove(0), header, "{path}");
            assert_eq!(expected, rows, "{path}");
        }
    }
    let manifest: serde_json::Value =
        serde_json::from_slice(&pq["_generator.json"]).expect("manifest");
    assert_eq!(manifest["format"], "parquet");
    assert_eq!(manifest["rows"]["orders"], summary.rows["orders"]);
}

#[tokio::test]
async fn the_manifest_reads_back() {
    let store = Arc::new(InMemory::new());
    let prefix = Path::from("raw");
    assert_eq!(
        read_manifest(store.clone(), &prefix).await.expect("read"),
        None
    );
    let o = opts(120, 50, OutputFormat::CsvGzip);
    let summary = generate(&o, store.clone(), &prefix)
        .await
        .expect("generate");
    let m = read_manifest(store, &prefix)
        .await
        .expect("read")
        .expect("manifest");
    assert_eq!(
        (m.customers, m.seed, m.start, m.end, m.format),
        (120, 7, o.start, o.end, o.format)
    );
    assert_eq!(m.rows, summary.rows);
    assert_eq!(m.files.len(), 2 + 6 * 3);
    assert!(
        m.files
            .iter()
            .all(|f| f.path.ends_with(".csv.gz") && !f.path.starts_with('_'))
    );
    let line = summary.to_string();
    assert!(
        line.starts_with("generated 120 customers: campaign_contacts "),
        "{line}"
    );
    assert!(!line.contains('\n'));
}

#[tokio::test]
async fn manifest_and_headers_follow_the_contract() {
    let o = opts(200, 100, OutputFormat::Csv);
    let (files, summary) = run(&o).await;
    let m: serde_json::Value = serde_json::from_slice(&files["_generator.json"]).expect("manifest");
    assert_eq!(m["seed"], 7);
    assert_eq!(m["customers"], 200);
    assert_eq!(m["start"], "2022-01-01");
    assert_eq!(m["end"], "2024-12-31");
    let listed: Vec<&str> = m["files"]
        .as_array()
        .expect("files")
        .iter()
        .filter_map(|f| f["path"].as_str())
        .collect();
    assert_eq!(listed.len(), 2 + 6 * 2);
    for f in m["files"].as_array().expect("files") {
        let path = f["path"].as_str().expect("path");
        let rows = parse_csv(&text_of(path, &files[path])).len() as u64 - 1;
        assert_eq!(f["rows"], rows, "{path}");
    }
    let headers = [
        (
            "customers",
            "customer_id,full_name,email,phone,gender,birth_date,occupation,annual_income,education,country,region,city,signup_date,acquisition_channel,membership_tier,updated_at",
        ),
        (
            "orders",
            "order_id,customer_id,order_ts,total_amount,status,channel,store_id,currency,discount_amount",
        ),
        (
            "order_items",
            "order_id,line_no,product_id,quantity,unit_price,discount,unit_cost",
        ),
        (
            "products",
            "product_id,category,brand,price_tier,list_price,launch_date",
        ),
        (
            "interactions",
            "interaction_id,customer_id,ts,channel,type,satisfaction",
        ),
        (
            "campaigns",
            "campaign_id,name,channel,start_date,end_date,cost",
        ),
        (
            "campaign_contacts",
            "campaign_id,customer_id,contacted_ts,responded_ts,converted_order_id",
        ),
        ("surveys", "customer_id,survey_ts,nps,satisfaction"),
    ];
    for (name, h) in headers {
        assert_eq!(extract(&files, name).0.join(","), h);
        assert!(summary.rows[name] > 0, "{name} has rows");
    }
    assert_eq!(summary.rows["products"], 2000);
    assert_eq!(summary.rows["campaigns"], 36);
    let params: serde_json::Value =
        serde_json::from_slice(&files["_ground_truth/params.json"]).expect("params");
    assert_eq!(params["time_unit"], "week");
    assert_eq!(params["bg_nbd"]["r"], 0.243);
    assert_eq!(
        params["preference_types"]["trend_following"]["new_product_prob"],
        0.7
    );

    // Formats of clean values.
    for c in records(&files, "customers") {
        assert!(c["customer_id"].len() == 9 && c["customer_id"].starts_with('C'));
        assert!(NaiveDate::parse_from_str(&c["birth_date"], "%Y-%m-%d").is_ok());
        assert!(ts(&c["updated_at"]).is_some());
        assert!(c["updated_at"][..10] >= c["signup_date"][..]);
    }
    for r in records(&files, "interactions") {
        assert!(ts(&r["ts"]).is_some());
        assert!(
            ["inquiry", "complaint", "suggestion", "praise", "other"].contains(&r["type"].as_str())
        );
    }
    let orders: HashMap<String, HashMap<String, String>> = records(&files, "orders")
        .into_iter()
        .map(|r| (r["order_id"].clone(), r))
        .collect();
    for c in records(&files, "campaign_contacts") {
        if !c["converted_order_id"].is_empty() {
            let o = &orders[&c["converted_order_id"]];
            assert_eq!(o["customer_id"], c["customer_id"]);
            assert!(o["order_ts"] >= c["contacted_ts"]);
            assert!(!c["responded_ts"].is_empty());
        }
    }
}

#[tokio::test]
async fn invalid_options_are_rejected() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let cases = [
        GenerateOptions {
            customers: 0,
            ..GenerateOptions::default()
        },
        GenerateOptions {
            chunk_size: 0,
            ..GenerateOptions::default()
        },
        GenerateOptions {
            end: GenerateOptions::default().start,
            ..GenerateOptions::default()
        },
        {
            let mut o = GenerateOptions::default();
            o.params.preference_types.mainstream.share = 0.5;
            o
        },
        {
            let mut o = GenerateOptions::default();
            o.params.bg_nbd.r = -1.0;
            o
        },
    ];
    for o in cases {
        let err = generate(&o, Arc::clone(&store), &Path::from("x"))
            .await
            .expect_err("invalid");
        assert!(matches!(err, GenerateError::InvalidOptions(_)), "{err}");
    }
    assert_eq!(
        "csv.gz".parse::<OutputFormat>().ok(),
        Some(OutputFormat::CsvGzip)
    );
    assert!("xlsx".parse::<OutputFormat>().is_err());
}

#[test]
fn generate_future_is_send() {
    fn assert_send<T: Send>(_: &T) {}
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let o = GenerateOptions::default();
    let p = Path::from("x");
    let fut = generate(&o, store, &p);
    assert_send(&fut);
}
