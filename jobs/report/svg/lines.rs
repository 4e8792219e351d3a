//! Line charts over periods: one line per series with a marker at every period it has a value
//! for, each line named at its end in the right margin (names pushed apart so they never
//! overlap), colours of the Okabe-Ito palette plus a dash pattern, so no line is told by colour
//! alone.

use std::fmt::Write;

use super::labels::text_width;
use super::{Axis, GRID, INK, tick_step, ticks};
use crate::report::format::esc;

/// Okabe-Ito colours (black last), for lines.
const LINE_COLOURS: [&str; 8] = [
    "#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000",
];
/// Dash patterns, cycled with the colours.
const DASHES: [&str; 3] = ["", "6 3", "2 3"];

/// One line: its name and one value per period (None: no value that period).
#[derive(Debug, Clone)]
pub struct Series {
    /// Name, written at the line's end.
    pub label: String,
    /// One value per period, in the chart's period order.
    pub points: Vec<Option<f64>>,
}

/// A line chart of `series` over `periods`; `width` in pixels.
pub fn line_chart(
    title: &str,
    periods: &[String],
    y_axis: &Axis,
    series: &[Series],
    width: f64,
) -> String {
    let known: Vec<f64> = series
        .iter()
        .flat_map(|s| s.points.iter().flatten().copied())
        .filter(|v| v.is_finite())
        .collect();
    let (lo, hi) = known
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), &v| {
            (l.min(v), h.max(v))
        });
    let (lo, hi) = if known.is_empty() {
        (0.0, 1.0)
    } else if hi > lo {
        let pad = (hi - lo) * 0.1;
        (
            (lo - pad).max(if lo >= 0.0 { 0.0 } else { f64::MIN }),
            hi + pad,
        )
    } else {
        let d = if hi == 0.0 { 1.0 } else { hi.abs() * 0.1 };
        (lo - d, hi + d)
    };
    let step = tick_step(lo, hi, 4);
    let label_w = series
        .iter()
        .map(|s| text_width(&s.label, 11.0, false))
        .fold(0.0f64, f64::max)
        .min(220.0);
    let h = 220.0 + (series.len().saturating_sub(6) as f64) * 14.0;
    let (ml, mt, mb) = (64.0, 16.0, 40.0);
    let mr = if series.len() > 1 {
        label_w + 14.0
    } else {
        16.0
    };
    let (pw, ph) = (width - ml - mr, h - mt - mb);
    let n = periods.len();
    let sx = |i: usize| {
        if n <= 1 {
            ml + pw / 2.0
        } else {
            ml + 10.0 + i as f64 / (n - 1) as f64 * (pw - 20.0)
        }
    };
    let sy = |v: f64| mt + ph - (v - lo) / (hi - lo) * ph;
    let mut o = String::new();
    let _ = write!(
        o,
        r#"<svg class="chart trend" viewBox="0 0 {width} {h}" width="{width}" height="{h}" role="img" aria-label="{t}" xmlns="http://www.w3.org/2000/svg"><title>{t}</title><g class="axes"><g class="axis y">"#,
        t = esc(title)
    );
    for t in ticks(lo, hi, 4) {
        let y = sy(t);
        let _ = write!(
            o,
            r#"<line x1="{ml:.1}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="{GRID}"/><text x="{:.1}" y="{:.1}" text-anchor="end" class="tick">{}</text>"#,
            ml + pw,
            ml - 6.0,
            y + 4.0,
            y_axis.tick(t, step)
        );
    }
    o.push_str(r#"</g><g class="axis x">"#);
    // at most about eight period labels, always the first and the last
    let every = n.div_ceil(8).max(1);
    for (i, p) in periods.iter().enumerate() {
        if i % every == 0 || i + 1 == n {
            let _ = write!(
                o,
                r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" class="tick">{}</text>"#,
                sx(i),
                mt + ph + 16.0,
                esc(p)
            );
        }
    }
    let _ = write!(
        o,
        r#"</g><rect x="{ml:.1}" y="{mt:.1}" width="{pw:.1}" height="{ph:.1}" fill="none" stroke="{INK}"/></g><text transform="translate(14 {:.1}) rotate(-90)" text-anchor="middle" class="axis-title">{}</text>"#,
        mt + ph / 2.0,
        esc(&y_axis.title)
    );
    let mut ends: Vec<(f64, usize)> = Vec::new();
    for (k, s) in series.iter().enumerate() {
        let colour = LINE_COLOURS[k % LINE_COLOURS.len()];
        let dash = DASHES[(k / LINE_COLOURS.len()) % DASHES.len()];
        let pts: Vec<(usize, f64)> = s
            .points
            .iter()
            .enumerate()
            .filter_map(|(i, v)| v.filter(|v| v.is_finite()).map(|v| (i, v)))
            .collect();
        let path: Vec<String> = pts
            .iter()
            .map(|(i, v)| format!("{:.1},{:.1}", sx(*i), sy(*v)))
            .collect();
        let _ = write!(
            o,
            r#"<g class="series" data-series="{}"><polyline class="trend-line" points="{}" fill="none" stroke="{colour}" stroke-width="2"{}/>"#,
            esc(&s.label),
            path.join(" "),
            if dash.is_empty() {
                String::new()
            } else {
                format!(r#" stroke-dasharray="{dash}""#)
            }
        );
        for (i, v) in &pts {
            let _ = write!(
                o,
                r#"<circle class="trend-point" data-period="{}" cx="{:.1}" cy="{:.1}" r="3.5" fill="{colour}"><title>{}, {}: {}</title></circle>"#,
                esc(&periods[*i]),
                sx(*i),
                sy(*v),
                esc(&s.label),
                esc(&periods[*i]),
                y_axis.value(*v, step)
            );
        }
        o.push_str("</g>");
        if let Some((_, v)) = pts.last() {
            ends.push((sy(*v), k));
        }
    }
    // end labels: in value order, at least 13 px apart, inside the plot's height
    if series.len() > 1 {
        ends.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        let gap = 13.0;
        let mut ys: Vec<f64> = Vec::with_capacity(ends.len());
        for (y, _) in &ends {
            let y = y.max(ys.last().map_or(mt + 8.0, |p| p + gap));
            ys.push(y);
        }
        // then pull the ones past the bottom back up, only as far as needed
        let mut limit = mt + ph + 4.0;
        for y in ys.iter_mut().rev() {
            *y = y.min(limit);
            limit = *y - gap;
        }
        for ((_, k), y) in ends.iter().zip(&ys) {
            let _ = write!(
                o,
                r#"<text x="{:.1}" y="{:.1}" class="series-label" fill="{}">{}</text>"#,
                ml + pw + 6.0,
                y + 4.0,
                LINE_COLOURS[k % LINE_COLOURS.len()],
                esc(&series[*k].label)
            );
        }
    }
    o.push_str("</svg>");
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_period_with_a_value_has_a_marker() {
        let periods: Vec<String> = ["2024-10", "2024-11", "2024-12"].map(String::from).to_vec();
        let svg = line_chart(
            "t",
            &periods,
            &Axis::plain("customers"),
            &[
                Series {
                    label: "a".into(),
                    points: vec![Some(1.0), Some(2.0), Some(3.0)],
                },
                Series {
                    label: "b".into(),
                    points: vec![None, Some(2.0), Some(2.5)],
                },
            ],
            480.0,
        );
        assert_eq!(svg.matches("class=\"trend-point\"").count(), 5);
        assert_eq!(svg.matches("class=\"series-label\"").count(), 2);
        assert!(svg.contains("data-period=\"2024-12\""));
    }
}
