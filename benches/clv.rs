//! Criterion benchmarks of the CLV hot paths on 1,000,000 simulated customers (BG/NBD with
//! lifetimes-like parameters, weekly time unit, whole days): grouping customers into distinct
//! (x, t_x, T) rows, the BG/NBD log-likelihood with and without its gradient, the BG/NBD fit
//! (with standard errors, as the pipeline runs it), the Gamma-Gamma fit and discounted CLV
//! scoring of the distinct rows.
//!
//! One-shot mode, used by benches/side_by_side.sh to time the fits on exactly the rows the peer
//! pipeline fitted: with `CRM_BENCH_CLV_CSV=<file>` (columns frequency,recency,T,monetary_value
//! in weeks, as peer_pipeline.py --export-clv-summary writes) and optionally
//! `CRM_BENCH_RFM_CSV=<file>` (customer_id,recency_days,orders,revenue) the binary runs the same
//! steps as the pipeline's customer_value model (and RFM scoring) once and prints one JSON line
//! of timings instead of running criterion.

use std::time::Instant;

use criterion::{Criterion, criterion_group};
use crm_pipeline::models::clv::transaction::{NbdData, objective};
use crm_pipeline::models::clv::{
    ClvOptions, FitOptions, Rfm, TransactionModelKind, fit_gamma_gamma, fit_transactions,
    summarize, summarize_spend,
};
use crm_pipeline::models::segments::rfm;
use rand::{Rng, SeedableRng};
use rand_distr::{Beta, Distribution, Exp, Gamma};

/// pipeline.yaml models.clv: weeks, 365-day horizon in 30-day steps, 10% a year.
const CLV: ClvOptions = ClvOptions {
    horizon_days: 365.0,
    step_days: 30.0,
    annual_discount_rate: 0.10,
    days_per_unit: 7.0,
};

/// Simulated customers: (x, t_x, T) in weeks from whole days, and mean repeat spend.
fn simulate(n: usize) -> (Vec<Rfm>, Vec<f64>) {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
    let lam = Gamma::<f64>::new(0.243, 1.0 / 4.414).expect("valid gamma");
    let drop = Beta::<f64>::new(0.793, 2.426).expect("valid beta");
    let nu = Gamma::<f64>::new(3.74, 1.0 / 15.44).expect("valid gamma");
    let mut out = Vec::with_capacity(n);
    let mut spend = Vec::with_capacity(n);
    for _ in 0..n {
        let age_days = rng.gen_range(1..=1095) as f64;
        let l = lam.sample(&mut rng).max(1e-9) / 7.0; // per day
        let p: f64 = drop.sample(&mut rng);
        let gap = Exp::new(l).expect("positive rate");
        let (mut t, mut x, mut last) = (0.0, 0.0, 0.0);
        loop {
            t += gap.sample(&mut rng);
            if t > age_days {
                break;
            }
            let day = t.floor();
            if day > last {
                x += 1.0;
                last = day;
            }
            if rng.r#gen::<f64>() < p {
                break;
            }
        }
        out.push(Rfm {
            x,
            t_x: last / 7.0,
            t: age_days / 7.0,
        });
        let m = if x > 0.0 {
            let v = nu.sample(&mut rng);
            Gamma::new(6.25 * x, 1.0 / v.max(1e-9))
                .map(|g| g.sample(&mut rng) / x)
                .unwrap_or(f64::NAN)
        } else {
            f64::NAN
        };
        spend.push(m);
    }
    (out, spend)
}

fn bench(c: &mut Criterion) {
    let (customers, spend) = simulate(1_000_000);
    let opts = FitOptions::default();
    let summary = summarize(&customers);
    let xs: Vec<f64> = customers.iter().map(|c| c.x).collect();
    let spend_rows = summarize_spend(&xs, &spend).expect("valid spend").rows;
    let data = NbdData::new(&summary.rows).expect("valid rows");
    let fit = fit_transactions(TransactionModelKind::BgNbd, &summary.rows, &opts);
    assert!(fit.converged, "simulated fit converges: {:?}", fit.reason);
    let theta = [
        fit.model.params.r.ln(),
        fit.model.params.alpha.ln(),
        fit.model.params.a.ln(),
        fit.model.params.b.ln(),
    ];
    let rows: Vec<Rfm> = summary.rfm_rows();
    eprintln!(
        "1,000,000 customers -> {} distinct rows, {} spend rows",
        summary.rows.len(),
        spend_rows.len()
    );

    let mut g = c.benchmark_group("clv_1m");
    g.sample_size(10);
    g.bench_function("summarize_distinct_rows", |b| {
        b.iter(|| summarize(&customers))
    });
    g.bench_function("bgnbd_loglik", |b| {
        b.iter(|| fit.model.log_likelihood(&summary.rows))
    });
    g.bench_function("bgnbd_loglik_and_gradient", |b| {
        let mut grad = [0.0; 4];
        b.iter(|| objective(TransactionModelKind::BgNbd, &data, &theta, 0.0, &mut grad))
    });
    g.bench_function("bgnbd_fit_with_std_errors", |b| {
        b.iter(|| fit_transactions(TransactionModelKind::BgNbd, &summary.rows, &opts))
    });
    g.bench_function("gamma_gamma_fit_with_std_errors", |b| {
        b.iter(|| fit_gamma_gamma(&spend_rows, &opts))
    });
    g.bench_function("clv_scoring_distinct_rows", |b| {
        b.iter(|| {
            crm_pipeline::models::clv::score::score_rows(&fit.model, &rows, 365.0 / 7.0, &CLV)
        })
    });
    g.finish();
}

