//! Inline SVG charts drawn in Rust: a bubble map, paired horizontal bars and a histogram.
//! Colours are the Okabe-Ito colour-blind-safe palette; every mark also carries a text label
//! and a `<title>`, so nothing is told by colour alone. Output depends only on the inputs.

use std::fmt::Write;

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

/// "Nice" tick values covering [lo, hi]: steps of 1, 2 or 5 times a power of ten.
pub fn ticks(lo: f64, hi: f64, target: usize) -> Vec<f64> {
    if !lo.is_finite() || !hi.is_finite() || hi <= lo {
        return vec![lo];
    }
    let raw = (hi - lo) / target.max(1) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    let first = (lo / step).ceil() as i64;
    let last = (hi / step).floor() as i64;
    // rounded to the step's decimals, so 3 x 0.2 is 0.6, not 0.6000000000000001
    let scale = 10f64.powi((-step.log10().floor()).max(0.0) as i32);
    (first..=last)
        .map(|i| (i as f64 * step * scale).round() / scale)
        .collect()
}

/// Tick label: integers with separators, otherwise up to two decimals.
fn tick_label(v: f64) -> String {
    if v.abs() >= 100.0 || v.fract() == 0.0 {
        number(v, 0)
    } else if (v * 10.0).fract().abs() < 1e-9 {
        number(v, 1)
    } else {
        number(v, 2)
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

/// A positioning map: one bubble per segment at (x, y), area proportional to its customers,
/// target segments filled in vermillion with a heavy outline and "target #n" in their label.
pub fn bubble_map(title: &str, x_axis: &str, y_axis: &str, bubbles: &[Bubble]) -> String {
    let (w, h) = (960.0, 480.0);
    let (ml, mr, mt, mb) = (78.0, 24.0, 40.0, 56.0);
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
            (s.max(0.0) / max_size).sqrt() * 38.0 + 4.0
        } else {
            6.0
        }
    };
    let mut o = String::new();
    let _ = write!(
        o,
        r#"<svg class="chart" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" aria-label="{t}" xmlns="http://www.w3.org/2000/svg"><title>{t}</title>"#,
        t = esc(title)
    );
    axes(&mut o, (x0, x1), (y0, y1), &sx, &sy, (ml, mt, pw, ph));
    let _ = write!(
        o,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" class="axis-title">{}</text>"#,
        ml + pw / 2.0,
        h - 12.0,
        esc(&axis_name(x_axis))
    );
    let _ = write!(
        o,
        r#"<text transform="translate(16 {:.1}) rotate(-90)" text-anchor="middle" class="axis-title">{}</text>"#,
        mt + ph / 2.0,
        esc(&axis_name(y_axis))
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
            r#"<circle class="bubble{}" data-segment="{}" cx="{cx:.1}" cy="{cy:.1}" r="{r:.1}" fill="{fill}" fill-opacity="0.7" stroke="{stroke}" stroke-width="{sw}"><title>{}: {} customers, {} {}, {} {}{}</title></circle>"#,
            if b.is_target { " target" } else { "" },
            esc(&b.label),
            esc(&b.label),
            number(b.size, 0),
            esc(&axis_name(x_axis)),
            tick_label(b.x),
            esc(&axis_name(y_axis)),
            tick_label(b.y),
            if b.is_target { ", target segment" } else { "" }
        );
    }
    for b in &order {
        let (cx, cy, r) = (sx(b.x), sy(b.y), radius(b.size));
        let label = match (b.is_target, b.target_rank) {
            (true, Some(n)) => format!("{} (target #{n})", b.label),
            (true, None) => format!("{} (target)", b.label),
            _ => b.label.clone(),
        };
        // right of the bubble, or left of it when it would run past the plot
        let width = label.chars().count() as f64 * if b.is_target { 7.2 } else { 6.6 };
        let right = cx + r * 0.75 + 3.0;
        let (x, anchor) = if right + width > ml + pw {
            (cx - r * 0.75 - 3.0, "end")
        } else {
            (right, "start")
        };
        let _ = write!(
            o,
            r#"<text x="{x:.1}" y="{:.1}" text-anchor="{anchor}" class="bubble-label{}">{}</text>"#,
            (cy - r * 0.75 - 2.0).max(mt + 12.0),
            if b.is_target { " strong" } else { "" },
            esc(&label)
        );
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
    o
}

/// Axis names are column names (`avg_clv`); shown as words.
pub fn axis_name(a: &str) -> String {
    a.replace('_', " ")
}

fn axes(
    o: &mut String,
    (x0, x1): (f64, f64),
    (y0, y1): (f64, f64),
    sx: &dyn Fn(f64) -> f64,
    sy: &dyn Fn(f64) -> f64,
    (ml, mt, pw, ph): (f64, f64, f64, f64),
) {
    o.push_str(r#"<g class="axes">"#);
    for t in ticks(x0, x1, 6) {
        let x = sx(t);
        let _ = write!(
            o,
            r#"<line x1="{x:.1}" y1="{mt:.1}" x2="{x:.1}" y2="{:.1}" stroke="{GRID}"/><text x="{x:.1}" y="{:.1}" text-anchor="middle" class="tick">{}</text>"#,
            mt + ph,
            mt + ph + 16.0,
            tick_label(t)
        );
    }
    for t in ticks(y0, y1, 5) {
        let y = sy(t);
        let _ = write!(
            o,
            r#"<line x1="{ml:.1}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="{GRID}"/><text x="{:.1}" y="{:.1}" text-anchor="end" class="tick">{}</text>"#,
            ml + pw,
            ml - 6.0,
            y + 4.0,
            tick_label(t)
        );
    }
    let _ = write!(
        o,
        r#"<rect x="{ml:.1}" y="{mt:.1}" width="{pw:.1}" height="{ph:.1}" fill="none" stroke="{INK}"/></g>"#
    );
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
pub fn histogram(title: &str, x_title: &str, bins: &[Bin], capped_at: Option<f64>) -> String {
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
    axes(&mut o, (x0, x1), (0.0, ytop), &sx, &sy, (ml, mt, pw, ph));
    for b in bins {
        let (x, xr) = (sx(b.lo), sx(b.hi));
        let y = sy(b.count as f64);
        let last_open = capped_at.is_some() && (b.hi - x1).abs() < 1e-12;
        let range = if last_open {
            format!("{} and more", tick_label(b.lo))
        } else {
            format!("{} to {}", tick_label(b.lo), tick_label(b.hi))
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
        esc(x_title),
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
    fn a_target_bubble_is_labelled_not_only_coloured() {
        let b = |label: &str, t: bool| Bubble {
            label: label.into(),
            x: 1.0,
            y: 2.0,
            size: 10.0,
            target_rank: t.then_some(1),
            is_target: t,
        };
        let svg = bubble_map(
            "map",
            "price_index",
            "avg_clv",
            &[b("a", true), b("b<c", false)],
        );
        assert!(svg.contains("a (target #1)"));
        assert!(svg.contains("b&lt;c"));
        assert!(svg.contains("price index") && svg.contains("avg clv"));
        assert!(svg.contains("<title>map</title>") && svg.contains(r#"aria-label="map""#));
    }
}
