//! Splitting one raw file into landed rows: CSV (plain or gzip), JSON Lines and Parquet.

use std::io::Read;

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::{DataType, SchemaRef};

use super::source::{SourceConfig, SourceFormat};
use super::{LANDING_CHUNK_ROWS, LandingBuilder, ParsedFile, Rejects};
use crate::contract::SourceSchema;
use crate::error::{Error, Result};

/// Splits one file. `url` names it in errors and in the landed `_source_file` column.
pub(crate) fn parse_file(
    bytes: &[u8],
    url: &str,
    name: &str,
    src: &SourceConfig,
    schema: &SourceSchema,
    lschema: SchemaRef,
    tz: chrono_tz::Tz,
) -> Result<ParsedFile> {
    let err = |m: String| Error::source(name, url, m);
    if bytes.is_empty() {
        return Err(err(format!(
            "the file is empty (0 bytes): expected {} with at least the columns {}; remove the file or re-export it",
            match src.format {
                SourceFormat::Csv => "a CSV header row",
                SourceFormat::Jsonl => "JSON Lines",
                SourceFormat::Parquet => "a Parquet file",
            },
            required_list(schema)
        )));
    }
    if src.format != SourceFormat::Parquet
        && let Some(encoding) = utf16(bytes)
    {
        return Err(err(format!(
            "the file is {encoding} text, not UTF-8: re-export it as UTF-8 (e.g. `iconv -f UTF-16 -t UTF-8`)"
        )));
    }
    match src.format {
        SourceFormat::Csv => parse_csv(decompress(bytes), url, name, src, schema, lschema, tz),
        SourceFormat::Jsonl => parse_jsonl(decompress(bytes), url, name, src, schema, lschema, tz),
        SourceFormat::Parquet => parse_parquet(bytes, url, name, src, schema, lschema, tz),
    }
}

/// `Some("UTF-16 (little-endian)")` when the bytes look like UTF-16: a byte-order mark, or NUL
/// bytes in every other position of the first line (a UTF-8 CSV has none).
fn utf16(bytes: &[u8]) -> Option<&'static str> {
    match bytes {
        [0xff, 0xfe, ..] => return Some("UTF-16 (little-endian)"),
        [0xfe, 0xff, ..] => return Some("UTF-16 (big-endian)"),
        _ => {}
    }
    let head = &bytes[..bytes.len().min(256)];
    if head.len() < 4 {
        return None;
    }
    let nul_at = |parity: usize| {
        head.iter()
            .enumerate()
            .filter(|(i, b)| i % 2 == parity && **b == 0)
            .count()
    };
    let half = head.len() / 2;
    if nul_at(1) * 10 >= half * 9 {
        Some("UTF-16 (little-endian)")
    } else if nul_at(0) * 10 >= half * 9 {
        Some("UTF-16 (big-endian)")
    } else {
        None
    }
}

/// A header name as it may appear in a message: a header is the only file content ever
/// echoed, and only when it looks like one (a name of letters, digits and a few marks).
fn shown_name(h: &str) -> String {
    let plain = h.len() <= 120
        && h.chars()
            .all(|c| c.is_alphanumeric() || " _-.#()/;|".contains(c));
    if plain {
        format!("`{h}`")
    } else {
        format!("[{} characters withheld]", h.chars().count())
    }
}

/// The header names for a message: at most 30, each as [`shown_name`] shows it.
fn shown_header(header: &[String]) -> String {
    let mut names: Vec<String> = header.iter().take(30).map(|h| shown_name(h)).collect();
    if header.len() > 30 {
        names.push(format!("... {} more", header.len() - 30));
    }
    names.join(", ")
}

