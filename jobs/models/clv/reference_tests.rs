//! Reference, published-value, recovery and speed tests. Fixtures come from
//! tests/reference/lifetimes_reference.py (Python lifetimes 0.11.3 on the CDNOW summary that
//! ships inside lifetimes; time unit weeks).
//!
//! lifetimes' `_negative_log_likelihood` is the MEAN negative log-likelihood (-sum(ll)/N, plus
//! penalizer_coef * sum(params^2)); our `log_likelihood` is the SUM of per-customer log-
//! likelihoods, so we compare against the fixture's `total_ll` = -mean_neg_ll * N, and our
//! internal objective (also mean-scaled and penalised) against `mean_neg_ll_penalizer_0.1`.

use serde_json::Value;

use super::gamma_gamma::{self, GammaGammaParams, fit_gamma_gamma};
use super::sim::{simulate_bgnbd, simulate_spend, to_day_resolution};
use super::summary::{Rfm, summarize, summarize_spend};
use super::transaction::{
    self, FitOptions, NbdParams, TransactionModel, TransactionModelKind, fit_transactions,
};
use super::value::{ClvOptions, customer_lifetime_values};

const TOL: f64 = 1e-6;

fn load(name: &str) -> Value {
    let path = format!("{}/tests/reference/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parse {path}: {e}"))
}

fn arr(v: &Value) -> Vec<f64> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_f64().expect("number"))
        .collect()
}

fn num(v: &Value) -> f64 {
    v.as_f64().expect("number")
}

struct Cdnow {
    customers: Vec<Rfm>,
    monetary: Vec<f64>,
}

fn cdnow() -> Cdnow {
    let s = load("cdnow_summary.json");
    let (f, r, t, m) = (
        arr(&s["frequency"]),
        arr(&s["recency"]),
        arr(&s["T"]),
        arr(&s["monetary_value"]),
    );
    let customers = (0..f.len())
        .map(|i| Rfm {
            x: f[i],
            t_x: r[i],
            t: t[i],
        })
        .collect();
    Cdnow {
        customers,
        monetary: m,
    }
}

/// Relative difference, with an absolute floor for values near zero.
fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs().max(1e-12)
}

fn nbd_params(v: &Value) -> NbdParams {
    NbdParams {
        r: num(&v["r"]),
        alpha: num(&v["alpha"]),
        a: num(&v["a"]),
        b: num(&v["b"]),
    }
}

fn check_nbd_block(kind: TransactionModelKind, blk: &Value, data: &Cdnow) -> f64 {
    let params = nbd_params(&blk["params"]);
    let model = TransactionModel { kind, params };
    let rows = summarize(&data.customers).rows;
    let n = data.customers.len() as f64;
    let mut worst = 0.0f64;
    let mut check = |what: &str, got: f64, want: f64| {
        let e = rel(got, want);
        assert!(
            e < TOL,
            "{kind:?} {what}: got {got}, lifetimes {want} (rel {e:e})"
        );
        worst = worst.max(e);
    };
    check(
        "total LL",
        model.log_likelihood(&rows),
        num(&blk["total_ll"]),
    );
    // Our penalised mean objective vs lifetimes' objective with penalizer_coef = 0.1.
    let d = transaction::NbdData::new(&rows).expect("valid rows");
    let theta = [
        params.r.ln(),
        params.alpha.ln(),
        params.a.ln(),
        params.b.ln(),
    ];
    let mut g = [0.0; 4];
    let obj = transaction::objective(kind, &d, &theta, 0.1, &mut g);
    check(
        "penalised mean objective",
        obj,
        num(&blk["mean_neg_ll_penalizer_0.1"]),
    );
    check(
        "mean neg LL",
        -model.log_likelihood(&rows) / n,
        num(&blk["mean_neg_ll"]),
    );
    let pa = arr(&blk["p_alive"]);
    for (i, c) in data.customers.iter().enumerate() {
        check("P(alive)", model.p_alive(c), pa[i]);
    }
    for t in ["1", "10", "52"] {
        let want = arr(&blk["conditional_expected"][t]);
        let tv: f64 = t.parse().expect("number");
        for (i, c) in data.customers.iter().enumerate() {
            check(
                "conditional expected purchases",
                model.conditional_expected_purchases(tv, c),
                want[i],
            );
        }
    }
    let ts = arr(&blk["expected_t"]);
    let want = arr(&blk["expected"]);
    for (t, w) in ts.iter().zip(&want) {
        if *w == 0.0 {
            assert_eq!(model.expected_purchases(*t), 0.0);
        } else {
            check("E[X(t)]", model.expected_purchases(*t), *w);
        }
    }
    worst
}

