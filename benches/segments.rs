//! Criterion benchmarks of the per-customer scoring hot paths: RFM quintile scores and the
//! RFM eight-class cut-offs over 1,000,000 customers.

use criterion::{Criterion, criterion_group, criterion_main};
use crm_pipeline::models::{rfm, rfm8};
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

fn bench(c: &mut Criterion) {
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

criterion_group!(benches, bench);
criterion_main!(benches);