fn required_list(schema: &SourceSchema) -> String {
    schema
        .columns
        .iter()
        .filter(|c| c.required)
        .map(|c| c.name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Gzip is detected by its magic bytes, whatever the file is called.
fn decompress(bytes: &[u8]) -> Box<dyn Read + '_> {
    if bytes.len() >= 2 && bytes[0] == 0x1f && bytes[1] == 0x8b {
        Box::new(flate2::read::MultiGzDecoder::new(bytes))
    } else {
        Box::new(bytes)
    }
}

/// Maps canonical columns to positions in the file's header; errors name missing required
/// columns, warnings name ignored extra columns.
fn map_columns(
    header: &[String],
    url: &str,
    name: &str,
    src: &SourceConfig,
    schema: &SourceSchema,
    warnings: &mut Vec<String>,
) -> Result<Vec<Option<usize>>> {
    let find = |wanted: &str| {
        header
            .iter()
            .position(|h| h == wanted)
            .or_else(|| header.iter().position(|h| h.eq_ignore_ascii_case(wanted)))
    };
    let mut map = Vec::with_capacity(schema.columns.len());
    let mut missing = Vec::new();
    for c in schema.columns {
        let wanted = src
            .columns
            .get(c.name)
            .map(String::as_str)
            .unwrap_or(c.name);
        let idx = find(wanted);
        if let Some(i) = idx {
            let same: Vec<usize> = header
                .iter()
                .enumerate()
                .filter(|(_, h)| h.eq_ignore_ascii_case(&header[i]))
                .map(|(j, _)| j + 1)
                .collect();
            if same.len() > 1 {
                return Err(Error::source(
                    name,
                    url,
                    format!(
                        "the header names {} {} times (columns {}): the job cannot tell which one is `{}`; fix the export, or rename one of them and map it under `sources.{name}.columns`",
                        shown_name(&header[i]),
                        same.len(),
                        same.iter()
                            .map(|n| n.to_string())
                            .collect::<Vec<_>>()
                            .join(", "),
                        c.name
                    ),
                ));
            }
        }
        if idx.is_none() && c.required {
            missing.push(if wanted == c.name {
                format!("`{}`", c.name)
            } else {
                format!("`{}` (mapped from `{wanted}`)", c.name)
            });
        }
        map.push(idx);
    }
    if !missing.is_empty() {
        let found = shown_header(header);
        let mut hint = format!(
            "add the column(s), or map them in pipeline.yaml under `sources.{name}.columns` (canonical: file column)"
        );
        if header.len() == 1
            && let Some(d) = [';', '\t', '|']
                .into_iter()
                .find(|d| header[0].contains(*d))
        {
            hint = format!(
                "the header looks {}-delimited: set `sources.{name}.delimiter: \"{}\"`",
                if d == '\t' {
                    "tab".to_string()
                } else {
                    format!("`{d}`")
                },
                d.escape_default()
            );
        }
        return Err(Error::source(
            name,
            url,
            format!(
                "missing required column(s) {}; found [{found}]; {hint}",
                missing.join(", ")
            ),
        ));
    }
    let used: Vec<usize> = map.iter().flatten().copied().collect();
    let extra: Vec<String> = header
        .iter()
        .enumerate()
        .filter(|(i, h)| !used.contains(i) && !h.is_empty())
        .map(|(_, h)| shown_name(h))
        .collect();
    if !extra.is_empty() {
        warnings.push(format!(
            "ignored column(s) not in the contract: {}",
            extra.join(", ")
        ));
    }
    Ok(map)
}

fn parse_csv(
    reader: Box<dyn Read + '_>,
    url: &str,
    name: &str,
    src: &SourceConfig,
    schema: &SourceSchema,
    lschema: SchemaRef,
    tz: chrono_tz::Tz,
) -> Result<ParsedFile> {
    let mut rdr = csv::ReaderBuilder::new()
        .delimiter(src.delimiter as u8)
        .has_headers(false)
        .flexible(true)
        .from_reader(reader);
    let mut record = csv::ByteRecord::new();
    let io_err = |e: csv::Error, line: u64| {
        Error::source(
            name,
            url,
            format!(
                "cannot read the file after line {line}: {e}; the file is probably truncated or corrupt (an incomplete upload or gzip) - re-deliver it"
            ),
        )
    };
    let has_header = rdr
        .read_byte_record(&mut record)
        .map_err(|e| io_err(e, 0))?;
    if !has_header {
        return Err(Error::source(
            name,
            url,
            "the file has no header row; re-export it with a header",
        ));
    }
    let header: Vec<String> = record
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let s = String::from_utf8_lossy(f);
            let s = if i == 0 {
                s.trim_start_matches('\u{feff}').to_string()
            } else {
                s.to_string()
            };
            s.trim().to_string()
        })
        .collect();
    let mut warnings = Vec::new();
    let map = map_columns(&header, url, name, src, schema, &mut warnings)?;
    let mut out = ParsedFile {
        batches: Vec::new(),
        rejects: Rejects::default(),
        rows_read: 0,
        warnings,
    };
    let mut builder = LandingBuilder::new(lschema, schema, tz, url);
    let mut last_line = 1u64;
    loop {
        match rdr.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => return Err(io_err(e, last_line)),
        }
        let line = record.position().map(|p| p.line()).unwrap_or(last_line + 1);
        last_line = line;
        if record.len() == 1 && record.get(0).is_some_and(|f| f.is_empty()) {
            continue; // a blank line is not a row
        }
        out.rows_read += 1;
        if record.len() != header.len() {
            out.rejects.push(
                format!(
                    "malformed_row: expected {} fields, found {}",
                    header.len(),
                    record.len()
                ),
                url,
                line as i64,
                raw_text(&record, src.delimiter, schema),
            );
            continue;
        }
        let mut fields: Vec<&str> = Vec::with_capacity(header.len());
        let mut utf8_ok = true;
        for f in record.iter() {
            match std::str::from_utf8(f) {
                Ok(s) => fields.push(s),
                Err(_) => {
                    utf8_ok = false;
                    break;
                }
            }
        }
        if !utf8_ok {
            out.rejects.push(
                "invalid_utf8: the row is not valid UTF-8; re-export the file as UTF-8".into(),
                url,
                line as i64,
                raw_text(&record, src.delimiter, schema),
            );
            continue;
        }
        builder.append(line as i64, |i| map[i].map(|j| fields[j]));
        if builder.len() >= LANDING_CHUNK_ROWS {
            out.batches.push(builder.finish()?);
        }
    }
    if builder.len() > 0 || out.batches.is_empty() {
        out.batches.push(builder.finish()?);
    }
    Ok(out)
}

