//! The report's sections, one module each, in the order the page shows them; each builds a
//! [`Section`] from the loaded [`Tables`] and says "not computed for this period" for a table
//! or column the period does not have.

pub mod clv;
pub mod headline;
pub mod migration;
pub mod model;
pub mod positioning;
pub mod quality;
pub mod segments;
pub mod strategy;
pub mod trends;

use std::collections::BTreeMap;

use super::data::Frame;
use super::format::esc;
use super::load::Tables;

/// One section: its anchor, heading, content and the sub-headings listed in the contents.
pub struct Section {
    /// The heading's id.
    pub id: &'static str,
    /// The heading.
    pub title: String,
    /// The content below the heading.
    pub html: String,
    /// (id, title) of the sub-sections.
    pub subs: Vec<(String, String)>,
}

impl Section {
    /// An empty section.
    pub fn new(id: &'static str, title: &str) -> Self {
        Self {
            id,
            title: title.to_string(),
            html: String::new(),
            subs: Vec::new(),
        }
    }

    /// Appends a sub-heading (listed in the contents) and returns nothing.
    pub fn sub(&mut self, id: String, title: String) {
        self.html
            .push_str(&format!("<h3 id=\"{}\">{}</h3>\n", esc(&id), esc(&title)));
        self.subs.push((id, title));
    }
}

/// Every section of a period's report, in page order.
pub fn all(t: &Tables) -> Vec<Section> {
    vec![
        headline::section(t),
        positioning::section(t),
        strategy::section(t),
        trends::section(t),
        segments::section(t),
        clv::section(t),
        migration::section(t),
        quality::section(t),
        model::section(t),
    ]
}

/// The notice of a part the period does not have.
pub fn missing(what: &str) -> String {
    format!(
        "<p class=\"missing\">{} not computed for this period.</p>\n",
        esc(what)
    )
}

/// An anchor id made of `prefix` and a scheme name (letters, digits and `-` only).
pub fn anchor(prefix: &str, scheme: &str) -> String {
    let tail: String = scheme
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    format!("{prefix}-{tail}")
}

/// Sum in a fixed order (sorted), so the same values give the same bits.
pub fn stable_sum(values: impl Iterator<Item = f64>) -> f64 {
    let mut v: Vec<f64> = values.filter(|x| x.is_finite()).collect();
    v.sort_by(f64::total_cmp);
    v.iter().sum()
}

/// Row indexes of a frame grouped by its `scheme` column, schemes in sorted order.
pub fn by_scheme(f: &Frame) -> BTreeMap<String, Vec<usize>> {
    let mut m: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, s) in f.str("scheme").unwrap_or_default().into_iter().enumerate() {
        m.entry(s.unwrap_or_default()).or_default().push(i);
    }
    m
}

/// Schemes in the registry's order, then the others by name.
pub fn scheme_order(t: &Tables, groups: BTreeMap<String, Vec<usize>>) -> Vec<(String, Vec<usize>)> {
    let mut groups = groups;
    let mut out = Vec::new();
    for s in &t.schemes {
        if let Some(rows) = groups.remove(&s.name) {
            out.push((s.name.clone(), rows));
        }
    }
    out.extend(groups);
    out
}

/// A float column, all None when absent.
pub fn col_f(f: &Frame, c: &str, n: usize) -> Vec<Option<f64>> {
    f.f64(c).unwrap_or_else(|| vec![None; n])
}

/// A text column, all None when absent.
pub fn col_s(f: &Frame, c: &str, n: usize) -> Vec<Option<String>> {
    f.str(c).unwrap_or_else(|| vec![None; n])
}

/// An integer column, all None when absent.
pub fn col_i(f: &Frame, c: &str, n: usize) -> Vec<Option<i64>> {
    f.i64(c).unwrap_or_else(|| vec![None; n])
}
