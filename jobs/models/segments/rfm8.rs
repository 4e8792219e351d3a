//! RFM eight classes (docs/segments.md; a food-ordering case study).
//!
//! R, F and M are binarised against a cut-off computed over customers with at least one
//! purchase: the mean (default) or the median. R = 1 when recency_days is strictly below the
//! cut-off (more recent than typical); F = 1 and M = 1 when strictly above. The code is the
//! digits in R F M order ("111" = important value) and names come from configuration. The
//! cut-offs used are written to every row (`rfm8_r_cutoff`, ...) and to the run results.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{CustomerView, SchemeOutput, UNCLASSIFIED};
use crate::error::Result;

/// How the binarisation cut-off is computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Cutoff {
    /// The arithmetic mean.
    #[default]
    Mean,
    /// The median (mean of the two middle values for an even count).
    Median,
}

/// Settings of the RFM eight-class scheme (`models.rfm8`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Rfm8Config {
    /// Cut-off statistic.
    pub cutoff: Cutoff,
    /// customer_features column measuring frequency.
    pub frequency: String,
    /// customer_features column measuring monetary contribution.
    pub monetary: String,
    /// Code ("111", ...) -> segment name.
    pub names: BTreeMap<String, String>,
}

/// The case study's names, in English (the originals are in docs/segments.md).
pub fn default_names() -> BTreeMap<String, String> {
    [
        ("111", "important value"),
        ("011", "important retain"),
        ("101", "important develop"),
        ("001", "important win-back"),
        ("110", "general value"),
        ("010", "general retain"),
        ("100", "general develop"),
        ("000", "general win-back"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

impl Default for Rfm8Config {
    fn default() -> Self {
        Self {
            cutoff: Cutoff::Mean,
            frequency: "orders".into(),
            monetary: "revenue".into(),
            names: default_names(),
        }
    }
}

impl Rfm8Config {
    /// Every one of the eight codes must be named.
    pub fn validate(&self) -> std::result::Result<(), String> {
        for code in default_names().keys() {
            if !self.names.contains_key(code) {
                return Err(format!(
                    "names: code `{code}` has no name; all eight codes 000..111 must be named"
                ));
            }
        }
        if let Some(bad) = self
            .names
            .keys()
            .find(|k| !default_names().contains_key(*k))
        {
            return Err(format!(
                "names: `{bad}` is not a code; codes are three binary digits in R F M order"
            ));
        }
        Ok(())
    }
}

/// The cut-off of the present values (`None` when there are none).
pub fn cutoff(values: &[Option<f64>], how: Cutoff) -> Option<f64> {
    let mut v: Vec<f64> = values
        .iter()
        .flatten()
        .copied()
        .filter(|x| !x.is_nan())
        .collect();
    if v.is_empty() {
        return None;
    }
    // sorted first, so the mean does not depend on the order rows arrive in
    v.sort_by(f64::total_cmp);
    match how {
        Cutoff::Mean => Some(v.iter().sum::<f64>() / v.len() as f64),
        Cutoff::Median => {
            let n = v.len();
            Some(if n % 2 == 1 {
                v[n / 2]
            } else {
                (v[n / 2 - 1] + v[n / 2]) / 2.0
            })
        }
    }
}

/// Computes rfm8_code, rfm8_segment and the cut-off columns.
pub fn assign(cfg: &Rfm8Config, view: &CustomerView) -> Result<SchemeOutput> {
    let r = view.buyer_f64("recency_days")?;
    let f = view.buyer_f64(&cfg.frequency)?;
    let m = view.buyer_f64(&cfg.monetary)?;
    let (cr, cf, cm) = (
        cutoff(&r, cfg.cutoff),
        cutoff(&f, cfg.cutoff),
        cutoff(&m, cfg.cutoff),
    );
    let n = r.len();
    let mut codes = Vec::with_capacity(n);
    let mut labels = Vec::with_capacity(n);
    for i in 0..n {
        match (r[i], f[i], m[i], cr, cf, cm) {
            (Some(r), Some(f), Some(m), Some(cr), Some(cf), Some(cm)) => {
                let code = format!(
                    "{}{}{}",
                    u8::from(r < cr),
                    u8::from(f > cf),
                    u8::from(m > cm)
                );
                labels.push(match cfg.names.get(&code) {
                    Some(name) => std::borrow::Cow::Borrowed(name.as_str()),
                    None => std::borrow::Cow::Owned(code.clone()),
                });
                codes.push(Some(code));
            }
            _ => {
                codes.push(None);
                labels.push(std::borrow::Cow::Borrowed(UNCLASSIFIED));
            }
        }
    }
    let mut out = SchemeOutput::new("rfm8");
    out.push_str("rfm8_code", codes);
    out.set_label("rfm8_segment", labels);
    out.push_f64("rfm8_r_cutoff", vec![cr; n]);
    out.push_f64("rfm8_f_cutoff", vec![cf; n]);
    out.push_f64("rfm8_m_cutoff", vec![cm; n]);
    out.report = serde_json::json!({
        "cutoff": format!("{:?}", cfg.cutoff).to_lowercase(),
        "recency_days": cr, "frequency": cf, "monetary": cm,
        "frequency_column": cfg.frequency, "monetary_column": cfg.monetary,
    });
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_and_median_cutoffs() {
        let v = [Some(1.0), Some(1.0), Some(1.0), Some(9.0), None];
        assert_eq!(cutoff(&v, Cutoff::Mean), Some(3.0));
        assert_eq!(cutoff(&v, Cutoff::Median), Some(1.0));
        assert_eq!(cutoff(&[None], Cutoff::Mean), None);
        assert_eq!(cutoff(&[Some(1.0), Some(4.0)], Cutoff::Median), Some(2.5));
    }

    #[test]
    fn default_names_cover_every_code() {
        assert!(Rfm8Config::default().validate().is_ok());
        let mut c = Rfm8Config::default();
        c.names.remove("011");
        assert!(c.validate().unwrap_err().contains("011"));
    }
}