/// The original row as text (lossy for invalid UTF-8), re-joined with the delimiter. Rows of an
/// extract with personal data cannot be split reliably, so their text is withheld entirely; the
/// file and line still locate them.
fn raw_text(record: &csv::ByteRecord, delimiter: char, schema: &SourceSchema) -> String {
    if schema.has_pii() {
        return format!("{} ({} fields)", crate::contract::REDACTED, record.len());
    }
    let parts: Vec<String> = record
        .iter()
        .map(|f| String::from_utf8_lossy(f).into_owned())
        .collect();
    parts.join(&delimiter.to_string())
}

fn parse_jsonl(
    mut reader: Box<dyn Read + '_>,
    url: &str,
    name: &str,
    src: &SourceConfig,
    schema: &SourceSchema,
    lschema: SchemaRef,
    tz: chrono_tz::Tz,
) -> Result<ParsedFile> {
    let mut text = Vec::new();
    reader.read_to_end(&mut text).map_err(|e| {
        Error::source(
            name,
            url,
            format!(
                "cannot read the file: {e}; it is probably truncated or corrupt - re-deliver it"
            ),
        )
    })?;
    let mut out = ParsedFile {
        batches: Vec::new(),
        rejects: Rejects::default(),
        rows_read: 0,
        warnings: Vec::new(),
    };
    let mut builder = LandingBuilder::new(lschema, schema, tz, url);
    let keys: Vec<&str> = schema
        .columns
        .iter()
        .map(|c| {
            src.columns
                .get(c.name)
                .map(String::as_str)
                .unwrap_or(c.name)
        })
        .collect();
    let mut values: Vec<Option<String>> = vec![None; keys.len()];
    let mut seen_required = vec![false; keys.len()];
    for (i, line) in text.split(|b| *b == b'\n').enumerate() {
        let line_no = i as i64 + 1;
        let trimmed = line.trim_ascii();
        if trimmed.is_empty() {
            continue;
        }
        out.rows_read += 1;
        let obj =
            match serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(trimmed) {
                Ok(o) => o,
                Err(e) => {
                    let raw = if schema.has_pii() {
                        crate::contract::REDACTED.to_string()
                    } else {
                        String::from_utf8_lossy(trimmed).into_owned()
                    };
                    // the parser's own message may quote the row's content: name the position only
                    let what = match e.classify() {
                        serde_json::error::Category::Data => "not a JSON object",
                        serde_json::error::Category::Eof => "the line ends inside a value",
                        _ => "invalid JSON",
                    };
                    out.rejects.push(
                        format!("malformed_json: {what} at column {}", e.column()),
                        url,
                        line_no,
                        raw,
                    );
                    continue;
                }
            };
        for (k, key) in keys.iter().enumerate() {
            values[k] = obj.get(*key).and_then(|v| match v {
                serde_json::Value::Null => None,
                serde_json::Value::String(s) => Some(s.clone()),
                other => Some(other.to_string()),
            });
            if obj.contains_key(*key) {
                seen_required[k] = true;
            }
        }
        builder.append(line_no, |k| values[k].as_deref());
        if builder.len() >= LANDING_CHUNK_ROWS {
            out.batches.push(builder.finish()?);
        }
    }
    let missing: Vec<&str> = schema
        .columns
        .iter()
        .zip(&seen_required)
        .filter(|(c, seen)| c.required && !**seen)
        .map(|(c, _)| c.name)
        .collect();
    if out.rows_read > 0 && !missing.is_empty() {
        return Err(Error::source(
            name,
            url,
            format!(
                "no row has the required key(s) {}; add them or map them under `sources.{name}.columns`",
                missing.join(", ")
            ),
        ));
    }
    if builder.len() > 0 || out.batches.is_empty() {
        out.batches.push(builder.finish()?);
    }
    Ok(out)
}

