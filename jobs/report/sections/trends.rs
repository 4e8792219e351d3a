//! Trends over the last published periods (`report.trend_periods`): customers, revenue,
//! average CLV, active share and quarantine rate, then per scheme the segments' shares of
//! customers and of revenue. Each chart has its figures as a table with a CSV download.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::{Section, anchor, col_f, col_s, scheme_order};
use crate::report::format::{amount, esc, is_share, percent};
use crate::report::load::{Figures, Tables};
use crate::report::svg::Axis;
use crate::report::svg::lines::{Series, line_chart};
use crate::report::table::{Cell, Table};

/// A segment's (customer share, revenue share, customers) in one period.
type Point = (Option<f64>, Option<f64>, Option<i64>);

fn figure(o: &mut String, caption: &str, svg: &str) {
    let _ = writeln!(
        o,
        "<figure><figcaption>{}</figcaption>{svg}</figure>",
        esc(caption)
    );
}

/// Builds the section.
pub fn section(t: &Tables) -> Section {
    let mut s = Section::new("h-trends", "Trends");
    let periods: Vec<String> = t.history.iter().map(|f| f.period.clone()).collect();
    if periods.len() < 2 {
        s.html.push_str(&format!(
            "<p class=\"note\">Trends need two published periods; this warehouse has {} up to {}.</p>\n",
            periods.len(),
            esc(&t.period)
        ));
        return s;
    }
    let cur = t.currency();
    let _ = writeln!(
        s.html,
        "<p class=\"note\">The last {} published periods, {} to {} (at most <code>report.trend_periods</code> = {}). One point per period.</p>",
        periods.len(),
        esc(&periods[0]),
        esc(&periods[periods.len() - 1]),
        t.cfg.trend_periods
    );
    type Get = fn(&Figures) -> Option<f64>;
    let with_unit = |s: &str| match cur {
        Some(c) => format!("{s} ({c})"),
        None => s.to_string(),
    };
    let headline: Vec<(&str, String, Get, bool)> = vec![
        (
            "customers",
            "customers".into(),
            |f| f.customers.map(|c| c as f64),
            false,
        ),
        (
            "revenue",
            with_unit("revenue in the period"),
            |f| f.revenue,
            false,
        ),
        (
            "average CLV",
            with_unit("average CLV"),
            |f| f.avg_clv,
            false,
        ),
        (
            "active share",
            "active share (%)".into(),
            Figures::active_share,
            true,
        ),
        (
            "quarantine rate",
            "rows quarantined (%)".into(),
            Figures::quarantine_rate,
            true,
        ),
    ];
    s.html.push_str("<div class=\"trends\">\n");
    for (name, title, get, share) in &headline {
        let series = [Series {
            label: name.to_string(),
            points: t.history.iter().map(get).collect(),
        }];
        let axis = Axis {
            title: title.clone(),
            percent: *share,
        };
        let svg = line_chart(
            &format!("Trend of the {name}"),
            &periods,
            &axis,
            &series,
            360.0,
        );
        figure(
            &mut s.html,
            &format!("{} by period", capitalise(name)),
            &svg,
        );
    }
    s.html.push_str("</div>\n");
    let mut table = Table::new("trend_headline", "Headline figures by period")
        .col("period")
        .num("customers")
        .num(&with_unit("revenue"))
        .num(&with_unit("average CLV"))
        .num("active share")
        .num("quarantine rate");
    for f in &t.history {
        table.row(vec![
            Cell::text(&f.period),
            Cell::int(f.customers),
            Cell::num(f.revenue.map(amount).unwrap_or_default(), f.revenue),
            Cell::num(f.avg_clv.map(amount).unwrap_or_default(), f.avg_clv),
            Cell::num(
                f.active_share().map(percent).unwrap_or_default(),
                f.active_share(),
            ),
            Cell::num(
                f.quarantine_rate().map(percent).unwrap_or_default(),
                f.quarantine_rate(),
            ),
        ]);
    }
    let _ = writeln!(
        s.html,
        "<details><summary>Figures</summary>{}</details>",
        table.html()
    );
    // segments per scheme: share of customers and of revenue, one line per segment
    let mut shares: BTreeMap<String, BTreeMap<String, Vec<Point>>> = BTreeMap::new();
    for (k, f) in t.history.iter().enumerate() {
        let Some(seg) = &f.segments else { continue };
        let n = seg.len();
        let (sc, sg) = (col_s(seg, "scheme", n), col_s(seg, "segment", n));
        let (cs, rs) = (
            col_f(seg, "customer_share", n),
            col_f(seg, "revenue_share", n),
        );
        let customers = seg.i64("customers").unwrap_or_else(|| vec![None; n]);
        for i in 0..n {
            let line = shares
                .entry(sc[i].clone().unwrap_or_default())
                .or_default()
                .entry(sg[i].clone().unwrap_or_default())
                .or_insert_with(|| vec![(None, None, None); t.history.len()]);
            line[k] = (cs[i], rs[i], customers[i]);
        }
    }
    let groups: BTreeMap<String, Vec<usize>> =
        shares.keys().map(|k| (k.clone(), Vec::new())).collect();
    for (scheme, _) in scheme_order(t, groups) {
        let lines = &shares[&scheme];
        let title = t.scheme_title(&scheme);
        s.sub(
            anchor("trend", &scheme),
            format!("Segments of {title} ({scheme})"),
        );
        // a segment absent in a period had no customers then: its share is 0
        let present = |k: usize| t.history[k].segments.is_some();
        let series = |pick: fn(&Point) -> Option<f64>| {
            lines
                .iter()
                .map(|(seg, v)| Series {
                    label: seg.clone(),
                    points: v
                        .iter()
                        .enumerate()
                        .map(|(k, x)| pick(x).or(present(k).then_some(0.0)))
                        .collect(),
                })
                .collect::<Vec<_>>()
        };
        s.html.push_str("<div class=\"trends\">\n");
        for (what, pick, column) in [
            (
                "customers",
                (|x: &Point| x.0) as fn(&_) -> _,
                "customer_share",
            ),
            ("revenue", |x: &Point| x.1, "revenue_share"),
        ] {
            let axis = Axis {
                title: format!("share of {what} (%)"),
                percent: is_share(column),
            };
            let svg = line_chart(
                &format!("Share of {what} by segment of scheme {scheme}, by period"),
                &periods,
                &axis,
                &series(pick),
                520.0,
            );
            figure(&mut s.html, &format!("Share of {what}"), &svg);
        }
        s.html.push_str("</div>\n");
        let mut table = Table::new(
            &format!("trend_{scheme}"),
            &format!("Segments of scheme {scheme} by period"),
        )
        .col("period")
        .col("segment")
        .num("customers")
        .num("share of customers")
        .num("share of revenue");
        for (seg, v) in lines {
            for (k, (c, r, n)) in v.iter().enumerate() {
                if n.is_some() {
                    table.row(vec![
                        Cell::text(&periods[k]),
                        Cell::text(seg),
                        Cell::int(*n),
                        Cell::num(c.map(percent).unwrap_or_default(), *c),
                        Cell::num(r.map(percent).unwrap_or_default(), *r),
                    ]);
                }
            }
        }
        let _ = writeln!(
            s.html,
            "<details><summary>Figures</summary>{}</details>",
            table.html()
        );
    }
    s
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}
