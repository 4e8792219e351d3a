//! Segmentation and positioning on generated data: planted preference types are recovered, and
//! two consecutive periods give migration, growth and stability figures that reconcile.

use std::collections::BTreeMap;
use std::path::Path;

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::{DataType, Float64Type};
use datafusion::prelude::{CsvReadOptions, ParquetReadOptions, SessionContext};

use crate::common::*;
use crate::e2e::generated;

/// A session with one partition of each named table registered as `<table>_<tag>`.
async fn session(wh: &Path, tables: &[(&str, &str, &str)]) -> SessionContext {
    let ctx = SessionContext::new();
    for (table, period, tag) in tables {
        ctx.register_parquet(
            format!("{table}_{tag}"),
            wh.join(format!("{table}/period={period}/"))
                .display()
                .to_string(),
            ParquetReadOptions::default(),
        )
        .await
        .unwrap();
    }
    ctx
}

/// Runs `sql` and returns its rows as text cells (nulls as "").
async fn rows(ctx: &SessionContext, sql: &str) -> Vec<Vec<String>> {
    let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
    let mut out = Vec::new();
    for b in &batches {
        for r in 0..b.num_rows() {
            out.push(
                b.columns()
                    .iter()
                    .map(|c| {
                        let c = datafusion::arrow::compute::cast(c, &DataType::Utf8).unwrap();
                        let c = c.as_string::<i32>();
                        if c.is_null(r) {
                            String::new()
                        } else {
                            c.value(r).to_string()
                        }
                    })
                    .collect(),
            );
        }
    }
    out
}