fn read_columns(path: &str, names: &[&str]) -> Result<Vec<Vec<String>>, String> {
    let mut rdr = csv::Reader::from_path(path).map_err(|e| format!("{path}: {e}"))?;
    let header = rdr.headers().map_err(|e| format!("{path}: {e}"))?.clone();
    let idx: Vec<usize> = names
        .iter()
        .map(|n| {
            header
                .iter()
                .position(|h| h == *n)
                .ok_or(format!("{path}: no column {n}"))
        })
        .collect::<Result<_, _>>()?;
    let mut cols = vec![Vec::new(); names.len()];
    for rec in rdr.records() {
        let rec = rec.map_err(|e| format!("{path}: {e}"))?;
        for (c, &i) in cols.iter_mut().zip(&idx) {
            c.push(rec.get(i).unwrap_or("").to_string());
        }
    }
    Ok(cols)
}

/// CPU seconds of this process so far (user + system, 100 ticks a second), as run.rs measures.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let f: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, a)| a.split_whitespace().collect())
        .unwrap_or_default();
    let tick = |i: usize| {
        f.get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(f64::NAN)
    };
    (tick(11) + tick(12)) / 100.0
}

fn f64s(col: &[String]) -> Vec<f64> {
    col.iter().map(|v| v.parse().unwrap_or(f64::NAN)).collect()
}

