//! Inline SVG charts drawn in Rust: a bubble map, paired horizontal bars, a histogram and line
//! charts ([`lines`]).
//! Colours are the Okabe-Ito colour-blind-safe palette; every mark also carries a text label
//! and a `<title>`, so nothing is told by colour alone. Output depends only on the inputs.

use std::fmt::Write;

pub mod labels;
pub mod lines;

use super::format::{esc, number, percent};

/// Okabe-Ito blue: the main series.
pub const BLUE: &str = "#0072B2";
/// Okabe-Ito vermillion: highlighted (target) marks and the second series.
pub const VERMILLION: &str = "#D55E00";
/// Okabe-Ito sky blue: ordinary marks.
pub const SKY: &str = "#56B4E9";
/// Text and axes.
pub const INK: &str = "#1a1a1a";
/// Grid lines.
pub const GRID: &str = "#d0d0d0";

/// The step of "nice" ticks covering [lo, hi]: 1, 2 or 5 times a power of ten.
pub fn tick_step(lo: f64, hi: f64, target: usize) -> f64 {
    if !lo.is_finite() || !hi.is_finite() || hi <= lo {
        return 1.0;
    }
    let raw = (hi - lo) / target.max(1) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw * (1.0 - 1e-12))
        .unwrap_or(10.0 * mag)
}

/// "Nice" tick values covering [lo, hi]: steps of 1, 2 or 5 times a power of ten.
pub fn ticks(lo: f64, hi: f64, target: usize) -> Vec<f64> {
    if !lo.is_finite() || !hi.is_finite() || hi <= lo {
        return vec![lo];
    }
    let step = tick_step(lo, hi, target);
    let first = (lo / step).ceil() as i64;
    let last = (hi / step).floor() as i64;
    // rounded to the step's decimals, so 3 x 0.2 is 0.6, not 0.6000000000000001
    let scale = 10f64.powi(decimals(step) as i32);
    (first..=last)
        .map(|i| (i as f64 * step * scale).round() / scale)
        .collect()
}

/// The decimals a step of 1, 2 or 5 times a power of ten needs (0.05 -> 2, 20 -> 0).
pub fn decimals(step: f64) -> usize {
    if !step.is_finite() || step <= 0.0 || step >= 1.0 {
        0
    } else {
        (-step.log10() - 1e-9).ceil() as usize
    }
}

/// An axis: its title (in words, with the unit) and whether its values are shares shown as
/// percentages.
#[derive(Debug, Clone)]
pub struct Axis {
    /// Title, e.g. `average CLV per customer (CNY)`.
    pub title: String,
    /// Values are 0-1 shares, labelled as percentages.
    pub percent: bool,
}

impl Axis {
    /// A plain axis.
    pub fn plain(title: &str) -> Self {
        Self {
            title: title.to_string(),
            percent: false,
        }
    }

    /// The axis of a segment_summary column.
    pub fn metric(column: &str, currency: Option<&str>) -> Self {
        Self {
            title: super::format::metric_title(column, currency),
            percent: super::format::is_share(column),
        }
    }

    /// The same axis under another title.
    pub fn retitled(mut self, title: &str) -> Self {
        self.title = title.to_string();
        self
    }

    /// A tick label: as many decimals as `step` needs, so two ticks never read the same.
    pub fn tick(&self, v: f64, step: f64) -> String {
        if self.percent {
            format!("{}%", number(v * 100.0, decimals(step * 100.0)))
        } else {
            number(v, decimals(step))
        }
    }

    /// A value in a tooltip: one decimal more than the ticks.
    pub fn value(&self, v: f64, step: f64) -> String {
        if self.percent {
            format!("{}%", number(v * 100.0, decimals(step * 100.0) + 1))
        } else {
            number(v, decimals(step) + 1)
        }
    }
}