#[test]
fn lifetimes_agreement_bgnbd_and_mbgnbd_fixed_params() {
    let v = load("lifetimes_values.json");
    let data = cdnow();
    assert_eq!(data.customers.len(), 2357);
    let mut worst = 0.0f64;
    for blk in v["bgnbd_fixed"].as_array().expect("blocks") {
        worst = worst.max(check_nbd_block(TransactionModelKind::BgNbd, blk, &data));
    }
    for blk in v["mbgnbd_fixed"].as_array().expect("blocks") {
        worst = worst.max(check_nbd_block(TransactionModelKind::MbgNbd, blk, &data));
    }
    eprintln!(
        "BG/NBD + MBG/NBD fixed-parameter agreement with lifetimes: worst relative difference {worst:.2e}"
    );
}

#[test]
fn lifetimes_agreement_gamma_gamma_and_clv_fixed_params() {
    let v = load("lifetimes_values.json");
    let data = cdnow();
    let blk = &v["gamma_gamma_fixed"];
    let gp = GammaGammaParams {
        p: num(&blk["params"]["p"]),
        q: num(&blk["params"]["q"]),
        v: num(&blk["params"]["v"]),
    };
    let x: Vec<f64> = data.customers.iter().map(|c| c.x).collect();
    let spend = summarize_spend(&x, &data.monetary).expect("same length");
    assert_eq!(
        spend.rows.iter().map(|r| r.weight).sum::<f64>(),
        num(&blk["n_repeat"])
    );
    let mut worst = 0.0f64;
    let mut check = |what: &str, got: f64, want: f64| {
        let e = rel(got, want);
        assert!(e < TOL, "{what}: got {got}, lifetimes {want} (rel {e:e})");
        worst = worst.max(e);
    };
    check(
        "GG total LL",
        gp.log_likelihood(&spend.rows),
        num(&blk["total_ll"]),
    );
    let theta = [gp.p.ln(), (gp.q - 1.0).ln(), gp.v.ln()];
    let mut g = [0.0; 3];
    check(
        "GG penalised mean objective",
        gamma_gamma::objective_rows(&spend.rows, &theta, 0.1, &mut g),
        num(&blk["mean_neg_ll_penalizer_0.1"]),
    );
    let want = arr(&blk["conditional_expected_average_profit"]);
    let expected_spend: Vec<f64> = data
        .customers
        .iter()
        .zip(&data.monetary)
        .map(|(c, &m)| gp.conditional_expected_spend(c.x, m))
        .collect();
    for i in 0..want.len() {
        check(
            "GG conditional expected average profit",
            expected_spend[i],
            want[i],
        );
    }
    // lifetimes: 12 monthly steps of 4.345 weeks, 1% per month, model in weeks.
    let clv_blk = &v["clv_bgnbd0_gg_fixed"];
    let step_days = num(&clv_blk["weeks_per_month"]) * 7.0;
    let months = num(&clv_blk["months"]);
    let opts = ClvOptions {
        horizon_days: months * step_days,
        step_days,
        annual_discount_rate: ClvOptions::annual_rate_from_step_rate(
            num(&clv_blk["monthly_discount_rate"]),
            step_days,
        ),
        days_per_unit: 7.0,
    };
    assert_eq!(opts.n_steps(), 12);
    let model = TransactionModel {
        kind: TransactionModelKind::BgNbd,
        params: nbd_params(&v["bgnbd_fixed"][0]["params"]),
    };
    let clv = customer_lifetime_values(&model, &data.customers, &expected_spend, &opts)
        .expect("valid options");
    let want = arr(&clv_blk["clv"]);
    for i in 0..want.len() {
        check("discounted CLV", clv[i], want[i]);
    }
    eprintln!("Gamma-Gamma + CLV agreement with lifetimes: worst relative difference {worst:.2e}");
}

