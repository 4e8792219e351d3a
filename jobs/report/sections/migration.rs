//! Migration since the previous period: per scheme a matrix of shares (rows: the previous
//! segment, columns: this one), darker for larger shares, stayed cells outlined.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::{Section, anchor, by_scheme, col_f, col_i, col_s, missing, scheme_order};
use crate::report::format::{count, esc, percent};
use crate::report::load::Tables;
use crate::report::table::{Cell, Table};

/// Background of a heat cell: white to Okabe-Ito blue by `share`, with black or white text,
/// whichever contrasts more (WCAG relative luminance; at least 4.5:1 along this ramp).
pub fn heat(share: f64) -> (String, &'static str) {
    let s = share.clamp(0.0, 1.0);
    let mix = |a: f64, b: f64| (a + (b - a) * s).round() as u8;
    let (r, g, b) = (mix(255.0, 0.0), mix(255.0, 114.0), mix(255.0, 178.0));
    let lin = |c: u8| {
        let c = c as f64 / 255.0;
        if c <= 0.04045 {
            c / 12.92
        } else {
            ((c + 0.055) / 1.055).powf(2.4)
        }
    };
    let l = 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b);
    let (on_white, on_black) = (1.05 / (l + 0.05), (l + 0.05) / 0.05);
    (
        format!("#{r:02x}{g:02x}{b:02x}"),
        if on_white > on_black {
            "#ffffff"
        } else {
            "#000000"
        },
    )
}

/// Builds the section.
pub fn section(t: &Tables) -> Section {
    let mut s = Section::new("h-migration", "Migration since the previous period");
    let Some(f) = t
        .migration
        .as_ref()
        .filter(|f| f.has("from_segment") && f.has("to_segment") && !f.is_empty())
    else {
        s.html.push_str(&missing("Segment migration"));
        return s;
    };
    s.html.push_str("<p class=\"note\">Rows: segment in the previous period; columns: segment in this one. Each cell: share of the row's customers (and their number); the darker, the larger. Outlined cells are customers who stayed. The CSV holds the counts.</p>\n");
    let n = f.len();
    let (from, to) = (col_s(f, "from_segment", n), col_s(f, "to_segment", n));
    let customers = col_i(f, "customers", n);
    let share = col_f(f, "share_of_from", n);
    let stayed = f.bool("stayed").unwrap_or_else(|| vec![None; n]);
    for (scheme, rows) in scheme_order(t, by_scheme(f)) {
        let mut froms: Vec<String> = rows.iter().filter_map(|&i| from[i].clone()).collect();
        let mut tos: Vec<String> = rows.iter().filter_map(|&i| to[i].clone()).collect();
        froms.sort();
        froms.dedup();
        tos.sort();
        tos.dedup();
        let cell: BTreeMap<(&str, &str), usize> = rows
            .iter()
            .filter_map(|&i| Some(((from[i].as_deref()?, to[i].as_deref()?), i)))
            .collect();
        let total: i64 = rows.iter().map(|&i| customers[i].unwrap_or(0)).sum();
        let kept: i64 = rows
            .iter()
            .filter(|&&i| stayed[i].unwrap_or(from[i] == to[i]))
            .map(|&i| customers[i].unwrap_or(0))
            .sum();
        let title = t.scheme_title(&scheme);
        s.sub(anchor("mig", &scheme), format!("{title} ({scheme})"));
        let _ = writeln!(
            s.html,
            "<p>{} of {} customers ({}) stayed in their segment.</p>",
            count(kept),
            count(total),
            percent(kept as f64 / total.max(1) as f64)
        );
        let mut table = Table::new(
            &format!("migration_{scheme}"),
            &format!("Migration matrix of scheme {scheme}"),
        )
        .class("heat")
        .col("from \\ to");
        for c in &tos {
            table = table.num(c);
        }
        for r in &froms {
            let mut cells = vec![Cell::text(r).header()];
            for c in &tos {
                cells.push(match cell.get(&(r.as_str(), c.as_str())) {
                    Some(&i) => {
                        let sh = share[i].unwrap_or(0.0);
                        let (bg, fg) = heat(sh);
                        let st = stayed[i].unwrap_or(r == c);
                        let k = customers[i].unwrap_or(0);
                        Cell::html(
                            format!("{}<small>{}</small>", esc(&percent(sh)), count(k)),
                            &k.to_string(),
                        )
                        .class(if st { "cell stayed" } else { "cell" })
                        .style(format!("background:{bg};color:{fg}"))
                    }
                    None => Cell::html("\u{2013}".into(), "0").class("cell"),
                });
            }
            table.row(cells);
        }
        s.html.push_str(&table.html());
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heat_cells_keep_text_readable() {
        assert_eq!(heat(0.0), ("#ffffff".to_string(), "#000000"));
        assert_eq!(heat(1.0), ("#0072b2".to_string(), "#ffffff"));
        let lum = |h: &str| {
            let c = |i: usize| {
                let v = u8::from_str_radix(&h[i..i + 2], 16).unwrap() as f64 / 255.0;
                if v <= 0.04045 {
                    v / 12.92
                } else {
                    ((v + 0.055) / 1.055).powf(2.4)
                }
            };
            0.2126 * c(1) + 0.7152 * c(3) + 0.0722 * c(5)
        };
        for i in 0..=100 {
            let (bg, fg) = heat(i as f64 / 100.0);
            let (a, b) = (lum(&bg), lum(fg));
            let ratio = (a.max(b) + 0.05) / (a.min(b) + 0.05);
            assert!(ratio >= 4.5, "{bg} on {fg}: {ratio}");
        }
    }
}
