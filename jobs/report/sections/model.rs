//! The CLV model fit: convergence, parameters with standard errors and, when a holdout is
//! configured (`models.clv.holdout_days`), its accuracy: mean absolute error, aggregate error
//! and predicted against actual purchases by calibration frequency.

use std::fmt::Write;

use super::{Section, missing};
use crate::report::format::{count, esc, number, opt, percent};
use crate::report::load::{CLV_PARAMS, Tables};
use crate::report::table::{Cell, Table};

/// Builds the section.
pub fn section(t: &Tables) -> Section {
    let mut s = Section::new("h-model", "Model fit");
    let Some(f) = t.clv_model.as_ref().filter(|f| !f.is_empty()) else {
        s.html.push_str(&missing("The CLV model"));
        return s;
    };
    let any_holdout = f
        .f64("holdout_mae")
        .is_some_and(|v| v.iter().any(Option::is_some));
    for i in 0..f.len() {
        let model = f.text_at("model", i);
        let converged = f.bool("converged").and_then(|v| v[i]);
        let it = f.i64("iterations").and_then(|v| v[i]);
        let fitted = f.i64("customers_fitted").and_then(|v| v[i]);
        let ll = f.f64("log_likelihood").and_then(|v| v[i]);
        let reason = f.text_at("reason", i);
        let _ = writeln!(s.html, "<h3>{}</h3>", esc(&model));
        let _ = writeln!(
            s.html,
            "<p>{}{}; {} customers fitted; log-likelihood {}; time unit {}.{}</p>",
            match converged {
                Some(true) => "Converged",
                Some(false) => "Did not converge",
                None => "Convergence unknown",
            },
            it.map(|n| format!(" after {} iterations", count(n)))
                .unwrap_or_default(),
            opt(fitted.map(|v| v as f64), |v| number(v, 0)),
            opt(ll, |v| number(v, 2)),
            esc(&f.text_at("time_unit", i)),
            if reason.is_empty() {
                String::new()
            } else {
                format!(" {}", esc(&reason))
            }
        );
        let mut params = Table::new(&format!("clv_parameters_{model}"), "Model parameters")
            .col("parameter")
            .num("estimate")
            .num("standard error");
        for p in CLV_PARAMS {
            if let Some(v) = f.f64(p).and_then(|v| v[i]) {
                let se = f.f64(&format!("{p}_se")).and_then(|v| v[i]);
                params.row(vec![
                    Cell::text(p),
                    Cell::num(number(v, 4), Some(v)),
                    Cell::num(opt(se, |v| number(v, 4)), se),
                ]);
            }
        }
        if !params.is_empty() {
            s.html.push_str(&params.html());
        }
        let mae = f.f64("holdout_mae").and_then(|v| v[i]);
        let agg = f.f64("holdout_aggregate_error").and_then(|v| v[i]);
        let hc = f.i64("holdout_customers").and_then(|v| v[i]);
        if mae.is_none() && agg.is_none() {
            s.html.push_str(if any_holdout {
                "<p>No holdout accuracy for this model (the holdout scores purchases, above).</p>\n"
            } else {
                "<p>No holdout accuracy: set <code>models.clv.holdout_days</code> to refit on the data before a holdout window and score it.</p>\n"
            });
            continue;
        }
        let _ = writeln!(
            s.html,
            "<p class=\"holdout\" id=\"holdout-{i}\">Holdout accuracy ({} customers): mean absolute error <strong>{}</strong> purchases per customer; aggregate error <strong>{}</strong> (predicted minus actual purchases, over actual).</p>",
            opt(hc.map(|v| v as f64), |v| number(v, 0)),
            opt(mae, |v| number(v, 3)),
            opt(agg, percent)
        );
        let cal = f.text_at("holdout_calibration", i);
        if let Ok(serde_json::Value::Array(buckets)) = serde_json::from_str(&cal) {
            let mut table = Table::new(
                &format!("holdout_calibration_{model}"),
                "Holdout calibration",
            )
            .col("purchases before the holdout")
            .num("customers")
            .num("predicted purchases (mean)")
            .num("actual purchases (mean)");
            for b in &buckets {
                let g = |k: &str| b.get(k).and_then(serde_json::Value::as_f64);
                table.row(vec![
                    Cell::text(&match b.get("frequency") {
                        Some(serde_json::Value::String(s)) => s.clone(),
                        Some(v) => v.to_string(),
                        None => String::new(),
                    }),
                    Cell::int(b.get("customers").and_then(serde_json::Value::as_i64)),
                    Cell::num(
                        opt(g("mean_predicted"), |v| number(v, 3)),
                        g("mean_predicted"),
                    ),
                    Cell::num(opt(g("mean_actual"), |v| number(v, 3)), g("mean_actual")),
                ]);
            }
            s.html.push_str(&table.html());
        }
    }
    s
}