fn parse_parquet(
    bytes: &[u8],
    url: &str,
    name: &str,
    src: &SourceConfig,
    schema: &SourceSchema,
    lschema: SchemaRef,
    tz: chrono_tz::Tz,
) -> Result<ParsedFile> {
    use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let bytes = bytes::Bytes::copy_from_slice(bytes);
    let builder = ParquetRecordBatchReaderBuilder::try_new(bytes).map_err(|e| {
        Error::source(
            name,
            url,
            format!("not a readable Parquet file ({e}); check `sources.{name}.format`"),
        )
    })?;
    let header: Vec<String> = builder
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    let mut warnings = Vec::new();
    let map = map_columns(&header, url, name, src, schema, &mut warnings)?;
    let reader = builder
        .with_batch_size(LANDING_CHUNK_ROWS)
        .build()
        .map_err(|e| Error::source(name, url, format!("cannot read Parquet: {e}")))?;
    let mut out = ParsedFile {
        batches: Vec::new(),
        rejects: Rejects::default(),
        rows_read: 0,
        warnings,
    };
    let mut row: i64 = 0;
    for batch in reader {
        let batch =
            batch.map_err(|e| Error::source(name, url, format!("corrupt Parquet data: {e}")))?;
        let mut cols = Vec::with_capacity(map.len());
        for (k, idx) in map.iter().enumerate() {
            let col = match idx {
                Some(j) => Some(
                    datafusion::arrow::compute::cast(batch.column(*j), &DataType::Utf8).map_err(
                        |e| {
                            Error::source(
                                name,
                                url,
                                format!(
                                    "column `{}` cannot be read as text: {e}",
                                    schema.columns[k].name
                                ),
                            )
                        },
                    )?,
                ),
                None => None,
            };
            cols.push(col);
        }
        let mut b = LandingBuilder::new(lschema.clone(), schema, tz, url);
        for r in 0..batch.num_rows() {
            row += 1;
            b.append(row, |k| {
                cols[k].as_ref().and_then(|a| {
                    let s = a.as_string::<i32>();
                    if s.is_null(r) { None } else { Some(s.value(r)) }
                })
            });
        }
        out.rows_read += batch.num_rows() as u64;
        out.batches.push(b.finish()?);
    }
    if out.batches.is_empty() {
        out.batches
            .push(LandingBuilder::new(lschema, schema, tz, url).finish()?);
    }
    Ok(out)
}