/// Extends [lo, hi] by `pad` of its width on both sides (a unit range when empty).
fn padded(lo: f64, hi: f64, pad: f64) -> (f64, f64) {
    if hi > lo {
        let w = hi - lo;
        (lo - pad * w, hi + pad * w)
    } else {
        (lo - 1.0, hi + 1.0)
    }
}

/// One bubble of a positioning map.
#[derive(Debug, Clone)]
pub struct Bubble {
    /// Segment name (label).
    pub label: String,
    /// Horizontal position.
    pub x: f64,
    /// Vertical position.
    pub y: f64,
    /// Customers (the area).
    pub size: f64,
    /// `Some(rank)` when the segment is a target.
    pub target_rank: Option<i64>,
    /// Whether the segment is a target.
    pub is_target: bool,
}

/// A drawn positioning map: the SVG and the bubbles whose label did not fit, as (number,
/// label) for the legend under the chart.
pub struct Map {
    /// The chart.
    pub svg: String,
    /// Bubbles shown by a number, with their full label.
    pub numbered: Vec<(usize, String)>,
}

/// A positioning map: one bubble per segment at (x, y), area proportional to its customers,
/// target segments filled in vermillion with a heavy outline and "target #n" in their label.
/// Labels are placed so that none overlaps another ([`labels::place`]); one that fits nowhere
/// is shown as a number listed in [`Map::numbered`].
pub fn bubble_map(title: &str, x_axis: &Axis, y_axis: &Axis, bubbles: &[Bubble]) -> Map {
    let (w, h) = (960.0, 500.0);
    let (ml, mr, mt, mb) = (84.0, 24.0, 40.0, 60.0);
    let (pw, ph) = (w - ml - mr, h - mt - mb);
    let xs = bubbles.iter().map(|b| b.x);
    let ys = bubbles.iter().map(|b| b.y);
    let (x0, x1) = padded(
        xs.clone().fold(f64::INFINITY, f64::min),
        xs.fold(f64::NEG_INFINITY, f64::max),
        0.12,
    );
    let (y0, y1) = padded(
        ys.clone().fold(f64::INFINITY, f64::min),
        ys.fold(f64::NEG_INFINITY, f64::max),
        0.15,
    );
    let sx = |v: f64| ml + (v - x0) / (x1 - x0) * pw;
    let sy = |v: f64| mt + ph - (v - y0) / (y1 - y0) * ph;
    let max_size = bubbles.iter().map(|b| b.size).fold(0.0, f64::max);
    let radius = |s: f64| {
        if max_size > 0.0 {
            (s.max(0.0) / max_size).sqrt() * 34.0 + 4.0
        } else {
            6.0
        }
    };
    let mut o = String::new();
    let _ = write!(
        o,
        r#"<svg class="chart map" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" aria-label="{t}" xmlns="http://www.w3.org/2000/svg"><title>{t}</title>"#,
        t = esc(title)
    );
    let (xstep, ystep) = axes(
        &mut o,
        (x0, x1),
        (y0, y1),
        &sx,
        &sy,
        (ml, mt, pw, ph),
        (x_axis, y_axis),
    );
    let _ = write!(
        o,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" class="axis-title">{}</text>"#,
        ml + pw / 2.0,
        h - 14.0,
        esc(&x_axis.title)
    );
    let _ = write!(
        o,
        r#"<text transform="translate(16 {:.1}) rotate(-90)" text-anchor="middle" class="axis-title">{}</text>"#,
        mt + ph / 2.0,
        esc(&y_axis.title)
    );
    // largest first so small bubbles stay visible on top
    let mut order: Vec<&Bubble> = bubbles.iter().collect();
    order.sort_by(|a, b| b.size.total_cmp(&a.size).then(a.label.cmp(&b.label)));
    for b in &order {
        let (cx, cy, r) = (sx(b.x), sy(b.y), radius(b.size));
        let (fill, stroke, sw) = if b.is_target {
            (VERMILLION, INK, 2.5)
        } else {
            (SKY, BLUE, 1.0)
        };
        let _ = write!(
            o,
            r#"<circle class="bubble{}" data-segment="{}" cx="{cx:.1}" cy="{cy:.1}" r="{r:.1}" fill="{fill}" fill-opacity="0.7" stroke="{stroke}" stroke-width="{sw}"><title>{}: {} customers; {} {}; {} {}{}</title></circle>"#,
            if b.is_target { " target" } else { "" },
            esc(&b.label),
            esc(&b.label),
            number(b.size, 0),
            esc(&x_axis.title),
            x_axis.value(b.x, xstep),
            esc(&y_axis.title),
            y_axis.value(b.y, ystep),
            if b.is_target { ", target segment" } else { "" }
        );
    }
    // labels: targets first (by rank), then by size
    let mut by_importance: Vec<&Bubble> = bubbles.iter().collect();
    by_importance.sort_by(|a, b| {
        b.is_target
            .cmp(&a.is_target)
            .then(
                a.target_rank
                    .unwrap_or(i64::MAX)
                    .cmp(&b.target_rank.unwrap_or(i64::MAX)),
            )
            .then(b.size.total_cmp(&a.size))
            .then(a.label.cmp(&b.label))
    });
    let text_of = |b: &Bubble| match (b.is_target, b.target_rank) {
        (true, Some(n)) => format!("{} (target #{n})", b.label),
        (true, None) => format!("{} (target)", b.label),
        _ => b.label.clone(),
    };
    let plot = labels::Rect {
        x0: ml + 2.0,
        y0: mt + 2.0,
        x1: ml + pw - 2.0,
        y1: mt + ph - 2.0,
    };
    let wanted = |texts: &[String], bs: &[&Bubble]| -> Vec<labels::Wanted> {
        bs.iter()
            .zip(texts)
            .map(|(b, t)| labels::Wanted {
                cx: sx(b.x),
                cy: sy(b.y),
                r: radius(b.size),
                width: labels::text_width(t, 12.0, b.is_target),
            })
            .collect()
    };
    let texts: Vec<String> = by_importance.iter().map(|b| text_of(b)).collect();
    let first = labels::place(&wanted(&texts, &by_importance), 12.0, plot, &[]);
    let kept: Vec<labels::Rect> = first.iter().flatten().map(|p| p.rect).collect();
    // the labels that did not fit become numbers, placed around the ones already kept
    let missing: Vec<usize> = (0..by_importance.len())
        .filter(|&i| first[i].is_none())
        .collect();
    let numbers: Vec<String> = (1..=missing.len()).map(|n| n.to_string()).collect();
    let missing_bubbles: Vec<&Bubble> = missing.iter().map(|&i| by_importance[i]).collect();
    let second = labels::place(&wanted(&numbers, &missing_bubbles), 12.0, plot, &kept);
    let mut numbered = Vec::new();
    let mut label = |p: &labels::Placed, text: &str, b: &Bubble, extra: &str| {
        let _ = write!(
            o,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="{}" class="bubble-label{}{extra}" data-segment="{}">{}</text>"#,
            p.x,
            p.y,
            p.anchor,
            if b.is_target { " strong" } else { "" },
            esc(&b.label),
            esc(text)
        );
    };
    for (i, b) in by_importance.iter().enumerate() {
        if let Some(p) = &first[i] {
            label(p, &texts[i], b, "");
        }
    }
    for (k, &i) in missing.iter().enumerate() {
        let b = by_importance[i];
        if let Some(p) = &second[k] {
            label(p, &numbers[k], b, " number");
        }
        numbered.push((k + 1, texts[i].clone()));
    }
    // legend, above the plot
    let l0 = ml + 8.0;
    let _ = write!(
        o,
        r#"<g class="legend"><circle cx="{l0}" cy="16" r="7" fill="{VERMILLION}" fill-opacity="0.7" stroke="{INK}" stroke-width="2.5"/><text x="{}" y="20">target segment</text><circle cx="{}" cy="16" r="7" fill="{SKY}" fill-opacity="0.7" stroke="{BLUE}"/><text x="{}" y="20">other segment</text><text x="{}" y="20">bubble area = customers</text></g>"#,
        l0 + 12.0,
        l0 + 140.0,
        l0 + 152.0,
        l0 + 280.0,
    );
    o.push_str("</svg>");
    Map { svg: o, numbered }
}

