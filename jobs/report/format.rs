//! Numbers and text as the report shows them: thousands separators, fixed decimals, HTML escaped.

/// Escapes text for HTML and SVG content and attribute values.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            _ => o.push(c),
        }
    }
    o
}

/// `v` with `decimals` decimals and a comma between thousands (`1,234,567.89`); "n/a" when not
/// finite.
pub fn number(v: f64, decimals: usize) -> String {
    if !v.is_finite() {
        return "n/a".into();
    }
    let s = format!("{:.*}", decimals, v.abs());
    let (int, frac) = match s.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (s.as_str(), None),
    };
    let mut grouped = String::new();
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    let zero = s.chars().all(|c| c == '0' || c == '.');
    let sign = if v < 0.0 && !zero { "-" } else { "" };
    match frac {
        Some(f) => format!("{sign}{grouped}.{f}"),
        None => format!("{sign}{grouped}"),
    }
}

/// An integer count with separators.
pub fn count(n: i64) -> String {
    number(n as f64, 0)
}

/// An amount: no decimals from 1,000 up, two below.
pub fn amount(v: f64) -> String {
    if v.abs() >= 1000.0 {
        number(v, 0)
    } else {
        number(v, 2)
    }
}

/// A share (0-1) as a percentage with one decimal.
pub fn percent(share: f64) -> String {
    if share.is_finite() {
        format!("{}%", number(share * 100.0, 1))
    } else {
        "n/a".into()
    }
}

/// An optional value, or an en dash when null.
pub fn opt(v: Option<f64>, f: impl Fn(f64) -> String) -> String {
    v.map(f).unwrap_or_else(|| "\u{2013}".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_are_separated_and_signs_kept() {
        assert_eq!(number(1234567.891, 2), "1,234,567.89");
        assert_eq!(number(-1234.4, 0), "-1,234");
        assert_eq!(number(999.0, 0), "999");
        assert_eq!(number(-0.001, 2), "0.00");
        assert_eq!(number(f64::NAN, 2), "n/a");
        assert_eq!(count(20_000), "20,000");
        assert_eq!(percent(0.1234), "12.3%");
        assert_eq!(amount(12.5), "12.50");
        assert_eq!(esc("a<b & \"c\""), "a&lt;b &amp; &quot;c&quot;");
    }
}