async fn one_f64(ctx: &SessionContext, sql: &str) -> f64 {
    let b = ctx.sql(sql).await.unwrap().collect().await.unwrap();
    b[0].column(0).as_primitive::<Float64Type>().value(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn planted_preference_types_are_recovered() {
    let tmp = tempfile::tempdir().unwrap();
    let raw = tmp.path().join("raw");
    let wh = tmp.path().join("wh");
    // a seed other than the one the default thresholds were chosen on (the demo's)
    generated(&raw, 12_000, 23).await;
    run_period(&config(&raw, &wh), "2024-12", "pref")
        .await
        .1
        .unwrap();
    let ctx = session(
        &wh,
        &[
            ("customer_segments", "2024-12", "now"),
            ("customer_features", "2024-12", "now"),
        ],
    )
    .await;
    ctx.register_csv(
        "truth",
        raw.join("_ground_truth/customers.csv")
            .display()
            .to_string(),
        CsvReadOptions::new(),
    )
    .await
    .unwrap();
    let accuracy = one_f64(
        &ctx,
        "SELECT avg(CASE WHEN s.preference_type = t.latent_type THEN 1.0 ELSE 0.0 END)
         FROM customer_segments_now s JOIN truth t ON s.customer_id = t.customer_id
         WHERE s.preference_type <> 'unclassified'",
    )
    .await;
    assert!(accuracy >= 0.85, "preference accuracy {accuracy}");
    // the same rules over shares of spend instead of lines (`basis: spend`) recover fewer types:
    // the reason lines are the default (docs/segments.md)
    let by_spend = one_f64(
        &ctx,
        "SELECT avg(CASE WHEN p = t.latent_type THEN 1.0 ELSE 0.0 END) FROM (
           SELECT customer_id,
                  CASE WHEN discount_share >= 0.5 THEN 'price_sensitive'
                       WHEN new_product_share >= 0.4 THEN 'trend_following'
                       WHEN premium_share >= 0.5 THEN 'quality_seeking'
                       ELSE 'mainstream' END AS p
           FROM customer_features_now WHERE orders >= 2 AND discount_share IS NOT NULL) f
         JOIN truth t ON f.customer_id = t.customer_id",
    )
    .await;
    eprintln!(
        "preference accuracy, customers with 2+ orders: by lines {accuracy:.3}, by spend {by_spend:.3}"
    );
    assert!(accuracy > by_spend, "lines {accuracy} vs spend {by_spend}");
    // every customer with enough evidence is classified, every type shows up, and the rest say why
    let by_type = rows(
        &ctx,
        "SELECT s.preference_type, count(*) FROM customer_segments_now s
         JOIN customer_features_now f ON s.customer_id = f.customer_id
         WHERE f.orders >= 2 GROUP BY 1 ORDER BY 1",
    )
    .await;
    let types: Vec<&str> = by_type.iter().map(|r| r[0].as_str()).collect();
    assert_eq!(
        types,
        [
            "mainstream",
            "price_sensitive",
            "quality_seeking",
            "trend_following"
        ]
    );
    let unexplained = rows(
        &ctx,
        "SELECT count(*) FROM customer_segments_now
         WHERE preference_type = 'unclassified'
           AND (unclassified_reason IS NULL OR unclassified_reason NOT LIKE '%preference_type: %')",
    )
    .await;
    assert_eq!(unexplained[0][0], "0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consecutive_periods_reconcile_migration_growth_and_stability() {
    let tmp = tempfile::tempdir().unwrap();
    let raw = tmp.path().join("raw");
    let wh = tmp.path().join("wh");
    generated(&raw, 3_000, 31).await;
    let cfg = config(&raw, &wh);
    run_period(&cfg, "2024-11", "nov").await.1.unwrap();
    run_period(&cfg, "2024-12", "dec").await.1.unwrap();
    let ctx = session(
        &wh,
        &[
            ("segment_summary", "2024-11", "prev"),
            ("segment_summary", "2024-12", "now"),
            ("segment_migration", "2024-11", "prev"),
            ("segment_migration", "2024-12", "now"),
            ("positioning", "2024-12", "now"),
            ("customer_segments", "2024-11", "prev"),
            ("customer_segments", "2024-12", "now"),
        ],
    )
    .await;
    // the first period has nothing to migrate from: an empty partition, published on purpose
    assert_eq!(
        rows(&ctx, "SELECT count(*) FROM segment_migration_prev").await[0][0],
        "0"
    );

    // every customer of a previous segment is somewhere now, and every current one came from
    // somewhere
    let from = rows(
        &ctx,
        "SELECT p.scheme, p.segment, p.customers, m.moved
         FROM segment_summary_prev p
         FULL JOIN (SELECT scheme, from_segment, sum(customers) AS moved FROM segment_migration_now
                    WHERE from_segment <> '(new)' GROUP BY 1, 2) m
           ON p.scheme = m.scheme AND p.segment = m.from_segment
         ORDER BY 1, 2",
    )
    .await;
    assert!(from.len() > 20, "{from:?}");
    for r in &from {
        assert_eq!(r[2], r[3], "previous customers vs migrated from, {r:?}");
    }
    let to = rows(
        &ctx,
        "SELECT n.scheme, n.segment, n.customers, m.arrived
         FROM segment_summary_now n
         FULL JOIN (SELECT scheme, to_segment, sum(customers) AS arrived FROM segment_migration_now
                    WHERE to_segment <> '(gone)' GROUP BY 1, 2) m
           ON n.scheme = m.scheme AND n.segment = m.to_segment
         ORDER BY 1, 2",
    )
    .await;
    for r in &to {
        assert_eq!(r[2], r[3], "current customers vs migrated to, {r:?}");
    }
    // growth, stability and CLV change agree with the two partitions and the migration
    let checks = rows(
        &ctx,
        "SELECT n.scheme, n.segment,
                abs(n.growth_vs_previous - (CAST(n.customers AS DOUBLE) / p.customers - 1.0)) < 1e-12,
                n.previous_customers = p.customers,
                abs(n.stability - CAST(coalesce(s.stayed, 0) AS DOUBLE) / p.customers) < 1e-12,
                abs(n.clv_change - (n.avg_clv - p.avg_clv)) < 1e-9
         FROM segment_summary_now n
         JOIN segment_summary_prev p ON n.scheme = p.scheme AND n.segment = p.segment
         LEFT JOIN (SELECT scheme, from_segment, sum(customers) AS stayed FROM segment_migration_now
                    WHERE stayed GROUP BY 1, 2) s
           ON n.scheme = s.scheme AND n.segment = s.from_segment",
    )
    .await;
    assert!(!checks.is_empty());
    for r in &checks {
        assert!(r[2..].iter().all(|c| c == "true"), "{r:?}");
    }
    // migration and growth reconcile with the two partitions of customer_segments themselves
    for (scheme, column) in [
        ("rfm", "rfm_segment"),
        ("rfm8", "rfm8_segment"),
        ("value_tier", "value_tier"),
        ("current_value", "current_value_class"),
        ("lifecycle", "lifecycle_stage"),
        ("preference", "preference_type"),
        ("usage", "usage_tier"),
        ("value_loyalty", "value_loyalty_class"),
        ("clusters", "cluster_label"),
    ] {
        let joined = rows(
            &ctx,
            &format!(
                "SELECT coalesce(p.{column}, '(new)'), coalesce(n.{column}, '(gone)'), count(*)
                 FROM customer_segments_now n
                 FULL JOIN customer_segments_prev p ON n.customer_id = p.customer_id
                 GROUP BY 1, 2 ORDER BY 1, 2"
            ),
        )
        .await;
        let migrated = rows(
            &ctx,
            &format!(
                "SELECT from_segment, to_segment, customers FROM segment_migration_now
                 WHERE scheme = '{scheme}' ORDER BY 1, 2"
            ),
        )
        .await;
        assert_eq!(joined, migrated, "migration of {scheme}");
        let growth = rows(
            &ctx,
            &format!(
                "SELECT n.seg, abs(s.growth_vs_previous - (CAST(n.c AS DOUBLE) / p.c - 1.0)) < 1e-12
                 FROM (SELECT {column} AS seg, count(*) AS c FROM customer_segments_now GROUP BY 1) n
                 JOIN (SELECT {column} AS seg, count(*) AS c FROM customer_segments_prev GROUP BY 1) p
                   ON n.seg = p.seg
                 JOIN segment_summary_now s ON s.scheme = '{scheme}' AND s.segment = n.seg"
            ),
        )
        .await;
        assert!(!growth.is_empty(), "{scheme}");
        assert!(
            growth.iter().all(|r| r[1] == "true"),
            "growth of {scheme}: {growth:?}"
        );
    }

    // share_of_from sums to 1 per source segment
    let shares = rows(
        &ctx,
        "SELECT scheme, from_segment, sum(share_of_from) FROM segment_migration_now GROUP BY 1, 2",
    )
    .await;
    for r in &shares {
        assert!((r[2].parse::<f64>().unwrap() - 1.0).abs() < 1e-9, "{r:?}");
    }

    // positioning: every scheme has targets, never `unclassified`, with the rulebook's actions
    let per_scheme: BTreeMap<String, i64> = rows(
        &ctx,
        "SELECT scheme, sum(CASE WHEN is_target THEN 1 ELSE 0 END) FROM positioning_now GROUP BY 1",
    )
    .await
    .into_iter()
    .map(|r| (r[0].clone(), r[1].parse().unwrap()))
    .collect();
    // every built-in scheme and every user-defined one of the default pipeline.yaml
    let schemes = crm_pipeline::models::segments::SCHEMES.len() + cfg.models.custom_schemes.len();
    assert_eq!(per_scheme.len(), schemes, "{per_scheme:?}");
    assert!(per_scheme.values().all(|&n| n >= 1), "{per_scheme:?}");
    let bad = rows(
        &ctx,
        "SELECT count(*) FROM positioning_now
         WHERE (is_target AND segment = 'unclassified') OR attractiveness < 0 OR attractiveness > 1
            OR action IS NULL OR product_strategy IS NULL OR price_strategy IS NULL
            OR channel_strategy IS NULL OR promotion_strategy IS NULL OR strategy_rule IS NULL
            OR x_axis NOT IN ('avg_price_index', 'avg_order_value', 'avg_discount_line_share',
                              'avg_premium_line_share', 'avg_new_product_line_share')
            OR y_axis <> 'avg_clv'",
    )
    .await;
    assert_eq!(bad[0][0], "0");
    let vip = rows(
        &ctx,
        "SELECT action FROM positioning_now WHERE scheme = 'rfm8' AND segment = 'important value'",
    )
    .await;
    assert!(vip[0][0].starts_with("VIP"), "{vip:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn segment_history_follows_every_customer_period_by_period_and_in_a_backfill() {
    use crm_pipeline::backfill::{self, BackfillOptions, Progress, Selection};
    use crm_pipeline::models::segments::{SCHEMES, history_columns};
    use crm_pipeline::period::Period;
    use std::sync::Arc;

    let tmp = tempfile::tempdir().unwrap();
    let (raw, wh, wh_backfill) = (
        tmp.path().join("raw"),
        tmp.path().join("wh"),
        tmp.path().join("wh-backfill"),
    );
    generated(&raw, 2_000, 37).await;
    let periods = ["2024-10", "2024-11", "2024-12"];
    let cfg = config(&raw, &wh);
    for p in periods {
        run_period(&cfg, p, &format!("history-{p}"))
            .await
            .1
            .unwrap();
    }
    let ctx = session(
        &wh,
        &[
            ("customer_segments", periods[0], "p1"),
            ("customer_segments", periods[1], "p2"),
            ("customer_segments", periods[2], "p3"),
        ],
    )
    .await;
    let count = |sql: String| {
        let ctx = &ctx;
        async move { rows(ctx, &sql).await[0][0].parse::<i64>().unwrap() }
    };
    for info in SCHEMES {
        let (previous, since) = history_columns(info.name);
        let label = info.label_column;
        // the first period has no previous partition: nothing known before it
        let first = count(format!(
            "SELECT count(*) FROM customer_segments_p1 WHERE {previous} IS NOT NULL OR {since} <> '{}'",
            periods[0]
        ))
        .await;
        assert_eq!(first, 0, "{}: history of the first period", info.name);
        // period 3: `_previous` is the label of period 2, `(new)` for a customer it lacked
        let wrong_previous = count(format!(
            "SELECT count(*) FROM customer_segments_p3 c LEFT JOIN customer_segments_p2 b
               ON c.customer_id = b.customer_id
             WHERE c.{previous} IS DISTINCT FROM coalesce(b.{label}, '(new)')"
        ))
        .await;
        assert_eq!(wrong_previous, 0, "{}: {previous} of period 3", info.name);
        // `_since`: the first period of the unbroken run in the current label over the three
        let expected_since = format!(
            "CASE WHEN b.{label} = c.{label}
                  THEN CASE WHEN a.{label} = b.{label} THEN '{}' ELSE '{}' END
                  ELSE '{}' END",
            periods[0], periods[1], periods[2]
        );
        let wrong_since = count(format!(
            "SELECT count(*) FROM customer_segments_p3 c
               LEFT JOIN customer_segments_p2 b ON c.customer_id = b.customer_id
               LEFT JOIN customer_segments_p1 a ON c.customer_id = a.customer_id
             WHERE c.{since} <> {expected_since}"
        ))
        .await;
        assert_eq!(wrong_since, 0, "{}: {since} of period 3", info.name);
        // not vacuous: in every period-3 run length some customers (stayers and movers)
        if info.name == "rfm" || info.name == "lifecycle" {
            for p in periods {
                let n = count(format!(
                    "SELECT count(*) FROM customer_segments_p3 WHERE {since} = '{p}'"
                ))
                .await;
                assert!(n > 0, "{}: no customer in its label since {p}", info.name);
            }
        }
    }

    // a backfill of the same range builds the same history
    let cfg_backfill = config(&raw, &wh_backfill);
    let grain = cfg_backfill.period.grain;
    let opts = BackfillOptions {
        from: Period::parse(grain, periods[0]).unwrap(),
        to: Period::parse(grain, periods[2]).unwrap(),
        jobs: 2,
        selection: Selection::All,
        allow_empty: false,
        allow: Default::default(),
        backfill_id: "history".into(),
        command: vec!["test".into()],
        config_text: String::new(),
        progress: Progress::Silent,
    };
    let (results, outcome) =
        backfill::backfill(Arc::new(resolve(&cfg_backfill, &Default::default())), &opts).await;
    outcome.unwrap();
    assert_eq!(results.exit_code, 0, "{}", results.table());
    let history: Vec<String> = SCHEMES
        .iter()
        .flat_map(|s| {
            let (a, b) = history_columns(s.name);
            [a, b]
        })
        .collect();
    let sql = format!(
        "SELECT customer_id, {} FROM t ORDER BY customer_id",
        history.join(", ")
    );
    for p in periods {
        let single = pretty(&query(&wh, "customer_segments", p, &sql).await);
        let filled = pretty(&query(&wh_backfill, "customer_segments", p, &sql).await);
        assert!(
            single == filled,
            "history of {p} differs between runs and a backfill"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_defined_schemes_get_the_treatment_of_the_built_in_ones() {
    let tmp = tempfile::tempdir().unwrap();
    let (raw, wh) = (tmp.path().join("raw"), tmp.path().join("wh"));
    generated(&raw, 1_500, 43).await;
    // the default pipeline.yaml ships two: `region` (a column) and `demographic` (rules)
    let cfg = config(&raw, &wh);
    let names: Vec<&str> = cfg
        .models
        .custom_schemes
        .iter()
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(names, ["region", "demographic"]);
    run_period(&cfg, "2024-11", "own-nov").await.1.unwrap();
    run_period(&cfg, "2024-12", "own-dec").await.1.unwrap();
    let p = "2024-12";
    let ctx = session(
        &wh,
        &[
            ("customer_segments", p, "s"),
            ("customer_features", p, "f"),
            ("segment_summary", p, "sum"),
            ("positioning", p, "pos"),
            ("segment_migration", p, "mig"),
        ],
    )
    .await;
    let one = |sql: &str| {
        let (ctx, sql) = (&ctx, sql.to_string());
        async move { rows(ctx, &sql).await[0][0].clone() }
    };
    // labels equal their definitions, recomputed from the published features
    let wrong_region = one(
        "SELECT count(*) FROM customer_segments_s s JOIN customer_features_f f USING (customer_id)
         WHERE s.region_segment <> coalesce(f.region, 'unknown region')",
    )
    .await;
    assert_eq!(wrong_region, "0");
    let wrong_demographic = one(
        "SELECT count(*) FROM customer_segments_s s JOIN customer_features_f f USING (customer_id)
         WHERE s.demographic_segment <> CASE
             WHEN f.age_band IN ('18-24', '25-34') AND f.gender = 'F' THEN 'young women'
             WHEN f.age_band IN ('18-24', '25-34') AND f.gender = 'M' THEN 'young men'
             WHEN f.age_band IN ('35-44', '45-54') AND f.gender = 'F' THEN 'middle-aged women'
             WHEN f.age_band IN ('35-44', '45-54') AND f.gender = 'M' THEN 'middle-aged men'
             WHEN f.age_band IN ('55-64', '65+') THEN 'seniors'
             ELSE 'other or unknown' END",
    )
    .await;
    assert_eq!(wrong_demographic, "0");
    for (scheme, min_segments) in [("region", 5), ("demographic", 5)] {
        // reconciliation: every customer in exactly one segment of the scheme
        let customers = one("SELECT count(*) FROM customer_segments_s").await;
        let summed = one(&format!(
            "SELECT CAST(sum(customers) AS BIGINT) FROM segment_summary_sum WHERE scheme = '{scheme}'"
        ))
        .await;
        assert_eq!(summed, customers, "{scheme}: summary customers");
        let segments: i64 = one(&format!(
            "SELECT count(*) FROM segment_summary_sum WHERE scheme = '{scheme}'"
        ))
        .await
        .parse()
        .unwrap();
        assert!(segments >= min_segments, "{scheme}: {segments} segments");
        let positioned = one(&format!(
            "SELECT count(*) FROM positioning_pos WHERE scheme = '{scheme}' AND strategy_rule IS NOT NULL"
        ))
        .await;
        assert_eq!(positioned, segments.to_string(), "{scheme}: positioning");
        let migrated = one(&format!(
            "SELECT CAST(sum(customers) AS BIGINT) FROM segment_migration_mig
             WHERE scheme = '{scheme}' AND to_segment <> '(gone)'"
        ))
        .await;
        assert_eq!(migrated, customers, "{scheme}: migration");
        let history = one(&format!(
            "SELECT count(*) FROM customer_segments_s WHERE {scheme}_previous IS NULL OR {scheme}_since IS NULL"
        ))
        .await;
        assert_eq!(history, "0", "{scheme}: history in the second period");
    }
    let html = crm_pipeline::report::render(
        &crm_pipeline::storage::Location::parse(&wh.display().to_string()).unwrap(),
        p,
    )
    .await
    .unwrap();
    for scheme in ["region", "demographic"] {
        assert!(
            html.contains(&format!("{scheme}_segment")),
            "the report names the column of {scheme}"
        );
        for section in ["seg", "pos", "mig"] {
            let id = format!("id=\"{section}-{scheme}\"");
            assert!(html.contains(&id), "the report has no {id}");
        }
    }

    // a typo in a rule: `validate` refuses it, naming the scheme and the rule
    let job = tmp.path().join("pipeline.yaml");
    let text = std::fs::read_to_string(repo_file("pipeline.yaml"))
        .unwrap()
        .replace("young men: \"age_band IN", "young men: \"agee_band IN")
        .replace(
            "  dir: sql ",
            &format!("  dir: {} ", repo_file("sql").display()),
        );
    assert!(text.contains("agee_band"));
    std::fs::write(&job, text).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_crm-pipeline"))
        .arg("validate")
        .arg("--config")
        .arg(&job)
        .arg("--raw")
        .arg(&raw)
        .arg("--warehouse")
        .arg(&wh)
        .env_remove("CRM_PIPELINE_CONFIG")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("models.custom_schemes")
            && stderr.contains("scheme `demographic`")
            && stderr.contains("rule `young men")
            && stderr.contains("agee_band"),
        "{stderr}"
    );
}
