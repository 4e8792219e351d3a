//! The page around the sections: CSS, the header with the links between reports, the contents
//! list and the footer. Inline CSS only: no scripts, no fonts, no network.

use std::fmt::Write;

use super::format::esc;
use super::sections::Section;

/// The stylesheet of every report page.
pub const CSS: &str = r#"
:root{color-scheme:light}
*{box-sizing:border-box}
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:#1a1a1a;background:#fff;margin:0;line-height:1.45;font-size:15px}
main{max-width:1120px;margin:0 auto;padding:24px 28px 48px}
h1{font-size:1.7rem;margin:0 0 4px}
h2{font-size:1.3rem;margin:36px 0 8px;padding-top:8px;border-top:2px solid #1a1a1a}
h3{font-size:1.05rem;margin:22px 0 6px}
a{color:#0060a0}
.meta,.note{color:#4a4a4a}
nav.links{display:flex;gap:18px;flex-wrap:wrap;margin:6px 0 10px;font-size:.95rem}
nav.contents{border:1px solid #bdbdbd;border-radius:6px;padding:8px 16px;margin:12px 0 4px}
nav.contents ol{margin:4px 0;padding-left:22px}
nav.contents li{margin:2px 0}
nav.contents ol ol{display:flex;flex-wrap:wrap;gap:2px 14px;list-style:none;padding-left:0;font-size:.88rem}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(200px,1fr));gap:12px;margin:16px 0}
.card{border:1px solid #bdbdbd;border-radius:6px;padding:10px 14px}
.card .label{font-size:.85rem;color:#4a4a4a}
.card .value{font-size:1.6rem;font-weight:650;font-variant-numeric:tabular-nums}
.card .sub,.card .change{font-size:.85rem;color:#4a4a4a}
.card .change{font-variant-numeric:tabular-nums}
.table{overflow-x:auto;margin:8px 0 12px}
table{border-collapse:collapse;margin:0 0 4px;font-variant-numeric:tabular-nums}
th,td{border:1px solid #bdbdbd;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f0f0f0}
td.num,th.num{text-align:right}
td.wide{min-width:16em}
table.strategy td{min-width:9em}
table.strategy td.action{min-width:16em}
a.csv{font-size:.8rem}
table.checks{font-size:.85rem}
table.checks td:nth-child(8){min-width:14em}
.chart{max-width:100%;height:auto;display:block}
.chart text{font-size:12px;fill:#1a1a1a}
.chart .axis-title{font-size:13px;font-weight:600}
.chart .tick{font-size:11px;fill:#333}
.chart .strong{font-weight:700}
.chart .series-label{font-size:11px}
.trends{display:grid;grid-template-columns:repeat(auto-fit,minmax(330px,1fr));gap:4px 18px}
.trends figure{margin:0}
.trends figcaption{font-weight:600;font-size:.95rem}
.missing{border-left:4px solid #E69F00;background:#fff8e6;padding:6px 10px}
.failed{border-left:4px solid #D55E00;background:#fdeee6;padding:8px 12px}
.status-fail{font-weight:700}
.heat td.cell{text-align:right;min-width:64px}
.heat td.stayed{outline:2px solid #1a1a1a;outline-offset:-3px;font-weight:700}
.heat small{display:block;font-size:.75rem}
ol.bubble-legend{columns:2;font-size:.9rem}
details{margin:4px 0 12px}
@media print{
 body{font-size:11pt}
 main{max-width:none;padding:0}
 h2{break-after:avoid}
 nav.links,a.csv{display:none}
 .chart,table,.card{break-inside:avoid}
}
"#;

/// The start of a page: head, title and header.
pub fn head(title: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>{t}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<main>\n<h1>{t}</h1>\n",
        t = esc(title)
    )
}

/// The links between reports: (text, href) pairs, or plain text when a report is not written.
pub fn links(items: &[(String, Option<String>)]) -> String {
    let mut o = String::from("<nav class=\"links\" aria-label=\"Reports\">");
    for (text, href) in items {
        match href {
            Some(h) => {
                let _ = write!(o, "<a href=\"{}\">{}</a>", esc(h), esc(text));
            }
            None => {
                let _ = write!(o, "<span>{}</span>", esc(text));
            }
        }
    }
    o.push_str("</nav>\n");
    o
}

/// The contents list of the sections (and their sub-sections).
pub fn contents(sections: &[Section]) -> String {
    let mut o = String::from(
        "<nav class=\"contents\" aria-labelledby=\"h-contents\"><strong id=\"h-contents\">Contents</strong><ol>\n",
    );
    for s in sections {
        let _ = write!(o, "<li><a href=\"#{}\">{}</a>", s.id, esc(&s.title));
        if !s.subs.is_empty() {
            o.push_str("<ol>");
            for (id, t) in &s.subs {
                let _ = write!(o, "<li><a href=\"#{}\">{}</a></li>", esc(id), esc(t));
            }
            o.push_str("</ol>");
        }
        o.push_str("</li>\n");
    }
    o.push_str("</ol></nav>\n");
    o
}

/// The sections, each under its heading.
pub fn body(sections: &[Section]) -> String {
    let mut o = String::new();
    for s in sections {
        let _ = write!(
            o,
            "<section aria-labelledby=\"{id}\">\n<h2 id=\"{id}\">{}</h2>\n{}</section>\n",
            esc(&s.title),
            s.html,
            id = s.id
        );
    }
    o
}

/// The end of a page.
pub fn foot(note: &str) -> String {
    format!(
        "<p class=\"meta\">{}</p>\n</main>\n</body>\n</html>\n",
        esc(note)
    )
}
