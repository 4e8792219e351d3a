//! Segment sizes and value shares: which schemes were computed (the registry's, and any other
//! segment_summary holds, by name), then per scheme the paired bars and the figures, with the
//! change against the previous period.

use std::fmt::Write;

use super::{Section, anchor, by_scheme, col_f, col_i, col_s, missing, scheme_order};
use crate::report::format::{amount, esc, percent, signed};
use crate::report::load::Tables;
use crate::report::svg;
use crate::report::table::{Cell, Table};

/// Builds the section.
pub fn section(t: &Tables) -> Section {
    let mut s = Section::new("h-segments", "Segment sizes and value shares");
    let mut schemes = Table::new("schemes", "Schemes computed this period")
        .col("scheme")
        .col("name")
        .col("column")
        .num("segments")
        .col("largest segment");
    for sc in &t.schemes {
        let (segments, largest) = match &sc.counts {
            Some(c) => {
                let total: i64 = c.iter().map(|(_, n)| n).sum();
                (
                    Cell::int(Some(c.len() as i64)),
                    Cell::text(
                        &c.first()
                            .map(|(s, n)| {
                                format!("{s} ({})", percent(*n as f64 / total.max(1) as f64))
                            })
                            .unwrap_or_default(),
                    ),
                )
            }
            None => (Cell::text(""), Cell::text("not computed for this period")),
        };
        schemes.row(vec![
            Cell::text(&sc.title),
            Cell::text(&sc.name),
            Cell::text(
                sc.column
                    .as_deref()
                    .unwrap_or("(not in the scheme registry)"),
            ),
            segments,
            largest,
        ]);
    }
    s.html.push_str(&schemes.html());
    let Some(f) = &t.summary else {
        s.html.push_str(&missing("The segment summary"));
        return s;
    };
    let n = f.len();
    let seg = col_s(f, "segment", n);
    let customers = col_i(f, "customers", n);
    let previous = col_i(f, "previous_customers", n);
    let (cs, rs, clv, ret, resp, growth, stab, dclv) = (
        col_f(f, "customer_share", n),
        col_f(f, "revenue_share", n),
        col_f(f, "avg_clv", n),
        col_f(f, "retention_rate", n),
        col_f(f, "response_rate", n),
        col_f(f, "growth_vs_previous", n),
        col_f(f, "stability", n),
        col_f(f, "clv_change", n),
    );
    let cur = t.currency();
    let unit = |s: &str| match cur {
        Some(c) => format!("{s} ({c})"),
        None => s.to_string(),
    };
    for (scheme, mut rows) in scheme_order(t, by_scheme(f)) {
        rows.sort_by(|&a, &b| {
            customers[b]
                .unwrap_or(0)
                .cmp(&customers[a].unwrap_or(0))
                .then(seg[a].cmp(&seg[b]))
        });
        let title = t.scheme_title(&scheme);
        s.sub(anchor("seg", &scheme), format!("{title} ({scheme})"));
        let bars: Vec<svg::BarRow> = rows
            .iter()
            .map(|&i| svg::BarRow {
                label: seg[i].clone().unwrap_or_default(),
                customers: customers[i].unwrap_or(0),
                customer_share: cs[i].unwrap_or(0.0),
                value_share: rs[i].unwrap_or(0.0),
            })
            .collect();
        s.html.push_str(&svg::share_bars(
            &format!("Segment sizes and revenue shares of scheme {scheme}"),
            &bars,
        ));
        let mut table = Table::new(
            &format!("segments_{scheme}"),
            &format!("Segments of scheme {scheme}"),
        )
        .col("segment")
        .num("customers")
        .num("previous period")
        .num("growth")
        .num("share")
        .num("revenue share")
        .num(&unit("average CLV"))
        .num(&unit("CLV change"))
        .num("stayed")
        .num("retention")
        .num("campaign response");
        let pct = |v: Option<f64>| Cell::num(v.map(percent).unwrap_or_default(), v);
        for &i in &rows {
            table.row(vec![
                Cell::text(seg[i].as_deref().unwrap_or("")),
                Cell::int(customers[i]),
                Cell::int(previous[i]),
                Cell::num(
                    growth[i]
                        .map(|g| format!("{}%", signed(g * 100.0, 1)))
                        .unwrap_or_default(),
                    growth[i],
                ),
                pct(cs[i]),
                pct(rs[i]),
                Cell::num(clv[i].map(amount).unwrap_or_default(), clv[i]),
                Cell::num(dclv[i].map(|v| signed(v, 2)).unwrap_or_default(), dclv[i]),
                pct(stab[i]),
                pct(ret[i]),
                pct(resp[i]),
            ]);
        }
        let _ = writeln!(
            s.html,
            "\n<details><summary>Figures of {}</summary>{}</details>",
            esc(&scheme),
            table.html()
        );
    }
    s
}