#[test]
fn cdnow_fits_match_lifetimes_and_published_values() {
    let v = load("lifetimes_values.json");
    let data = cdnow();
    let rows = summarize(&data.customers).rows;
    let o = FitOptions::default();

    let bg = fit_transactions(TransactionModelKind::BgNbd, &rows, &o);
    assert!(bg.converged, "{:?}", bg.reason);
    let p = bg.model.params;
    // Published (FHL 2005): r = 0.243, alpha = 4.414, a = 0.793, b = 2.426; LL = -9582.4.
    for (got, want) in [(p.r, 0.243), (p.alpha, 4.414), (p.a, 0.793), (p.b, 2.426)] {
        assert!(
            (got - want).abs() <= 0.0005,
            "BG/NBD {got} vs published {want}"
        );
    }
    assert!(
        (bg.log_likelihood - -9582.4).abs() < 0.05,
        "LL {}",
        bg.log_likelihood
    );
    // lifetimes' fit stops at scipy BFGS gtol 1e-7 on the mean objective, so compare at 1e-4.
    let lt = nbd_params(&v["bgnbd_fitted"]["params"]);
    for (got, want) in [(p.r, lt.r), (p.alpha, lt.alpha), (p.a, lt.a), (p.b, lt.b)] {
        assert!(
            rel(got, want) < 1e-4,
            "BG/NBD fitted {got} vs lifetimes {want}"
        );
    }
    assert!(bg.log_likelihood >= num(&v["bgnbd_fitted"]["total_ll"]) - 1e-6);
    let se = bg.std_errors.expect("standard errors");
    let lse = nbd_params(&v["bgnbd_fitted"]["standard_errors"]);
    for (got, want) in [
        (se.r, lse.r),
        (se.alpha, lse.alpha),
        (se.a, lse.a),
        (se.b, lse.b),
    ] {
        assert!(rel(got, want) < 1e-3, "BG/NBD SE {got} vs lifetimes {want}");
    }
    eprintln!(
        "CDNOW BG/NBD fit: {p:?} LL {} iters {} SE {se:?}",
        bg.log_likelihood, bg.iterations
    );

    let mbg = fit_transactions(TransactionModelKind::MbgNbd, &rows, &o);
    assert!(mbg.converged, "{:?}", mbg.reason);
    let p = mbg.model.params;
    let lt = nbd_params(&v["mbgnbd_fitted"]["params"]);
    for (got, want) in [(p.r, lt.r), (p.alpha, lt.alpha), (p.a, lt.a), (p.b, lt.b)] {
        assert!(
            rel(got, want) < 1e-4,
            "MBG/NBD fitted {got} vs lifetimes {want}"
        );
    }
    eprintln!("CDNOW MBG/NBD fit: {p:?} LL {}", mbg.log_likelihood);

    let x: Vec<f64> = data.customers.iter().map(|c| c.x).collect();
    let spend = summarize_spend(&x, &data.monetary).expect("same length");
    let gg = fit_gamma_gamma(&spend.rows, &o);
    assert!(gg.converged, "{:?}", gg.reason);
    // Newton with the analytic Hessian converged from the default start (BFGS would take
    // about 20 iterations, each with line-search evaluations)
    assert!(
        gg.iterations <= 12 && gg.evaluations == gg.iterations + 1,
        "Gamma-Gamma took {} iterations, {} evaluations",
        gg.iterations,
        gg.evaluations
    );
    let g = gg.params;
    // Published (Fader & Hardie 2013): p = 6.25, q = 3.74, gamma = 15.44. The MLE (ours and
    // lifetimes') has gamma = 15.448, so gamma is checked to 0.01.
    assert!((g.p - 6.25).abs() <= 0.005, "p {}", g.p);
    assert!((g.q - 3.74).abs() <= 0.005, "q {}", g.q);
    assert!((g.v - 15.44).abs() <= 0.01, "gamma {}", g.v);
    let lg = &v["gamma_gamma_fitted"]["params"];
    for (got, want) in [
        (g.p, num(&lg["p"])),
        (g.q, num(&lg["q"])),
        (g.v, num(&lg["v"])),
    ] {
        assert!(rel(got, want) < 1e-4, "GG fitted {got} vs lifetimes {want}");
    }
    let se = gg.std_errors.expect("standard errors");
    let ls = &v["gamma_gamma_fitted"]["standard_errors"];
    for (got, want) in [
        (se.p, num(&ls["p"])),
        (se.q, num(&ls["q"])),
        (se.v, num(&ls["v"])),
    ] {
        assert!(rel(got, want) < 1e-3, "GG SE {got} vs lifetimes {want}");
    }
    eprintln!(
        "CDNOW Gamma-Gamma fit: {g:?} LL {} SE {se:?}",
        gg.log_likelihood
    );
}

