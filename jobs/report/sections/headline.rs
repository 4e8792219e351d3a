//! Headline figures, each with its change against the previous published period (named, and
//! linked when its report is written).

use std::fmt::Write;

use super::Section;
use crate::report::format::{count, esc, money, percent, points, relative, signed};
use crate::report::load::{Figures, Tables};

fn card(o: &mut String, id: &str, label: &str, value: &str, sub: &str, change: Option<String>) {
    let _ = write!(
        o,
        "<div class=\"card\"><div class=\"label\">{}</div><div class=\"value\" id=\"{id}\">{value}</div>",
        esc(label)
    );
    if let Some(c) = change {
        let _ = write!(o, "<div class=\"change\" id=\"{id}-change\">{c}</div>");
    }
    let _ = writeln!(o, "<div class=\"sub\">{}</div></div>", esc(sub));
}

/// "+120 (+3.4%) vs 2024-11" for counts and amounts.
fn change_of(now: Option<f64>, before: Option<f64>, decimals: usize, vs: &str) -> Option<String> {
    let (n, b) = (now?, before?);
    Some(format!(
        "{} ({}) vs {vs}",
        esc(&signed(n - b, decimals)),
        esc(&relative(n, b))
    ))
}

/// "+1.2 pp vs 2024-11" for shares.
fn change_of_share(now: Option<f64>, before: Option<f64>, vs: &str) -> Option<String> {
    Some(format!("{} vs {vs}", esc(&points(now? - before?))))
}

/// Builds the section.
pub fn section(t: &Tables) -> Section {
    let mut s = Section::new("h-headline", "Headline figures");
    let o = &mut s.html;
    let empty = Figures::default();
    let now = t.now().unwrap_or(&empty);
    let before = t.before();
    let vs = match &t.previous {
        Some(p) => match &p.href {
            Some(h) => format!(
                "<a href=\"{}\" id=\"previous-period\">{}</a>",
                esc(h),
                esc(&p.period)
            ),
            None => format!("<span id=\"previous-period\">{}</span>", esc(&p.period)),
        },
        None => String::new(),
    };
    match (&t.previous, before) {
        (Some(p), _) => {
            let _ = writeln!(
                o,
                "<p class=\"note\">Changes are against the previous published period, {vs}{}.</p>",
                if p.href.is_none() {
                    " (its report is not written: <code>crm-pipeline report --period ...</code>)"
                } else {
                    ""
                }
            );
        }
        (None, _) => o.push_str(
            "<p class=\"note\">No earlier period is published, so there is no change to show.</p>\n",
        ),
    }
    let b = |f: fn(&Figures) -> Option<f64>| before.and_then(f);
    o.push_str("<div class=\"cards\">\n");
    let cur = t.currency();
    let customers = now.customers.map(|c| c as f64);
    card(
        o,
        "headline-customers",
        "Customers",
        &now.customers.map(count).unwrap_or("n/a".into()),
        "with a profile as of the period end",
        change_of(customers, b(|f| f.customers.map(|c| c as f64)), 0, &vs),
    );
    card(
        o,
        "headline-revenue",
        "Revenue in the period",
        &now.revenue.map(|r| money(r, cur)).unwrap_or("n/a".into()),
        &now.revenue_to_date
            .map(|h| format!("{} to date", money(h, cur)))
            .unwrap_or_else(|| "not computed".into()),
        change_of(now.revenue, b(|f| f.revenue), 2, &vs),
    );
    card(
        o,
        "headline-active",
        "Active share",
        &now.active_share().map(percent).unwrap_or("n/a".into()),
        &now.active
            .map(|a| format!("{} customers bought in the period", count(a)))
            .unwrap_or_else(|| "not computed".into()),
        change_of_share(now.active_share(), b(Figures::active_share), &vs),
    );
    card(
        o,
        "headline-avg-clv",
        "Average CLV",
        &now.avg_clv.map(|v| money(v, cur)).unwrap_or("n/a".into()),
        &now.clv_horizon
            .map(|h| format!("discounted, next {} days", count(h)))
            .unwrap_or_default(),
        change_of(now.avg_clv, b(|f| f.avg_clv), 2, &vs),
    );
    if let Some(share) = now.top20 {
        card(
            o,
            "headline-top20",
            "Top 20% of customers",
            &percent(share),
            "of revenue to date",
            change_of_share(Some(share), b(|f| f.top20), &vs),
        );
    }
    match &t.record {
        Some(r) => {
            let (read, q) = (now.rows_read.unwrap_or(0), now.quarantined.unwrap_or(0));
            let n = |s: &str| r.checks.iter().filter(|c| c.status == s).count();
            card(
                o,
                "headline-quality",
                "Rows quarantined",
                &count(q as i64),
                &format!(
                    "of {} rows read ({}); checks: {} passed, {} warned, {} failed",
                    count(read as i64),
                    percent(q as f64 / read.max(1) as f64),
                    n("pass"),
                    n("warn"),
                    n("fail")
                ),
                change_of_share(now.quarantine_rate(), b(Figures::quarantine_rate), &vs)
                    .map(|c| format!("quarantine rate {c}")),
            );
        }
        None => card(
            o,
            "headline-quality",
            "Rows quarantined",
            "n/a",
            "the run record was not found",
            None,
        ),
    }
    o.push_str("</div>\n");
    s
}