/// Grid lines, tick labels and the frame; returns the x and y tick steps.
pub(crate) fn axes(
    o: &mut String,
    (x0, x1): (f64, f64),
    (y0, y1): (f64, f64),
    sx: &dyn Fn(f64) -> f64,
    sy: &dyn Fn(f64) -> f64,
    (ml, mt, pw, ph): (f64, f64, f64, f64),
    (xa, ya): (&Axis, &Axis),
) -> (f64, f64) {
    let (xstep, ystep) = (tick_step(x0, x1, 6), tick_step(y0, y1, 5));
    o.push_str(r#"<g class="axes"><g class="axis x">"#);
    for t in ticks(x0, x1, 6) {
        let x = sx(t);
        let _ = write!(
            o,
            r#"<line x1="{x:.1}" y1="{mt:.1}" x2="{x:.1}" y2="{:.1}" stroke="{GRID}"/><text x="{x:.1}" y="{:.1}" text-anchor="middle" class="tick">{}</text>"#,
            mt + ph,
            mt + ph + 16.0,
            xa.tick(t, xstep)
        );
    }
    o.push_str(r#"</g><g class="axis y">"#);
    for t in ticks(y0, y1, 5) {
        let y = sy(t);
        let _ = write!(
            o,
            r#"<line x1="{ml:.1}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="{GRID}"/><text x="{:.1}" y="{:.1}" text-anchor="end" class="tick">{}</text>"#,
            ml + pw,
            ml - 6.0,
            y + 4.0,
            ya.tick(t, ystep)
        );
    }
    let _ = write!(
        o,
        r#"</g><rect x="{ml:.1}" y="{mt:.1}" width="{pw:.1}" height="{ph:.1}" fill="none" stroke="{INK}"/></g>"#
    );
    (xstep, ystep)
}

/// One row of a paired bar chart.
#[derive(Debug, Clone)]
pub struct BarRow {
    /// Segment name.
    pub label: String,
    /// Customers in the segment.
    pub customers: i64,
    /// Share of customers (0-1).
    pub customer_share: f64,
    /// Share of revenue (0-1, may be negative for margin-like values).
    pub value_share: f64,
}

/// Segment sizes and value shares: per segment a blue bar (share of customers) and a
/// vermillion bar (share of revenue), each with its number written next to it.
pub fn share_bars(title: &str, rows: &[BarRow]) -> String {
    let (w, label_w, bar_w) = (720.0, 190.0, 360.0);
    let row_h = 34.0;
    let top = 30.0;
    let h = top + row_h * rows.len() as f64 + 10.0;
    let max = rows
        .iter()
        .flat_map(|r| [r.customer_share, r.value_share])
        .fold(0.0f64, f64::max)
        .max(1e-9);
    let mut o = String::new();
    let _ = write!(
        o,
        r#"<svg class="chart" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" aria-label="{t}" xmlns="http://www.w3.org/2000/svg"><title>{t}</title>"#,
        t = esc(title)
    );
    let _ = write!(
        o,
        r#"<g class="legend"><rect x="{label_w}" y="6" width="12" height="12" fill="{BLUE}"/><text x="{}" y="16">share of customers</text><rect x="{}" y="6" width="12" height="12" fill="{VERMILLION}"/><text x="{}" y="16">share of revenue</text></g>"#,
        label_w + 16.0,
        label_w + 170.0,
        label_w + 186.0
    );
    for (i, r) in rows.iter().enumerate() {
        let y = top + i as f64 * row_h;
        let cw = (r.customer_share.max(0.0) / max * bar_w).max(1.0);
        let vw = (r.value_share.max(0.0) / max * bar_w).max(1.0);
        let _ = write!(
            o,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end" class="bar-label">{}</text>"#,
            label_w - 8.0,
            y + 17.0,
            esc(&r.label)
        );
        let _ = write!(
            o,
            r#"<rect class="bar customers" data-segment="{seg}" data-customers="{}" x="{label_w}" y="{:.1}" width="{cw:.1}" height="12" fill="{BLUE}"><title>{seg}: {} customers ({})</title></rect><text x="{:.1}" y="{:.1}" class="bar-value">{} ({})</text>"#,
            r.customers,
            y + 3.0,
            number(r.customers as f64, 0),
            percent(r.customer_share),
            label_w + cw + 5.0,
            y + 13.0,
            number(r.customers as f64, 0),
            percent(r.customer_share),
            seg = esc(&r.label)
        );
        let _ = write!(
            o,
            r#"<rect class="bar revenue" data-segment="{seg}" x="{label_w}" y="{:.1}" width="{vw:.1}" height="12" fill="{VERMILLION}"><title>{seg}: {} of revenue</title></rect><text x="{:.1}" y="{:.1}" class="bar-value">{} of revenue</text>"#,
            y + 16.0,
            percent(r.value_share),
            label_w + vw + 5.0,
            y + 26.0,
            percent(r.value_share),
            seg = esc(&r.label)
        );
    }
    o.push_str("</svg>");
    o
}

/// One histogram bin: [lo, hi) and its count; `open_end` for the last bin of a capped range.
#[derive(Debug, Clone)]
pub struct Bin {
    /// Lower edge.
    pub lo: f64,
    /// Upper edge.
    pub hi: f64,
    /// Customers in the bin.
    pub count: u64,
}

/// A histogram of CLV: one bar per bin, the count of each bar in its `<title>`.
pub fn histogram(title: &str, x_axis: &Axis, bins: &[Bin], capped_at: Option<f64>) -> String {
    let (w, h) = (720.0, 320.0);
    let (ml, mr, mt, mb) = (70.0, 20.0, 20.0, 56.0);
    let (pw, ph) = (w - ml - mr, h - mt - mb);
    let (x0, x1) = (
        bins.first().map(|b| b.lo).unwrap_or(0.0),
        bins.last().map(|b| b.hi).unwrap_or(1.0),
    );
    let x1 = if x1 > x0 { x1 } else { x0 + 1.0 };
    let ymax = bins.iter().map(|b| b.count).max().unwrap_or(0).max(1) as f64;
    let yt = ticks(0.0, ymax, 5);
    let ytop = yt.last().copied().unwrap_or(ymax).max(ymax);
    let sx = |v: f64| ml + (v - x0) / (x1 - x0) * pw;
    let sy = |v: f64| mt + ph - v / ytop * ph;
    let mut o = String::new();
    let _ = write!(
        o,
        r#"<svg class="chart" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" aria-label="{t}" xmlns="http://www.w3.org/2000/svg"><title>{t}</title>"#,
        t = esc(title)
    );
    let customers = Axis::plain("customers");
    let (xstep, _) = axes(
        &mut o,
        (x0, x1),
        (0.0, ytop),
        &sx,
        &sy,
        (ml, mt, pw, ph),
        (x_axis, &customers),
    );
    for b in bins {
        let (x, xr) = (sx(b.lo), sx(b.hi));
        let y = sy(b.count as f64);
        let last_open = capped_at.is_some() && (b.hi - x1).abs() < 1e-12;
        let range = if last_open {
            format!("{} and more", x_axis.value(b.lo, xstep))
        } else {
            format!(
                "{} to {}",
                x_axis.value(b.lo, xstep),
                x_axis.value(b.hi, xstep)
            )
        };
        let _ = write!(
            o,
            r#"<rect class="bin" x="{:.1}" y="{y:.1}" width="{:.1}" height="{:.1}" fill="{BLUE}" stroke="white" stroke-width="0.5"><title>{range}: {} customers</title></rect>"#,
            x,
            (xr - x).max(0.5),
            (mt + ph - y).max(0.0),
            number(b.count as f64, 0)
        );
    }
    let _ = write!(
        o,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" class="axis-title">{}</text><text transform="translate(16 {:.1}) rotate(-90)" text-anchor="middle" class="axis-title">customers</text>"#,
        ml + pw / 2.0,
        h - 12.0,
        esc(&x_axis.title),
        mt + ph / 2.0
    );
    o.push_str("</svg>");
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_numbers_inside_the_range() {
        assert_eq!(
            ticks(0.0, 100.0, 5),
            vec![0.0, 20.0, 40.0, 60.0, 80.0, 100.0]
        );
        assert_eq!(ticks(0.13, 0.91, 4), vec![0.2, 0.4, 0.6, 0.8]);
        assert_eq!(ticks(5.0, 5.0, 4), vec![5.0]);
    }

    #[test]
    fn tick_labels_have_the_decimals_their_step_needs_and_never_repeat() {
        let a = Axis::plain("price index");
        let step = tick_step(0.9105, 0.9254, 6);
        let labels: Vec<String> = ticks(0.9105, 0.9254, 6)
            .iter()
            .map(|t| a.tick(*t, step))
            .collect();
        assert_eq!(labels, ["0.915", "0.920", "0.925"]);
        let pct = Axis {
            title: "share".into(),
            percent: true,
        };
        let step = tick_step(0.04, 0.06, 4);
        let labels: Vec<String> = ticks(0.04, 0.06, 4)
            .iter()
            .map(|t| pct.tick(*t, step))
            .collect();
        assert_eq!(labels, ["4.0%", "4.5%", "5.0%", "5.5%", "6.0%"]);
        for (lo, hi) in [(0.0, 1e-4), (3.0, 3.00002), (-5.0, 1234567.0), (0.91, 0.92)] {
            let step = tick_step(lo, hi, 5);
            let l: Vec<String> = ticks(lo, hi, 5).iter().map(|t| a.tick(*t, step)).collect();
            let mut d = l.clone();
            d.dedup();
            assert_eq!(d, l, "{lo}..{hi}");
        }
        assert_eq!(decimals(0.05), 2);
        assert_eq!(decimals(20.0), 0);
    }

    #[test]
    fn a_target_bubble_is_labelled_not_only_coloured() {
        let b = |label: &str, t: bool, x: f64| Bubble {
            label: label.into(),
            x,
            y: 2.0,
            size: 10.0,
            target_rank: t.then_some(1),
            is_target: t,
        };
        let map = bubble_map(
            "map",
            &Axis::metric("avg_price_index", None),
            &Axis::metric("avg_clv", Some("CNY")),
            &[b("a", true, 1.0), b("b<c", false, 2.0)],
        );
        let svg = map.svg;
        assert!(svg.contains("a (target #1)"));
        assert!(svg.contains("b&lt;c"));
        assert!(
            svg.contains("price paid relative to list price")
                && svg.contains("average CLV per customer (CNY)")
        );
        assert!(svg.contains("<title>map</title>") && svg.contains(r#"aria-label="map""#));
        assert!(map.numbered.is_empty());
        // many bubbles in one spot: what cannot be labelled is numbered, and listed
        let crowd: Vec<Bubble> = (0..30)
            .map(|i| b(&format!("segment number {i}"), false, 1.0))
            .collect();
        let map = bubble_map("crowd", &Axis::plain("x"), &Axis::plain("y"), &crowd);
        assert!(!map.numbered.is_empty());
        assert_eq!(map.numbered[0].0, 1);
    }
}