const TRUTH: NbdParams = NbdParams {
    r: 0.243,
    alpha: 4.414,
    a: 0.793,
    b: 2.426,
};
const GG_TRUTH: GammaGammaParams = GammaGammaParams {
    p: 6.25,
    q: 3.74,
    v: 15.44,
};

#[test]
fn recovers_simulated_parameters() {
    let sim = simulate_bgnbd(100_000, &TRUTH, 156.0, 20240601);
    let s = summarize(&sim);
    assert!(s.invalid.is_empty());
    let bg = fit_transactions(TransactionModelKind::BgNbd, &s.rows, &FitOptions::default());
    assert!(bg.converged, "{:?}", bg.reason);
    let p = bg.model.params;
    for (name, got, want) in [
        ("r", p.r, TRUTH.r),
        ("alpha", p.alpha, TRUTH.alpha),
        ("a", p.a, TRUTH.a),
        ("b", p.b, TRUTH.b),
    ] {
        assert!(
            rel(got, want) < 0.10,
            "{name}: fitted {got} vs truth {want}"
        );
    }
    let m = simulate_spend(&sim, &GG_TRUTH, 99);
    let x: Vec<f64> = sim.iter().map(|c| c.x).collect();
    let spend = summarize_spend(&x, &m).expect("same length");
    let gg = fit_gamma_gamma(&spend.rows, &FitOptions::default());
    assert!(gg.converged, "{:?}", gg.reason);
    let g = gg.params;
    for (name, got, want) in [
        ("p", g.p, GG_TRUTH.p),
        ("q", g.q, GG_TRUTH.q),
        ("v", g.v, GG_TRUTH.v),
    ] {
        assert!(
            rel(got, want) < 0.10,
            "{name}: fitted {got} vs truth {want}"
        );
    }
    eprintln!(
        "recovery: BG/NBD {p:?} ({} rows), GG {g:?} ({} repeat customers)",
        s.rows.len(),
        gg.n_customers
    );
    // The same data at day resolution (times floored to whole days) fit on far fewer rows.
    let days = summarize(&to_day_resolution(&sim, 7.0));
    assert!(days.rows.len() < s.rows.len());
    let bgd = fit_transactions(
        TransactionModelKind::BgNbd,
        &days.rows,
        &FitOptions::default(),
    );
    assert!(bgd.converged, "{:?}", bgd.reason);
    assert!(rel(bgd.model.params.r, TRUTH.r) < 0.10);
    // MBG/NBD fits the same data without error.
    let mbg = fit_transactions(
        TransactionModelKind::MbgNbd,
        &s.rows,
        &FitOptions::default(),
    );
    assert!(mbg.converged, "{:?}", mbg.reason);
}