/// Times the customer_value model's steps (jobs/models/customer_value.rs `predict`) once on a
/// CSV. `CRM_BENCH_CLV_MODEL` = bgnbd (default), mbgnbd or pnbd picks the transaction model;
/// `CRM_BENCH_CLV_INTERVALS` = `delta` or `draws:N` also times the CLV / P(alive) intervals
/// by that method.
fn one_shot(clv_csv: &str, rfm_csv: Option<String>) -> Result<serde_json::Value, String> {
    use crm_pipeline::models::clv::interval::{CustomerRef, IntervalOptions, intervals};
    use crm_pipeline::models::clv::pnbd::PnbdView;
    use crm_pipeline::models::clv::score::score_rows;
    let kind = match std::env::var("CRM_BENCH_CLV_MODEL").as_deref() {
        Ok("pnbd") => TransactionModelKind::ParetoNbd,
        Ok("mbgnbd") => TransactionModelKind::MbgNbd,
        Ok("bgnbd") | Err(_) => TransactionModelKind::BgNbd,
        Ok(other) => return Err(format!("unknown CRM_BENCH_CLV_MODEL {other}")),
    };
    use crm_pipeline::models::clv::interval::IntervalMethod;
    let method = match std::env::var("CRM_BENCH_CLV_INTERVALS").as_deref() {
        Err(_) | Ok("") | Ok("none") => None,
        Ok("delta") => Some((IntervalMethod::Delta, 0)),
        Ok(v) => match v.strip_prefix("draws:").and_then(|n| n.parse().ok()) {
            Some(n) => Some((IntervalMethod::Draws, n)),
            None => {
                return Err(format!(
                    "CRM_BENCH_CLV_INTERVALS: delta or draws:N, got {v}"
                ));
            }
        },
    };
    let cols = read_columns(clv_csv, &["frequency", "recency", "T", "monetary_value"])?;
    let (x, tx, t, m) = (
        f64s(&cols[0]),
        f64s(&cols[1]),
        f64s(&cols[2]),
        f64s(&cols[3]),
    );
    let customers: Vec<Rfm> = (0..x.len())
        .map(|i| Rfm {
            x: x[i],
            t_x: tx[i],
            t: t[i],
        })
        .collect();
    let opts = FitOptions {
        min_repeat_customers: 30,
        ..FitOptions::default()
    };
    let (t0, c0) = (Instant::now(), cpu_seconds());
    let summary = summarize(&customers);
    let t_summarize = t0.elapsed().as_secs_f64();
    let tfit = fit_transactions(kind, &summary.rows, &opts);
    let bg = t0.elapsed().as_secs_f64();
    let t1 = Instant::now();
    let spend = summarize_spend(&x, &m)?;
    let t_spend_summarize = t1.elapsed().as_secs_f64();
    let gfit = fit_gamma_gamma(&spend.rows, &opts);
    let gg = t1.elapsed().as_secs_f64();
    let fit_cpu = cpu_seconds() - c0;
    if !tfit.converged || !gfit.converged {
        return Err(format!(
            "fit did not converge: {:?} {:?}",
            tfit.reason, gfit.reason
        ));
    }
    let (t2, c2) = (Instant::now(), cpu_seconds());
    let model = tfit.model;
    let rows: Vec<Rfm> = summary.rfm_rows();
    let scores = score_rows(&model, &rows, 365.0 / 7.0, &CLV)?;
    let mut total_clv = 0.0;
    let mut checksum = 0.0;
    for (k, c) in customers.iter().enumerate() {
        if let Some(r) = summary.row_of_customer.get(k) {
            let s = gfit
                .params
                .conditional_expected_spend(c.x, if c.x > 0.0 { m[k] } else { 0.0 });
            total_clv += s * scores.dep[r];
            checksum += scores.p_alive[r] + scores.expected[r];
        }
    }
    let score = t2.elapsed().as_secs_f64();
    let score_cpu = cpu_seconds() - c2;
    let p = model.params;
    let params = if kind == TransactionModelKind::ParetoNbd {
        let v = PnbdView::of(&p);
        serde_json::json!({"r": v.r, "alpha": v.alpha, "s": v.s, "beta": v.beta})
    } else {
        serde_json::json!({"r": p.r, "alpha": p.alpha, "a": p.a, "b": p.b})
    };
    let mut out = serde_json::json!({
        "model": kind.name(),
        "customers": customers.len(),
        "distinct_rows": summary.rows.len(),
        "summarize_seconds": t_summarize,
        "spend_summarize_seconds": t_spend_summarize,
        "gamma_gamma_fit_iterations": gfit.iterations,
        "gamma_gamma_fit_evaluations": gfit.evaluations,
        "transaction_fit_seconds": bg,
        "bgnbd_fit_seconds": bg,
        "transaction_fit_iterations": tfit.iterations,
        "transaction_log_likelihood": tfit.log_likelihood,
        "gamma_gamma_fit_seconds": gg,
        "clv_fit_seconds": bg + gg,
        "clv_score_seconds": score,
        "clv_fit_cpu_seconds": fit_cpu,
        "clv_score_cpu_seconds": score_cpu,
        "total_clv": total_clv,
        "checksum": checksum,
        "bgnbd": params.clone(),
        "transaction": params,
        "gamma_gamma": {"p": gfit.params.p, "q": gfit.params.q, "v": gfit.params.v},
    });
    if let Some((method, draws)) = method {
        let cov = tfit.cov_log.as_deref().ok_or("no covariance")?;
        let refs: Vec<CustomerRef> = (0..customers.len())
            .filter_map(|k| {
                summary.row_of_customer.get(k).map(|r| CustomerRef {
                    row: r,
                    m: if m[k].is_finite() { m[k] } else { 0.0 },
                })
            })
            .collect();
        let (t3, c3) = (Instant::now(), cpu_seconds());
        let iv = intervals(
            &model,
            cov,
            &gfit.params,
            gfit.cov_log.as_deref(),
            &rows,
            &refs,
            &CLV,
            &IntervalOptions {
                level: 0.9,
                method,
                draws,
                seed: 1,
            },
        )?;
        out["interval_method"] = serde_json::json!(format!("{method:?}").to_lowercase());
        out["interval_draws"] = serde_json::json!(draws);
        out["interval_seconds"] = serde_json::json!(t3.elapsed().as_secs_f64());
        out["interval_cpu_seconds"] = serde_json::json!(cpu_seconds() - c3);
        let width: f64 = iv
            .clv_hi
            .iter()
            .zip(&iv.clv_lo)
            .map(|(h, l)| h - l)
            .sum::<f64>()
            / refs.len().max(1) as f64;
        out["interval_mean_clv_width"] = serde_json::json!(width);
    }
    if let Some(path) = rfm_csv {
        let cols = read_columns(&path, &["customer_id", "recency_days", "orders", "revenue"])?;
        let ids: Vec<&str> = cols[0].iter().map(String::as_str).collect();
        let opt = |c: &[String]| -> Vec<Option<f64>> { c.iter().map(|v| v.parse().ok()).collect() };
        let (r, f, mo) = (opt(&cols[1]), opt(&cols[2]), opt(&cols[3]));
        let (t3, c3) = (Instant::now(), cpu_seconds());
        let sr = rfm::quantile_scores(&r, &ids, 5, rfm::TieRule::Average, false);
        let sf = rfm::quantile_scores(&f, &ids, 5, rfm::TieRule::Average, true);
        let sm = rfm::quantile_scores(&mo, &ids, 5, rfm::TieRule::Average, true);
        out["rfm_seconds"] = serde_json::json!(t3.elapsed().as_secs_f64());
        out["rfm_cpu_seconds"] = serde_json::json!(cpu_seconds() - c3);
        out["rfm_customers"] = serde_json::json!(sr.len().min(sf.len()).min(sm.len()));
    }
    Ok(out)
}

criterion_group!(benches, bench);

fn main() {
    if let Ok(path) = std::env::var("CRM_BENCH_CLV_CSV") {
        match one_shot(&path, std::env::var("CRM_BENCH_RFM_CSV").ok()) {
            Ok(v) => println!("{v}"),
            Err(e) => {
                eprintln!("one-shot CLV timing failed: {e}");
                std::process::exit(1);
            }
        }
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
