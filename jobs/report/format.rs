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

/// A signed change with `decimals` decimals (`+1,234`, `-0.50`, `0`); "n/a" when not finite.
pub fn signed(v: f64, decimals: usize) -> String {
    let s = number(v, decimals);
    if v.is_finite() && !s.starts_with('-') && s.chars().any(|c| c.is_ascii_digit() && c != '0') {
        format!("+{s}")
    } else {
        s
    }
}

/// A change of a share in percentage points (`+1.2 pp`).
pub fn points(delta: f64) -> String {
    if delta.is_finite() {
        format!("{} pp", signed(delta * 100.0, 1))
    } else {
        "n/a".into()
    }
}

/// A relative change as a signed percentage (`+3.4%`); "n/a" when the base is zero.
pub fn relative(now: f64, before: f64) -> String {
    if before != 0.0 && now.is_finite() && before.is_finite() {
        format!("{}%", signed((now / before - 1.0) * 100.0, 1))
    } else {
        "n/a".into()
    }
}

/// A value for a CSV cell: floats in their shortest exact form, so the download keeps the
/// table's full precision.
pub fn raw(v: f64) -> String {
    if v.is_finite() {
        format!("{v}")
    } else {
        String::new()
    }
}

/// One CSV field, quoted when it holds a comma, quote or line break (RFC 4180).
pub fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// A `data:` URI of CSV text (percent-encoded UTF-8), for a download link that needs no script
/// and no server.
pub fn csv_data_uri(csv: &str) -> String {
    let mut o = String::from("data:text/csv;charset=utf-8,");
    for b in csv.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            o.push(b as char);
        } else {
            o.push_str(&format!("%{b:02X}"));
        }
    }
    o
}

/// An amount with its currency code when one is configured (`CNY 1,234`).
pub fn money(v: f64, currency: Option<&str>) -> String {
    match currency {
        Some(c) if v.is_finite() => format!("{} {}", c, amount(v)),
        _ => amount(v),
    }
}

/// Whether a segment_summary column is a share or a rate (0-1), shown as a percentage.
pub fn is_share(column: &str) -> bool {
    column.ends_with("_share") || column.ends_with("_rate") || column == "stability"
}

/// A segment_summary column in words, with its unit: what axis titles and headers show.
pub fn metric_title(column: &str, currency: Option<&str>) -> String {
    let unit = |s: &str| match currency {
        Some(c) => format!("{s} ({c})"),
        None => s.to_string(),
    };
    match column {
        "avg_clv" => unit("average CLV per customer"),
        "median_clv" => unit("median CLV"),
        "avg_margin" => unit("margin per customer to date"),
        "avg_order_value" => unit("average order value"),
        "revenue" => unit("revenue to date"),
        "period_revenue" => unit("revenue in the period"),
        "margin" => unit("margin to date"),
        "clv_change" => unit("change of average CLV"),
        "avg_price_index" => "price paid relative to list price (1 = list price)".into(),
        "avg_discount_line_share" => "share of order lines bought on discount (%)".into(),
        "avg_premium_line_share" => "share of order lines in premium tiers (%)".into(),
        "avg_new_product_line_share" => "share of order lines of new products (%)".into(),
        "repeat_purchase_rate" => "repeat purchases per purchase (%)".into(),
        "retention_rate" => "retention of last period's buyers (%)".into(),
        "response_rate" => "campaign response rate (%)".into(),
        "complaint_rate" => "customers with a complaint (%)".into(),
        "customer_share" => "share of customers (%)".into(),
        "revenue_share" => "share of revenue (%)".into(),
        "avg_orders" => "orders per buyer".into(),
        "avg_recency_days" => "days since the last order".into(),
        "avg_days_since_first_order" => "days since the first order".into(),
        "growth_vs_previous" => "growth vs the previous period (%)".into(),
        "nps" => "net promoter score".into(),
        other if is_share(other) => format!("{} (%)", other.replace('_', " ")),
        other => other.replace('_', " "),
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
        assert_eq!(signed(3.0, 0), "+3");
        assert_eq!(signed(-0.001, 2), "0.00");
        assert_eq!(points(-0.012), "-1.2 pp");
        assert_eq!(relative(110.0, 100.0), "+10.0%");
        assert_eq!(csv_field("a, \"b\""), "\"a, \"\"b\"\"\"");
        assert_eq!(
            csv_data_uri("a b,1\n"),
            "data:text/csv;charset=utf-8,a%20b%2C1%0A"
        );
        assert_eq!(raw(0.1), "0.1");
    }
}
