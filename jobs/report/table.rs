//! HTML tables that carry their own CSV download: a table is built once, as cells that know
//! both what the page shows and what the CSV holds (full precision, no separators or units),
//! and is rendered with a `download` link to a `data:` URI, so no script and no server is
//! needed and the download always equals the table.

use std::fmt::Write;

use super::format::{csv_data_uri, csv_field, esc, raw};

/// One cell: its HTML (already escaped or marked up), its CSV value and optional attributes.
#[derive(Debug, Clone, Default)]
pub struct Cell {
    html: String,
    csv: String,
    class: Option<&'static str>,
    style: Option<String>,
    header: bool,
}

impl Cell {
    /// Text, escaped; the CSV holds it as it is.
    pub fn text(s: &str) -> Self {
        Self {
            html: esc(s),
            csv: s.to_string(),
            ..Self::default()
        }
    }

    /// A number shown as `shown`, downloaded as `value` (empty when unknown).
    pub fn num(shown: String, value: Option<f64>) -> Self {
        Self {
            html: esc(&shown),
            csv: value.map(raw).unwrap_or_default(),
            class: Some("num"),
            ..Self::default()
        }
    }

    /// An integer.
    pub fn int(n: Option<i64>) -> Self {
        Self {
            html: n
                .map(super::format::count)
                .unwrap_or_else(|| "\u{2013}".into()),
            csv: n.map(|n| n.to_string()).unwrap_or_default(),
            class: Some("num"),
            ..Self::default()
        }
    }

    /// Marked-up HTML (the caller escaped it) with a plain CSV value.
    pub fn html(html: String, csv: &str) -> Self {
        Self {
            html,
            csv: csv.to_string(),
            ..Self::default()
        }
    }

    /// With a class on the cell (replaces `num`).
    pub fn class(mut self, class: &'static str) -> Self {
        self.class = Some(class);
        self
    }

    /// With an inline style.
    pub fn style(mut self, style: String) -> Self {
        self.style = Some(style);
        self
    }

    /// As a row header (`<th>`).
    pub fn header(mut self) -> Self {
        self.header = true;
        self
    }
}

/// A table with a caption-free header row and a CSV download named `<name>.csv`.
pub struct Table {
    name: String,
    label: String,
    class: Option<&'static str>,
    head: Vec<(String, bool)>,
    rows: Vec<Vec<Cell>>,
}

impl Table {
    /// A table whose download is `<name>.csv`; `label` names it for screen readers.
    pub fn new(name: &str, label: &str) -> Self {
        Self {
            name: name.to_string(),
            label: label.to_string(),
            class: None,
            head: Vec::new(),
            rows: Vec::new(),
        }
    }

    /// With a class on the `<table>`.
    pub fn class(mut self, class: &'static str) -> Self {
        self.class = Some(class);
        self
    }

    /// A text column.
    pub fn col(mut self, title: &str) -> Self {
        self.head.push((title.to_string(), false));
        self
    }

    /// A numeric (right-aligned) column.
    pub fn num(mut self, title: &str) -> Self {
        self.head.push((title.to_string(), true));
        self
    }

    /// Appends a row.
    pub fn row(&mut self, cells: Vec<Cell>) {
        self.rows.push(cells);
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether it has no rows.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The CSV text: the header, then one line per row.
    pub fn csv(&self) -> String {
        let mut o = String::new();
        let head: Vec<String> = self.head.iter().map(|(h, _)| csv_field(h)).collect();
        o.push_str(&head.join(","));
        o.push('\n');
        for r in &self.rows {
            let cells: Vec<String> = r.iter().map(|c| csv_field(&c.csv)).collect();
            o.push_str(&cells.join(","));
            o.push('\n');
        }
        o
    }

    /// The table and its download link.
    pub fn html(&self) -> String {
        let mut o = String::new();
        let _ = write!(
            o,
            "<div class=\"table\"><table{} aria-label=\"{}\" data-csv=\"{}.csv\"><thead><tr>",
            self.class
                .map(|c| format!(" class=\"{c}\""))
                .unwrap_or_default(),
            esc(&self.label),
            esc(&self.name)
        );
        for (h, num) in &self.head {
            let _ = write!(
                o,
                "<th{}>{}</th>",
                if *num { " class=\"num\"" } else { "" },
                esc(h)
            );
        }
        o.push_str("</tr></thead><tbody>\n");
        for r in &self.rows {
            o.push_str("<tr>");
            for c in r {
                let tag = if c.header { "th" } else { "td" };
                let _ = write!(
                    o,
                    "<{tag}{}{}>{}</{tag}>",
                    c.class
                        .map(|k| format!(" class=\"{k}\""))
                        .unwrap_or_default(),
                    c.style
                        .as_ref()
                        .map(|s| format!(" style=\"{}\"", esc(s)))
                        .unwrap_or_default(),
                    c.html
                );
            }
            o.push_str("</tr>\n");
        }
        let _ = writeln!(
            o,
            "</tbody></table><a class=\"csv\" download=\"{n}.csv\" href=\"{}\">Download {n}.csv</a></div>",
            csv_data_uri(&self.csv()),
            n = esc(&self.name)
        );
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_download_holds_the_cells_at_full_precision() {
        let mut t = Table::new("t", "a table").col("segment").num("share");
        t.row(vec![
            Cell::text("a, \"b\""),
            Cell::num("12.3%".into(), Some(0.12345)),
        ]);
        t.row(vec![Cell::text("<c>"), Cell::int(Some(1234))]);
        assert_eq!(
            t.csv(),
            "segment,share\n\"a, \"\"b\"\"\",0.12345\n<c>,1234\n"
        );
        let html = t.html();
        assert!(html.contains("<td>&lt;c&gt;</td><td class=\"num\">1,234</td>"));
        assert!(
            html.contains(
                "download=\"t.csv\" href=\"data:text/csv;charset=utf-8,segment%2Cshare%0A"
            )
        );
    }
}
