//! The positioning map per scheme: a bubble per segment (area = customers), targets
//! highlighted and labelled with their rank, axis titles in words with units, every segment
//! without a position named, and the positions as a table with a CSV download.

use std::fmt::Write;

use super::{Section, anchor, by_scheme, col_f, col_i, col_s, missing, scheme_order};
use crate::report::format::{count, esc, is_share, metric_title, number, percent};
use crate::report::load::Tables;
use crate::report::svg::{self, Axis};
use crate::report::table::{Cell, Table};

/// Builds the section.
pub fn section(t: &Tables) -> Section {
    let mut s = Section::new("h-positioning", "Positioning map");
    let Some(f) = t
        .positioning
        .as_ref()
        .filter(|f| f.has("x_value") && f.has("y_value") && f.has("segment"))
    else {
        s.html.push_str(&missing("Positioning"));
        return s;
    };
    s.html.push_str("<p class=\"note\">One bubble per segment; its area is the number of customers. Target segments are filled dark orange with a heavy outline and labelled with their rank. The horizontal axis is, per scheme, the measure that spreads its segments most (<code>x_axis: auto</code>).</p>\n");
    let n = f.len();
    let (seg, xa, ya) = (
        col_s(f, "segment", n),
        col_s(f, "x_axis", n),
        col_s(f, "y_axis", n),
    );
    let (x, y, size) = (
        col_f(f, "x_value", n),
        col_f(f, "y_value", n),
        col_f(f, "customers", n),
    );
    let target = f.bool("is_target").unwrap_or_else(|| vec![None; n]);
    let rank = col_i(f, "target_rank", n);
    let cur = t.currency();
    for (scheme, rows) in scheme_order(t, by_scheme(f)) {
        let first = rows[0];
        let x_axis = xa[first].clone().unwrap_or_else(|| "x".into());
        let y_axis = ya[first].clone().unwrap_or_else(|| "y".into());
        let title = t.scheme_title(&scheme);
        s.sub(anchor("pos", &scheme), format!("{title} ({scheme})"));
        let mut drawn = Vec::new();
        let mut undrawn = Vec::new();
        for &i in &rows {
            let name = seg[i].clone().unwrap_or_default();
            match (
                x[i].filter(|v| v.is_finite()),
                y[i].filter(|v| v.is_finite()),
            ) {
                (Some(xv), Some(yv)) => drawn.push(svg::Bubble {
                    label: name,
                    x: xv,
                    y: yv,
                    size: size[i].unwrap_or(0.0),
                    target_rank: rank[i],
                    is_target: target[i].unwrap_or(false),
                }),
                _ => undrawn.push((name, size[i].unwrap_or(0.0), x[i].is_none())),
            }
        }
        if drawn.is_empty() {
            s.html.push_str(&missing("Positions for this scheme"));
            continue;
        }
        let (xt, yt) = (metric_title(&x_axis, cur), metric_title(&y_axis, cur));
        let map = svg::bubble_map(
            &format!("Positioning map of scheme {scheme}: {yt} by {xt}"),
            &Axis::metric(&x_axis, cur),
            &Axis::metric(&y_axis, cur),
            &drawn,
        );
        s.html.push_str(&map.svg);
        s.html.push('\n');
        if !map.numbered.is_empty() {
            s.html.push_str("<p class=\"note\">Labels that would overlap are numbered on the map:</p><ol class=\"bubble-legend\">");
            for (k, label) in &map.numbered {
                let _ = write!(s.html, "<li value=\"{k}\">{}</li>", esc(label));
            }
            s.html.push_str("</ol>\n");
        }
        if !undrawn.is_empty() {
            let names: Vec<String> = undrawn
                .iter()
                .map(|(name, c, no_x)| {
                    format!(
                        "{} ({} customers; no {})",
                        esc(name),
                        count(*c as i64),
                        esc(&if *no_x { xt.clone() } else { yt.clone() })
                    )
                })
                .collect();
            let _ = writeln!(
                s.html,
                "<p class=\"note undrawn\">Not drawn, without a position: {}.</p>",
                names.join("; ")
            );
        }
        let shown = |v: Option<f64>, col: &str| match v {
            Some(v) if is_share(col) => percent(v),
            Some(v) => number(v, 3),
            None => String::new(),
        };
        let mut table = Table::new(
            &format!("positions_{scheme}"),
            &format!("Positions of scheme {scheme}"),
        )
        .col("segment")
        .num("customers")
        .num(&xt)
        .num(&yt)
        .col("target");
        for &i in &rows {
            table.row(vec![
                Cell::text(seg[i].as_deref().unwrap_or("")),
                Cell::int(size[i].map(|v| v as i64)),
                Cell::num(shown(x[i], &x_axis), x[i]),
                Cell::num(shown(y[i], &y_axis), y[i]),
                Cell::text(&match rank[i] {
                    Some(r) if target[i] == Some(true) => format!("#{r}"),
                    _ => String::new(),
                }),
            ]);
        }
        let _ = writeln!(
            s.html,
            "<details><summary>Positions</summary>{}</details>",
            table.html()
        );
    }
    s
}
