//! The strategy per target segment: the marketing mix, the action and the rule that chose it,
//! with the segment's value against its scheme's base.

use super::{Section, col_f, col_i, col_s, missing, scheme_order};
use crate::report::format::{money, number};
use crate::report::load::Tables;
use crate::report::table::{Cell, Table};

/// Builds the section.
pub fn section(t: &Tables) -> Section {
    let mut s = Section::new("h-strategy", "Strategy per target segment");
    let Some(f) = t.positioning.as_ref().filter(|f| f.has("is_target")) else {
        s.html.push_str(&missing("Target selection"));
        return s;
    };
    let n = f.len();
    let target = f.bool("is_target").unwrap_or_default();
    let rank = col_i(f, "target_rank", n);
    let scheme = col_s(f, "scheme", n);
    let mut groups = std::collections::BTreeMap::<String, Vec<usize>>::new();
    for i in (0..n).filter(|&i| target[i] == Some(true)) {
        groups
            .entry(scheme[i].clone().unwrap_or_default())
            .or_default()
            .push(i);
    }
    if groups.is_empty() {
        s.html
            .push_str("<p>No segment was chosen as a target this period.</p>\n");
        return s;
    }
    s.html.push_str("<p class=\"note\">Targets are the most attractive segments of each scheme (docs/segments.md: value and margin weigh most; a segment below its scheme's base on both ranks after the others). The rule is the first of the rulebook that matched the segment's name or profile.</p>\n");
    let seg = col_s(f, "segment", n);
    let customers = col_i(f, "customers", n);
    let attr = col_f(f, "attractiveness", n);
    let cols = [
        "product_strategy",
        "price_strategy",
        "channel_strategy",
        "promotion_strategy",
        "action",
        "strategy_rule",
    ];
    let texts: Vec<Vec<Option<String>>> = cols.iter().map(|c| col_s(f, c, n)).collect();
    // average CLV of the segment, from segment_summary
    let clv_of = |sc: &str, sg: &str| -> Option<f64> {
        let sum = t.summary.as_ref()?;
        let m = sum.len();
        let (a, b, c) = (
            col_s(sum, "scheme", m),
            col_s(sum, "segment", m),
            col_f(sum, "avg_clv", m),
        );
        (0..m)
            .find(|&i| a[i].as_deref() == Some(sc) && b[i].as_deref() == Some(sg))
            .and_then(|i| c[i])
    };
    let cur = t.currency();
    let mut table = Table::new("strategy", "Strategy per target segment")
        .class("strategy")
        .col("scheme")
        .num("rank")
        .col("segment")
        .num("customers")
        .num(&match cur {
            Some(c) => format!("average CLV ({c})"),
            None => "average CLV".into(),
        })
        .num("attractiveness")
        .col("product")
        .col("price")
        .col("channel")
        .col("promotion")
        .col("action")
        .col("rule");
    for (sc, mut rows) in scheme_order(t, groups) {
        rows.sort_by_key(|&i| (rank[i].unwrap_or(i64::MAX), i));
        for i in rows {
            let name = seg[i].clone().unwrap_or_default();
            let clv = clv_of(&sc, &name);
            let mut cells = vec![
                Cell::text(&sc),
                Cell::int(rank[i]),
                Cell::text(&name),
                Cell::int(customers[i]),
                Cell::num(clv.map(|v| money(v, None)).unwrap_or_default(), clv),
                Cell::num(attr[i].map(|v| number(v, 2)).unwrap_or_default(), attr[i]),
            ];
            for (k, col) in texts.iter().enumerate() {
                let v = col[i].as_deref().unwrap_or("\u{2013}");
                let cell = Cell::text(v);
                cells.push(if k == 4 { cell.class("action") } else { cell });
            }
            table.row(cells);
        }
    }
    s.html.push_str(&table.html());
    s
}
