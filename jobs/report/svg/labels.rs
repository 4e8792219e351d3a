//! Where the bubble labels of a positioning map go: each label is tried at positions around its
//! bubble, nearest first, and kept at the first one inside the plot that overlaps no label
//! already placed (nor, on a first pass, any other bubble). A label that fits nowhere is
//! replaced by a number, placed the same way, and listed in a legend under the chart. Widths
//! are estimated from the characters (DejaVu Sans, the widest of the usual system fonts, so the
//! real boxes are no larger than the estimate); placement depends only on the inputs.

/// An axis-aligned box: left, top, right, bottom (SVG coordinates, y down).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rect {
    /// Left edge.
    pub x0: f64,
    /// Top edge.
    pub y0: f64,
    /// Right edge.
    pub x1: f64,
    /// Bottom edge.
    pub y1: f64,
}

impl Rect {
    /// Whether two boxes overlap, with `pad` of clearance.
    pub fn overlaps(&self, o: &Rect, pad: f64) -> bool {
        self.x0 < o.x1 + pad && o.x0 < self.x1 + pad && self.y0 < o.y1 + pad && o.y0 < self.y1 + pad
    }

    fn inside(&self, o: &Rect) -> bool {
        self.x0 >= o.x0 && self.x1 <= o.x1 && self.y0 >= o.y0 && self.y1 <= o.y1
    }

    fn hits_circle(&self, cx: f64, cy: f64, r: f64) -> bool {
        let nx = cx.clamp(self.x0, self.x1);
        let ny = cy.clamp(self.y0, self.y1);
        (nx - cx).powi(2) + (ny - cy).powi(2) < r * r
    }
}

/// Estimated advance width of `text` at `px` pixels (bold about 10% wider).
pub fn text_width(text: &str, px: f64, bold: bool) -> f64 {
    let em: f64 = text
        .chars()
        .map(|c| match c {
            'i' | 'j' | 'l' | '.' | ',' | ':' | ';' | '\'' | '!' | '|' => 0.32,
            'f' | 't' | 'r' | ' ' | '(' | ')' | '[' | ']' | '-' | 'I' => 0.45,
            'm' | 'w' => 0.98,
            'M' | 'W' => 1.0,
            '#' | '%' | '&' | '@' => 0.95,
            c if c.is_ascii_digit() => 0.64,
            c if c.is_ascii_uppercase() => 0.76,
            c if c.is_ascii() => 0.64,
            _ => 1.0,
        })
        .sum();
    em * px * if bold { 1.1 } else { 1.0 }
}

/// The box of a text line whose baseline starts at (x, y) with `anchor` `start`, `middle` or
/// `end`, at `px` pixels.
pub fn text_box(x: f64, y: f64, width: f64, px: f64, anchor: &str) -> Rect {
    let x0 = match anchor {
        "end" => x - width,
        "middle" => x - width / 2.0,
        _ => x,
    };
    Rect {
        x0,
        y0: y - px * 1.0,
        x1: x0 + width,
        y1: y + px * 0.3,
    }
}

/// One label to place: its bubble and its text's width.
#[derive(Debug, Clone)]
pub struct Wanted {
    /// Bubble centre x.
    pub cx: f64,
    /// Bubble centre y.
    pub cy: f64,
    /// Bubble radius.
    pub r: f64,
    /// Text width.
    pub width: f64,
}

/// A placed label: its baseline anchor point, anchor and box.
#[derive(Debug, Clone, PartialEq)]
pub struct Placed {
    /// Anchor x.
    pub x: f64,
    /// Baseline y.
    pub y: f64,
    /// `start`, `middle` or `end`.
    pub anchor: &'static str,
    /// The label's box.
    pub rect: Rect,
}

/// Candidate positions around a bubble, nearest first: right, left, above, below, then the
/// four diagonals, at growing distances.
fn candidates(w: &Wanted, px: f64) -> Vec<(f64, f64, &'static str)> {
    let mut c = Vec::new();
    for gap in [3.0, 10.0, 20.0, 34.0] {
        let d = w.r + gap;
        let half = px * 0.35;
        let diag = d * std::f64::consts::FRAC_1_SQRT_2;
        c.extend([
            (w.cx + d, w.cy + half, "start"),
            (w.cx - d, w.cy + half, "end"),
            (w.cx, w.cy - d - px * 0.3, "middle"),
            (w.cx, w.cy + d + px, "middle"),
            (w.cx + diag, w.cy - diag, "start"),
            (w.cx - diag, w.cy - diag, "end"),
            (w.cx + diag, w.cy + diag + px * 0.7, "start"),
            (w.cx - diag, w.cy + diag + px * 0.7, "end"),
        ]);
    }
    c
}

/// Places labels in the order given (most important first) inside `plot`, never overlapping
/// each other nor `reserved` boxes; `None` for a label that fits nowhere.
pub fn place(wanted: &[Wanted], px: f64, plot: Rect, reserved: &[Rect]) -> Vec<Option<Placed>> {
    let mut placed: Vec<Rect> = reserved.to_vec();
    let mut out = Vec::with_capacity(wanted.len());
    for (i, w) in wanted.iter().enumerate() {
        let cands = candidates(w, px);
        let free = |r: &Rect, avoid_bubbles: bool| {
            r.inside(&plot)
                && !placed.iter().any(|p| p.overlaps(r, 1.5))
                && (!avoid_bubbles
                    || !wanted
                        .iter()
                        .enumerate()
                        .any(|(j, o)| j != i && r.hits_circle(o.cx, o.cy, o.r)))
        };
        let mut got = None;
        for avoid_bubbles in [true, false] {
            got = cands.iter().find_map(|&(x, y, anchor)| {
                let rect = text_box(x, y, w.width, px, anchor);
                free(&rect, avoid_bubbles).then_some(Placed { x, y, anchor, rect })
            });
            if got.is_some() {
                break;
            }
        }
        if let Some(p) = &got {
            placed.push(p.rect);
        }
        out.push(got);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crowded_labels_never_overlap() {
        // twelve bubbles on top of each other: some labels move, the rest get None
        let wanted: Vec<Wanted> = (0..12)
            .map(|i| Wanted {
                cx: 300.0 + i as f64,
                cy: 200.0,
                r: 10.0,
                width: text_width("important win-back", 12.0, false),
            })
            .collect();
        let plot = Rect {
            x0: 0.0,
            y0: 0.0,
            x1: 600.0,
            y1: 400.0,
        };
        let got = place(&wanted, 12.0, plot, &[]);
        let boxes: Vec<Rect> = got.iter().flatten().map(|p| p.rect).collect();
        assert!(boxes.len() >= 5, "{}", boxes.len());
        for (i, a) in boxes.iter().enumerate() {
            assert!(a.inside(&plot));
            for b in &boxes[i + 1..] {
                assert!(!a.overlaps(b, 0.0), "{a:?} {b:?}");
            }
        }
        // a lone bubble's label goes right of it
        let one = place(&wanted[..1], 12.0, plot, &[]);
        assert_eq!(one[0].as_ref().unwrap().anchor, "start");
        assert!(text_width("mmm", 12.0, true) > text_width("iii", 12.0, true));
    }
}