#[test]
fn recovers_simulated_pnbd_parameters() {
    // the published CDNOW estimates as the truth, 100,000 customers over three years
    let truth = super::pnbd::PnbdView {
        r: 0.553,
        alpha: 10.578,
        s: 0.606,
        beta: 11.669,
    };
    let sim = super::sim::simulate_pnbd(100_000, &truth.params(), 156.0, 20240602);
    let s = summarize(&to_day_resolution(&sim, 7.0));
    let f = fit_transactions(
        TransactionModelKind::ParetoNbd,
        &s.rows,
        &FitOptions::default(),
    );
    assert!(f.converged, "{:?}", f.reason);
    let p = super::pnbd::PnbdView::of(&f.model.params);
    for (name, got, want) in [
        ("r", p.r, truth.r),
        ("alpha", p.alpha, truth.alpha),
        ("s", p.s, truth.s),
        ("beta", p.beta, truth.beta),
    ] {
        assert!(
            rel(got, want) < 0.10,
            "{name}: fitted {got} vs truth {want}"
        );
    }
    eprintln!("Pareto/NBD recovery: {p:?} ({} rows)", s.rows.len());
}

/// Speed check, release mode: `cargo test --release -- --ignored speed_1m --nocapture`.
/// Set CLV_SIM_CSV=/path.csv to also write the simulated summary for benches/clv_peer.py.
#[test]
#[ignore]
fn speed_1m_customers() {
    use std::time::Instant;
    let n = 1_000_000;
    let t0 = Instant::now();
    let sim = simulate_bgnbd(n, &TRUTH, 156.0, 7);
    let m = simulate_spend(&sim, &GG_TRUTH, 8);
    eprintln!("simulate {n}: {:.3} s", t0.elapsed().as_secs_f64());
    if let Ok(path) = std::env::var("CLV_SIM_CSV") {
        use std::io::Write;
        let mut out = String::from("frequency,recency,T,monetary_value\n");
        for (c, mv) in sim.iter().zip(&m) {
            out.push_str(&format!("{},{:?},{:?},{:?}\n", c.x, c.t_x, c.t, mv));
        }
        let mut f = std::fs::File::create(&path).expect("create csv");
        f.write_all(out.as_bytes()).expect("write csv");
        eprintln!("wrote {path}");
    }
    for (label, data) in [
        ("continuous times", sim.clone()),
        ("day resolution", to_day_resolution(&sim, 7.0)),
    ] {
        let t1 = Instant::now();
        let s = summarize(&data);
        let t_sum = t1.elapsed().as_secs_f64();
        let t2 = Instant::now();
        let bg = fit_transactions(TransactionModelKind::BgNbd, &s.rows, &FitOptions::default());
        let t_bg = t2.elapsed().as_secs_f64();
        assert!(bg.converged, "{:?}", bg.reason);
        let t3 = Instant::now();
        let x: Vec<f64> = data.iter().map(|c| c.x).collect();
        let spend = summarize_spend(&x, &m).expect("same length");
        let gg = fit_gamma_gamma(&spend.rows, &FitOptions::default());
        let t_gg = t3.elapsed().as_secs_f64();
        assert!(gg.converged, "{:?}", gg.reason);
        eprintln!(
            "[{label}] summarize {t_sum:.3} s ({} rows); BG/NBD fit+SE {t_bg:.3} s ({} iters); \
             GG summarize+fit+SE {t_gg:.3} s ({} rows); total {:.3} s",
            s.rows.len(),
            bg.iterations,
            spend.rows.len(),
            t_sum + t_bg + t_gg
        );
        eprintln!("   BG/NBD {:?}  GG {:?}", bg.model.params, gg.params);
        if label == "continuous times" {
            let t4 = Instant::now();
            let spend: Vec<f64> = data
                .iter()
                .zip(&m)
                .map(|(c, &mv)| gg.params.conditional_expected_spend(c.x, mv))
                .collect();
            let opts = ClvOptions {
                days_per_unit: 7.0,
                ..ClvOptions::default()
            };
            let clv =
                customer_lifetime_values(&bg.model, &data, &spend, &opts).expect("valid options");
            assert!(clv.iter().all(|v| v.is_finite()));
            eprintln!(
                "   CLV for {} customers (12 monthly steps, 10%/yr): {:.3} s",
                clv.len(),
                t4.elapsed().as_secs_f64()
            );
        }
    }
}

