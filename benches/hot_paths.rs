//! Criterion benchmarks of the per-customer scoring and output hot paths over 1,000,000
//! customers: RFM quintile scores, the RFM eight-class cut-offs, and the partition writer
//! (cast to the contract schema, sort by key, encode Parquet) staging a customer_value-shaped
//! table into an in-memory store, so the figure is CPU, not disk.
//! The CLV hot paths are in benches/clv.rs.

use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use crm_pipeline::models::segments::{rfm, rfm8};
use crm_pipeline::publish::ColumnType;
use crm_pipeline::publish::PartitionWriter;
use crm_pipeline::storage::Location;
use datafusion::arrow::array::{ArrayRef, Float64Array, Int32Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use rand::{Rng, SeedableRng};

fn customers(n: usize) -> (Vec<String>, Vec<Option<f64>>, Vec<Option<f64>>) {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let ids = (0..n).map(|i| format!("C{i:08}")).collect();
    let recency = (0..n)
        .map(|_| Some(rng.gen_range(0..1095) as f64))
        .collect();
    let revenue = (0..n)
        .map(|_| Some((rng.r#gen::<f64>() * 500.0 * 100.0).round() / 100.0))
        .collect();
    (ids, recency, revenue)
}

fn segments(c: &mut Criterion) {
    let (ids, recency, revenue) = customers(1_000_000);
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    let mut g = c.benchmark_group("segments_1m");
    g.sample_size(10);
    g.bench_function("rfm_quintiles_recency_ties_average", |b| {
        b.iter(|| rfm::quantile_scores(&recency, &ids, 5, rfm::TieRule::Average, false))
    });
    g.bench_function("rfm_quintiles_revenue", |b| {
        b.iter(|| rfm::quantile_scores(&revenue, &ids, 5, rfm::TieRule::CustomerId, true))
    });
    g.bench_function("rfm8_mean_cutoff", |b| {
        b.iter(|| rfm8::cutoff(&revenue, rfm8::Cutoff::Mean))
    });
    g.finish();
}

/// A customer_value-shaped batch: id, eight float columns, one int column; ids shuffled so the
/// writer's sort has work to do.
fn value_batch(n: usize) -> (RecordBatch, Vec<(String, ColumnType)>) {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
    let mut order: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        order.swap(i, rng.gen_range(0..=i));
    }
    let ids: Vec<String> = order.iter().map(|i| format!("C{i:08}")).collect();
    let mut fields = vec![Field::new("customer_id", DataType::Utf8, false)];
    let mut cols: Vec<ArrayRef> = vec![Arc::new(StringArray::from(ids))];
    let mut columns = vec![("customer_id".to_string(), ColumnType::String)];
    for name in [
        "historical_revenue",
        "frequency",
        "recency",
        "age",
        "p_alive",
        "expected_purchases",
        "expected_avg_order_value",
        "clv",
    ] {
        let v: Vec<f64> = (0..n).map(|_| rng.r#gen::<f64>() * 100.0).collect();
        fields.push(Field::new(name, DataType::Float64, true));
        cols.push(Arc::new(Float64Array::from(v)));
        columns.push((name.to_string(), ColumnType::Float64));
    }
    fields.push(Field::new("clv_decile", DataType::Int32, true));
    cols.push(Arc::new(Int32Array::from(
        (0..n).map(|i| (i % 10) as i32 + 1).collect::<Vec<_>>(),
    )));
    columns.push(("clv_decile".to_string(), ColumnType::Int32));
    let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), cols).expect("valid batch");
    (batch, columns)
}

fn writer(c: &mut Criterion) {
    let (batch, columns) = value_batch(1_000_000);
    let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
    let wh = Location::parse("memory://bench-writer/warehouse").expect("memory location");
    let layout = crm_pipeline::layout::Layout::for_warehouse(wh);
    let attempt = crm_pipeline::layout::Attempt::first("bench");
    let period = crm_pipeline::period::Period::parse(crm_pipeline::period::Grain::Month, "2024-12")
        .expect("period");
    let mut g = c.benchmark_group("publish_1m");
    g.sample_size(10);
    g.bench_function("partition_writer_customer_value", |b| {
        b.iter(|| {
            let w = PartitionWriter::new(&layout, &attempt, "customer_value", &period)
                .with_columns(columns.clone())
                .with_key(vec!["customer_id".to_string()]);
            rt.block_on(w.stage(std::slice::from_ref(&batch)))
                .expect("staged")
        })
    });
    g.finish();
}

criterion_group!(benches, segments, writer);
criterion_main!(benches);
