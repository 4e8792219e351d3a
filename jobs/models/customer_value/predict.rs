//! The fits and predictions of the CLV model: the transaction model(s) and Gamma-Gamma on the
//! customers with purchases, the choice for `auto`, the per-customer predictions and intervals,
//! and the holdout validation.

use super::{ClvConfig, CustomerSummary, ModelRow, Predictions};
use crate::error::Result;
use crate::models::table::Table;

/// Fits the transaction model(s) and Gamma-Gamma on the customers with purchases, chooses the
/// model for `auto`, and predicts per customer. Predictions are computed once per distinct
/// (x, t_x, T) row (the horizon part once per distinct (x, T)) and scaled by each customer's
/// expected spend: CLV = spend x sum over steps of discounted expected purchases. A model that
/// does not converge leaves every prediction empty (the caller falls back to historical
/// value) and says why.
pub(super) fn predict(
    cfg: &ClvConfig,
    s: &CustomerSummary,
    holdout: Option<&Table>,
) -> Result<(Predictions, Vec<ModelRow>, Vec<String>)> {
    use crate::models::clv::interval::{CustomerRef, IntervalOptions, intervals};
    use crate::models::clv::score::score_rows;
    use crate::models::clv::select::{bic, choose};
    use crate::models::clv::{self, ClvOptions, FitOptions, Rfm};
    let n = s.x.len();
    let idx: Vec<usize> = (0..n)
        .filter(|&i| s.x[i].is_some() && s.t_x[i].is_some() && s.t[i].is_some())
        .collect();
    let rfm: Vec<Rfm> = idx
        .iter()
        .map(|&i| Rfm {
            x: s.x[i].unwrap_or(0.0),
            t_x: s.t_x[i].unwrap_or(0.0),
            t: s.t[i].unwrap_or(0.0),
        })
        .collect();
    let opts = FitOptions {
        penalizer: cfg.penalizer,
        max_iter: cfg.max_iterations,
        min_repeat_customers: cfg.min_repeat_customers,
        ..FitOptions::default()
    };
    let kinds = cfg.model.kinds();
    let summary = clv::summarize(&rfm);
    let fits: Vec<clv::TransactionFit> = kinds
        .iter()
        .map(|&k| clv::fit_transactions(k, &summary.rows, &opts))
        .collect();
    let mut warnings = Vec::new();
    let mut holdouts: Vec<Option<clv::HoldoutMetrics>> = vec![None; kinds.len()];
    if let Some(t) = holdout {
        for (k, h) in kinds.iter().zip(holdouts.iter_mut()) {
            match validate_on_holdout(cfg, t, *k)? {
                Ok(m) => *h = Some(m),
                Err(why) => {
                    warnings.push(format!("{} holdout validation skipped: {why}", k.name()))
                }
            }
        }
    }
    let maes: Vec<Option<f64>> = holdouts
        .iter()
        .map(|h| h.as_ref().map(|h| h.mae).filter(|v| v.is_finite()))
        .collect();
    let chosen = if kinds.len() == 1 {
        fits[0].converged.then_some((0, None))
    } else {
        choose(&fits, holdout.map(|_| maes.as_slice())).map(|(i, c)| (i, Some(c)))
    };
    let xs: Vec<f64> = rfm.iter().map(|c| c.x).collect();
    let ms: Vec<f64> = idx
        .iter()
        .map(|&i| s.monetary[i].unwrap_or(f64::NAN))
        .collect();
    let spend = clv::summarize_spend(&xs, &ms).unwrap_or_default();
    let gfit = clv::fit_gamma_gamma(&spend.rows, &opts);
    let g = gfit.params;
    let mut rows: Vec<ModelRow> = Vec::new();
    for (i, (fit, kind)) in fits.iter().zip(&kinds).enumerate() {
        let p = fit.model.params;
        let names = kind.param_names();
        let vals = [p.r, p.alpha, p.a, p.b];
        let mut reason = fit.reason.clone();
        if let Some((j, Some(c))) = chosen
            && j == i
        {
            reason = Some(format!(
                "selected by {} among {}",
                c.name(),
                kinds
                    .iter()
                    .map(|k| k.name())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        let h = holdouts[i].as_ref();
        rows.push(ModelRow {
            model: kind.name().into(),
            selected: chosen.is_some_and(|(j, _)| j == i),
            bic: bic(fit),
            params: names.iter().copied().zip(vals).collect(),
            std_errors: fit
                .std_errors
                .map(|s| {
                    names
                        .iter()
                        .copied()
                        .zip([s.r, s.alpha, s.a, s.b])
                        .collect()
                })
                .unwrap_or_default(),
            log_likelihood: Some(fit.log_likelihood).filter(|v| v.is_finite()),
            customers_fitted: fit.n_customers as i64,
            converged: fit.converged,
            iterations: fit.iterations as i64,
            reason,
            holdout_mae: h.map(|h| h.mae).filter(|v| v.is_finite()),
            holdout_aggregate_error: h.and_then(|h| h.relative_error),
            holdout_customers: h.map(|h| h.customers as i64),
            holdout_calibration: h.map(calibration_json),
        });
    }
    rows.push(ModelRow {
        model: "gamma_gamma".into(),
        selected: gfit.converged,
        bic: Some(3.0 * gfit.n_customers.ln() - 2.0 * gfit.log_likelihood)
            .filter(|v| gfit.converged && v.is_finite()),
        params: vec![("p", g.p), ("q", g.q), ("gamma", g.v)],
        std_errors: gfit
            .std_errors
            .map(|s| vec![("p", s.p), ("q", s.q), ("gamma", s.v)])
            .unwrap_or_default(),
        log_likelihood: Some(gfit.log_likelihood).filter(|v| v.is_finite()),
        customers_fitted: gfit.n_customers as i64,
        converged: gfit.converged,
        iterations: gfit.iterations as i64,
        reason: gfit.reason.clone(),
        ..Default::default()
    });
    let mut pred = Predictions {
        p_alive: vec![None; n],
        expected_purchases: vec![None; n],
        expected_aov: vec![None; n],
        clv: vec![None; n],
        days_to_next: vec![None; n],
        clv_lo: vec![None; n],
        clv_mid: vec![None; n],
        clv_hi: vec![None; n],
        p_alive_lo: vec![None; n],
        p_alive_hi: vec![None; n],
    };
    let Some((sel, _)) = chosen else {
        let why: Vec<String> = fits
            .iter()
            .zip(&kinds)
            .map(|(f, k)| {
                format!(
                    "{}: {}",
                    k.name(),
                    f.reason.as_deref().unwrap_or("no reason given")
                )
            })
            .collect();
        let what = if kinds.len() == 1 {
            format!("{} did not converge", kinds[0].name())
        } else {
            "no transaction model converged".to_string()
        };
        warnings.push(format!(
            "{what} ({}); CLV falls back to historical value",
            why.join("; ")
        ));
        return Ok((pred, rows, warnings));
    };
    let tfit = &fits[sel];
    let model = tfit.model;
    let unit = cfg.time_unit.days();
    let horizon = cfg.horizon_days as f64 / unit;
    let row_rfm: Vec<Rfm> = summary.rfm_rows();
    let clv_opts = ClvOptions {
        horizon_days: cfg.horizon_days as f64,
        step_days: cfg.step_days as f64,
        annual_discount_rate: cfg.annual_discount_rate,
        days_per_unit: unit,
    };
    let nan = vec![f64::NAN; row_rfm.len()];
    let scores = score_rows(&model, &row_rfm, horizon, &clv_opts).unwrap_or_else(|e| {
        warnings.push(format!("CLV options rejected: {e}"));
        clv::score::RowScores {
            p_alive: nan.clone(),
            expected: nan.clone(),
            dep: nan.clone(),
        }
    });
    if !gfit.converged {
        warnings.push(format!(
            "gamma_gamma did not converge ({}); CLV falls back to historical value",
            gfit.reason.as_deref().unwrap_or("no reason given")
        ));
    }
    // customers with a valid summary row: (position in idx, row)
    let scored: Vec<(usize, usize)> = (0..idx.len())
        .filter_map(|k| summary.row_of_customer.get(k).map(|r| (k, r)))
        .collect();
    let iv = if cfg.interval_draws > 0 && gfit.converged {
        match &tfit.cov_log {
            Some(cov) => {
                let refs: Vec<CustomerRef> = scored
                    .iter()
                    .map(|&(k, r)| CustomerRef { row: r, m: ms[k] })
                    .collect();
                let o = IntervalOptions {
                    level: cfg.interval,
                    method: cfg.interval_method,
                    draws: cfg.interval_draws,
                    seed: cfg.interval_seed,
                };
                match intervals(
                    &model,
                    cov,
                    &g,
                    gfit.cov_log.as_deref(),
                    &row_rfm,
                    &refs,
                    &clv_opts,
                    &o,
                ) {
                    Ok(v) => Some(v),
                    Err(e) => {
                        warnings.push(format!("CLV intervals skipped: {e}"));
                        None
                    }
                }
            }
            None => {
                warnings.push(format!(
                    "CLV intervals skipped: {} standard errors are not available (Hessian not positive definite)",
                    kinds[sel].name()
                ));
                None
            }
        }
    } else {
        None
    };
    let finite = |v: f64| Some(v).filter(|v| v.is_finite());
    for (j, &(k, row)) in scored.iter().enumerate() {
        let i = idx[k];
        let c = rfm[k];
        let alive = scores.p_alive[row];
        pred.p_alive[i] = finite(alive);
        pred.expected_purchases[i] = finite(scores.expected[row]);
        if alive >= cfg.min_p_alive_for_next_purchase {
            pred.days_to_next[i] = finite(model.expected_days_to_next_purchase(c.x, c.t, unit));
        }
        if gfit.converged {
            let m = if c.x > 0.0 { ms[k] } else { 0.0 };
            let aov = g.conditional_expected_spend(c.x, m);
            pred.expected_aov[i] = finite(aov);
            pred.clv[i] = finite(aov * scores.dep[row]);
        }
        if let Some(v) = &iv
            && pred.clv[i].is_some()
        {
            pred.clv_lo[i] = finite(v.clv_lo[j]);
            pred.clv_mid[i] = finite(v.clv_mid[j]);
            pred.clv_hi[i] = finite(v.clv_hi[j]);
            pred.p_alive_lo[i] = finite(v.p_alive_lo[row]);
            pred.p_alive_hi[i] = finite(v.p_alive_hi[row]);
        }
    }
    Ok((pred, rows, warnings))
}

/// Refits the transaction model on the calibration summary and scores the holdout window:
/// per-customer MAE of purchases, aggregate relative error and calibration by frequency.
fn validate_on_holdout(
    cfg: &ClvConfig,
    t: &Table,
    kind: crate::models::clv::TransactionModelKind,
) -> Result<std::result::Result<crate::models::clv::HoldoutMetrics, String>> {
    use crate::models::clv::{self, FitOptions, Rfm};
    let unit = cfg.time_unit.days();
    let (x, tx, age, actual) = (
        t.f64("frequency")?,
        t.f64("recency_days")?,
        t.f64("age_days")?,
        t.f64("holdout_purchases")?,
    );
    // in customer order: the metrics are sums, and the mart's row order is the engine's
    // (parallel), so without an order two runs could differ in the last bits
    let ids = t.strings("customer_id")?;
    let mut order: Vec<usize> = (0..t.len()).collect();
    order.sort_unstable_by(|&a, &b| ids.value(a).cmp(ids.value(b)));
    let rfm: Vec<Rfm> = order
        .iter()
        .map(|&i| Rfm {
            x: x[i].unwrap_or(f64::NAN),
            t_x: tx[i].map(|d| d / unit).unwrap_or(f64::NAN),
            t: age[i].map(|d| d / unit).unwrap_or(f64::NAN),
        })
        .collect();
    if rfm.is_empty() {
        return Ok(Err("no customer bought before the calibration end".into()));
    }
    let opts = FitOptions {
        penalizer: cfg.penalizer,
        max_iter: cfg.max_iterations,
        min_repeat_customers: cfg.min_repeat_customers,
        ..FitOptions::default()
    };
    let summary = clv::summarize(&rfm);
    let fit = clv::fit_transactions(kind, &summary.rows, &opts);
    if !fit.converged {
        return Ok(Err(format!(
            "the calibration fit did not converge ({})",
            fit.reason.as_deref().unwrap_or("no reason given")
        )));
    }
    let window = cfg.holdout_days as f64 / unit;
    let predicted: Vec<f64> = rfm
        .iter()
        .map(|c| fit.model.conditional_expected_purchases(window, c))
        .collect();
    let actual: Vec<f64> = order.iter().map(|&i| actual[i].unwrap_or(0.0)).collect();
    let freq: Vec<f64> = rfm.iter().map(|c| c.x).collect();
    Ok(clv::holdout_metrics(
        &predicted,
        &actual,
        &freq,
        cfg.holdout_top_bucket,
    ))
}

fn calibration_json(h: &crate::models::clv::HoldoutMetrics) -> String {
    let buckets: Vec<serde_json::Value> = h
        .buckets
        .iter()
        .map(|b| {
            serde_json::json!({
                "frequency": if b.open_ended { format!("{}+", b.frequency) } else { b.frequency.to_string() },
                "customers": b.customers,
                "mean_predicted": b.mean_predicted,
                "mean_actual": b.mean_actual,
            })
        })
        .collect();
    serde_json::Value::Array(buckets).to_string()
}