fn pnbd_params(v: &Value) -> NbdParams {
    super::pnbd::PnbdView {
        r: num(&v["r"]),
        alpha: num(&v["alpha"]),
        s: num(&v["s"]),
        beta: num(&v["beta"]),
    }
    .params()
}

#[test]
fn lifetimes_agreement_pnbd_fixed_params() {
    let v = load("pnbd_values.json");
    let data = cdnow();
    let rows = summarize(&data.customers).rows;
    let mut worst = 0.0f64;
    for blk in v["fixed"].as_array().expect("blocks") {
        let model = TransactionModel {
            kind: TransactionModelKind::ParetoNbd,
            params: pnbd_params(&blk["params"]),
        };
        let mut check = |what: &str, got: f64, want: f64| {
            let e = rel(got, want);
            assert!(
                e < TOL,
                "Pareto/NBD {:?} {what}: got {got}, lifetimes {want} (rel {e:e})",
                model.params
            );
            worst = worst.max(e);
        };
        check(
            "total LL",
            model.log_likelihood(&rows),
            num(&blk["total_ll"]),
        );
        let ll = arr(&blk["row_ll"]);
        let pa = arr(&blk["p_alive"]);
        for (i, c) in data.customers.iter().enumerate() {
            check("row LL", model.log_likelihood_row(c), ll[i]);
            check("P(alive)", model.p_alive(c), pa[i]);
        }
        for t in ["1", "10", "52"] {
            let want = arr(&blk["conditional_expected"][t]);
            let tv: f64 = t.parse().expect("number");
            for (i, c) in data.customers.iter().enumerate() {
                check(
                    "conditional expected purchases",
                    model.conditional_expected_purchases(tv, c),
                    want[i],
                );
            }
        }
        for (t, w) in arr(&blk["expected_t"]).iter().zip(&arr(&blk["expected"])) {
            if *w == 0.0 {
                assert_eq!(model.expected_purchases(*t), 0.0);
            } else {
                check("E[X(t)]", model.expected_purchases(*t), *w);
            }
        }
    }
    // Heavy buyers (x up to 500): mpmath at 40 digits; lifetimes' value is printed for contrast.
    let mut heavy_worst = 0.0f64;
    for h in v["heavy"].as_array().expect("heavy") {
        let model = TransactionModel {
            kind: TransactionModelKind::ParetoNbd,
            params: pnbd_params(&h["params"]),
        };
        let c = Rfm {
            x: num(&h["x"]),
            t_x: num(&h["t_x"]),
            t: num(&h["T"]),
        };
        let ll = model.log_likelihood_row(&c);
        let pa = model.p_alive(&c);
        let e_ll = rel(ll, num(&h["ll"]));
        assert!(
            e_ll < 1e-9,
            "heavy {c:?} {:?}: LL {ll} vs {}",
            model.params,
            h["ll"]
        );
        let want_pa = num(&h["p_alive"]);
        assert!(
            (pa - want_pa).abs() < 1e-9 * want_pa.max(1e-300) || (pa - want_pa).abs() < 1e-15,
            "heavy {c:?}: P(alive) {pa} vs {want_pa}"
        );
        for t in ["1", "10", "52"] {
            let tv: f64 = t.parse().expect("number");
            let got = model.conditional_expected_purchases(tv, &c);
            let want = num(&h["conditional_expected"][t]);
            assert!(
                rel(got, want) < 1e-9 || (got - want).abs() < 1e-300,
                "heavy {c:?} t={t}: {got} vs {want}"
            );
        }
        heavy_worst = heavy_worst.max(e_ll);
        eprintln!(
            "x={} t_x={} T={}: LL {ll:.10} (mpmath {}), lifetimes {}",
            c.x, c.t_x, c.t, h["ll"], h["lifetimes_ll"]
        );
    }
    eprintln!(
        "Pareto/NBD agreement: lifetimes worst relative difference {worst:.2e}; heavy buyers vs mpmath {heavy_worst:.2e}"
    );
}

#[test]
fn cdnow_pnbd_fit_matches_published_values() {
    let v = load("pnbd_values.json");
    let data = cdnow();
    let rows = summarize(&data.customers).rows;
    let f = fit_transactions(
        TransactionModelKind::ParetoNbd,
        &rows,
        &FitOptions::default(),
    );
    assert!(f.converged, "{:?}", f.reason);
    let p = super::pnbd::PnbdView::of(&f.model.params);
    // Published (Fader, Hardie & Lee 2005a, CDNOW, weeks): r = 0.553, alpha = 10.578,
    // s = 0.606, beta = 11.669, LL = -9595.0.
    for (name, got, want) in [
        ("r", p.r, 0.553),
        ("alpha", p.alpha, 10.578),
        ("s", p.s, 0.606),
        ("beta", p.beta, 11.669),
    ] {
        assert!(
            rel(got, want) < 0.02,
            "Pareto/NBD {name}: {got} vs published {want}"
        );
    }
    // Published to one decimal; 2% is the issue's bound, the fit is within 0.05.
    assert!(
        (f.log_likelihood - -9595.0).abs() < 0.05,
        "LL {}",
        f.log_likelihood
    );
    // At least as good as lifetimes' own (Nelder-Mead, tol 1e-4) fit.
    assert!(f.log_likelihood >= num(&v["fitted"]["total_ll"]) - 1e-6);
    let se = f.std_errors.expect("standard errors");
    assert!(se.r > 0.0 && se.alpha > 0.0 && se.a > 0.0 && se.b > 0.0);
    eprintln!(
        "CDNOW Pareto/NBD fit: {p:?} LL {} iters {} SE {se:?}; lifetimes {}",
        f.log_likelihood, f.iterations, v["fitted"]
    );
}

/// Writes the simulated summaries of `benches/clv_side_by_side.sh` (release mode):
/// `CLV_SIM_DIR=/dir cargo test --release --lib -- --ignored write_side_by_side_csvs`.
/// Times at whole days in weeks (as the warehouse computes them from dates): BG/NBD with the
/// CDNOW estimates at 1,000,000 customers (`bgnbd_1m.csv`) and Pareto/NBD with the published
/// CDNOW estimates at 100,000 and 1,000,000 (`pnbd_100k.csv`, `pnbd_1m.csv`), each with
/// Gamma-Gamma spend, ages uniform over three years.
#[test]
#[ignore]
fn write_side_by_side_csvs() {
    use super::sim::simulate_pnbd;
    use std::io::Write;
    let dir = std::env::var("CLV_SIM_DIR").expect("CLV_SIM_DIR");
    let pn = super::pnbd::PnbdView {
        r: 0.553,
        alpha: 10.578,
        s: 0.606,
        beta: 11.669,
    }
    .params();
    let sets: [(&str, Vec<Rfm>); 3] = [
        ("bgnbd_1m.csv", simulate_bgnbd(1_000_000, &TRUTH, 156.0, 7)),
        ("pnbd_100k.csv", simulate_pnbd(100_000, &pn, 156.0, 8)),
        ("pnbd_1m.csv", simulate_pnbd(1_000_000, &pn, 156.0, 9)),
    ];
    for (i, (name, sim)) in sets.into_iter().enumerate() {
        let sim = to_day_resolution(&sim, 7.0);
        let m = simulate_spend(&sim, &GG_TRUTH, 100 + i as u64);
        let mut out = String::from("frequency,recency,T,monetary_value\n");
        for (c, mv) in sim.iter().zip(&m) {
            out.push_str(&format!("{},{:?},{:?},{:?}\n", c.x, c.t_x, c.t, mv));
        }
        let path = format!("{dir}/{name}");
        let mut f = std::fs::File::create(&path).expect("create csv");
        f.write_all(out.as_bytes()).expect("write csv");
        eprintln!(
            "wrote {path}: {} customers, {} distinct rows",
            sim.len(),
            summarize(&sim).rows.len()
        );
    }
}
