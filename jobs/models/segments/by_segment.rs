//! Per-segment aggregates of customer-keyed tables, in one pass over each table's rows per
//! scheme: what `segment_summary` groups.
//!
//! Every customer has one label per scheme, so grouping a per-customer table by (scheme,
//! segment) in SQL needs the scheme x customer labels joined to it first: eleven rows per
//! customer at eleven schemes, and most of segment_summary's time went into those joins. Here
//! each scheme's labels are small integer codes per customer, and a row's segment is one index
//! away. The mart keeps the definitions: these tables hold sums and counts (exact: integers and
//! decimals), and segment_summary computes every rate, rank and text from them.
//!
//! Each input (`summary_*`, SQL marts) has a `customer_id` column; its text columns are the
//! grouping keys next to (scheme, segment), and every other column is a measure. The output,
//! `<input>_by_segment`, has one row per (scheme, segment, keys...) with at least one row, in
//! that order, and:
//! - `customers`: the number of rows (`count(*)`);
//! - per integer or decimal measure `m`: `sum_m` (DataFusion's `sum`: Int64, or
//!   Decimal128(min(38, p + 10), s); null when every value is null) and `count_m` (non-null
//!   values);
//! - per decimal measure also `avg_m`, DataFusion's `avg`: Decimal128(min(38, p + 4),
//!   min(38, s + 4)), the sum scaled up and divided by the count, truncated;
//! - per float measure `median_m` (DataFusion's `median`: the mean of the two middle values of
//!   an even count) and `count_m`. Float sums are not offered: their last bits would depend on
//!   the order of the rows.
//!
//! Rows of customers the segments model does not have (an inner join in SQL) are skipped.

use std::collections::HashMap;

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, Decimal128Array, Float64Array, Int64Array, RecordBatch, StringArray,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{
    DECIMAL128_MAX_PRECISION, DECIMAL128_MAX_SCALE, DataType, Decimal128Type, Field, Float64Type,
    Int64Type, Schema,
};
use rayon::prelude::*;

use super::SchemeOutput;

/// A fast fixed-seed hash map (text keys are looked up millions of times).
type Map<K, V> = HashMap<K, V, foldhash::fast::FixedState>;
use crate::error::{Error, Result};

/// The customer-keyed marts grouped by segment, and the tables they are grouped into.
pub const TABLES: [(&str, &str); 4] = [
    ("summary_measures", "summary_measures_by_segment"),
    ("summary_categories", "summary_categories_by_segment"),
    ("summary_channels", "summary_channels_by_segment"),
    ("summary_profiles", "summary_profiles_by_segment"),
];

/// One scheme's labels as codes: `names[codes[customer]]` is the customer's segment.
struct Coded<'a> {
    scheme: &'a str,
    /// Segment names, sorted (the output order).
    names: Vec<&'a str>,
    codes: Vec<u32>,
}

/// Every scheme's labels as codes, and each customer's row.
pub struct Segmentation<'a> {
    schemes: Vec<Coded<'a>>,
    row_of: Map<&'a str, u32>,
}

impl<'a> Segmentation<'a> {
    /// Codes the labels of `outputs`, whose customers are `ids` (in the labels' order).
    pub fn new(ids: &'a StringArray, outputs: &'a [SchemeOutput]) -> Self {
        let schemes = outputs
            .par_iter()
            .map(|o| {
                // codes in order of appearance, then renumbered in name order
                let mut first: Map<&str, u32> = Map::default();
                let mut seen: Vec<&str> = Vec::new();
                let mut codes: Vec<u32> = (0..o.labels.len())
                    .map(|i| {
                        let l = o.label(i);
                        *first.entry(l).or_insert_with(|| {
                            seen.push(l);
                            (seen.len() - 1) as u32
                        })
                    })
                    .collect();
                let mut names = seen.clone();
                names.sort_unstable();
                let mut renumber = vec![0u32; seen.len()];
                for (rank, name) in names.iter().enumerate() {
                    renumber[first[name] as usize] = rank as u32;
                }
                for c in &mut codes {
                    *c = renumber[*c as usize];
                }
                Coded {
                    scheme: &o.scheme,
                    names,
                    codes,
                }
            })
            .collect();
        let row_of = (0..ids.len()).map(|i| (ids.value(i), i as u32)).collect();
        Self { schemes, row_of }
    }
}

/// A measure column, read in the type its aggregates are computed in (one array per input batch).
enum Measure {
    Int(Vec<ArrayRef>),
    Decimal {
        values: Vec<ArrayRef>,
        precision: u8,
        scale: i8,
    },
    Float(Vec<ArrayRef>),
}

/// Per cell (segment x key) of one scheme, the aggregates of one measure.
enum Cells {
    Sum {
        sums: Vec<i128>,
        counts: Vec<i64>,
    },
    Float {
        medians: Vec<Option<f64>>,
        counts: Vec<i64>,
    },
}

/// A row's cell that is not a customer of the segments model.
const SKIP: u32 = u32::MAX;

/// Adds to each cell the sum and the number of the non-null `values` of the rows in it
/// (`cell` per row).
fn add_sums<T: Copy>(
    cell: &[u32],
    values: &[T],
    nulls: Option<&datafusion::arrow::buffer::NullBuffer>,
    sums: &mut [i128],
    counts: &mut [i64],
    wide: impl Fn(T) -> i128,
) {
    match nulls.filter(|n| n.null_count() > 0) {
        Some(n) => {
            for (r, (c, v)) in cell.iter().zip(values).enumerate() {
                if *c != SKIP && n.is_valid(r) {
                    let c = *c as usize;
                    sums[c] = sums[c].wrapping_add(wide(*v));
                    counts[c] += 1;
                }
            }
        }
        None => {
            for (c, v) in cell.iter().zip(values) {
                if *c != SKIP {
                    let c = *c as usize;
                    sums[c] = sums[c].wrapping_add(wide(*v));
                    counts[c] += 1;
                }
            }
        }
    }
}

/// [`add_sums`] checking every addition; None when one overflows.
fn add_checked_sums(
    cell: &[u32],
    values: &[i128],
    nulls: Option<&datafusion::arrow::buffer::NullBuffer>,
    sums: &mut [i128],
    counts: &mut [i64],
) -> Option<()> {
    for (r, (c, v)) in cell.iter().zip(values).enumerate() {
        if *c != SKIP && nulls.is_none_or(|n| n.is_valid(r)) {
            let c = *c as usize;
            sums[c] = sums[c].checked_add(*v)?;
            counts[c] += 1;
        }
    }
    Some(())
}

/// Groups `input`'s rows by every scheme's segment (see the module docs).
pub fn aggregate(input: &str, batches: &[RecordBatch], seg: &Segmentation) -> Result<RecordBatch> {
    let model_err = |message: String| Error::Model {
        model: "segments".into(),
        message,
    };
    // the batches as they came (concatenating a wide table costs more than the grouping)
    // (an empty table comes as one empty batch: its columns still make the output's)
    let schema = batches
        .first()
        .map(|b| b.schema())
        .unwrap_or_else(|| Arc::new(Schema::empty()));
    let column_err = |name: &str, e: datafusion::arrow::error::ArrowError| {
        model_err(format!("`{input}.{name}`: {e}"))
    };
    let column = |name: &str, ty: &DataType| -> Result<Vec<ArrayRef>> {
        batches
            .iter()
            .map(|b| {
                let c = b.column_by_name(name).ok_or_else(|| {
                    model_err(format!("input table `{input}` has no column `{name}`"))
                })?;
                cast(c, ty).map_err(|e| column_err(name, e))
            })
            .collect()
    };
    let mut rows: Vec<Option<u32>> = Vec::new();
    for ids in column("customer_id", &DataType::Utf8)? {
        let ids = ids.as_string::<i32>();
        rows.extend((0..ids.len()).map(|i| {
            if ids.is_null(i) {
                None
            } else {
                seg.row_of.get(ids.value(i)).copied()
            }
        }));
    }

    let mut key_names = Vec::new();
    let mut keys: Vec<Vec<ArrayRef>> = Vec::new();
    let mut measure_names = Vec::new();
    let mut measures = Vec::new();
    for field in schema.fields() {
        let name = field.name().as_str();
        if name == "customer_id" {
            continue;
        }
        let measure = match field.data_type() {
            DataType::Utf8
            | DataType::LargeUtf8
            | DataType::Utf8View
            | DataType::Dictionary(..) => {
                key_names.push(name.to_string());
                keys.push(column(name, &DataType::Utf8)?);
                continue;
            }
            DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::UInt8
            | DataType::UInt16
            | DataType::UInt32 => Measure::Int(column(name, &DataType::Int64)?),
            DataType::Decimal128(p, s) => Measure::Decimal {
                values: column(name, field.data_type())?,
                precision: *p,
                scale: *s,
            },
            DataType::Float32 | DataType::Float64 => {
                Measure::Float(column(name, &DataType::Float64)?)
            }
            other => {
                return Err(model_err(format!(
                    "`{input}.{name}` is {other}; a segment summary input has text keys and \
                     integer, decimal or float measures"
                )));
            }
        };
        measure_names.push(name.to_string());
        measures.push(measure);
    }

    // each row's key: per key column a number per distinct value, combined in mixed radix and
    // numbered in order of appearance, then ranked by value for the output
    let mut key_values: Vec<Vec<Option<&str>>> = Vec::new();
    let row_key: Vec<u32> = if keys.is_empty() {
        key_values.push(Vec::new());
        vec![0; rows.len()]
    } else {
        let mut combined = vec![0u64; rows.len()];
        let mut values_of: Vec<Vec<Option<&str>>> = Vec::with_capacity(keys.len());
        for arrays in &keys {
            let mut id_of: Map<Option<&str>, u32> = Map::default();
            let mut values: Vec<Option<&str>> = Vec::new();
            let mut ids: Vec<u32> = Vec::with_capacity(rows.len());
            for a in arrays {
                let a = a.as_string::<i32>();
                ids.extend((0..a.len()).map(|r| {
                    let v = (!a.is_null(r)).then(|| a.value(r));
                    *id_of.entry(v).or_insert_with(|| {
                        values.push(v);
                        (values.len() - 1) as u32
                    })
                }));
            }
            let radix = values.len().max(1) as u64;
            for (c, id) in combined.iter_mut().zip(ids) {
                *c = c
                    .checked_mul(radix)
                    .and_then(|c| c.checked_add(u64::from(id)))
                    .ok_or_else(|| model_err(format!("`{input}` has too many distinct keys")))?;
            }
            values_of.push(values);
        }
        let mut key_of: Map<u64, u32> = Map::default();
        let mut codes: Vec<u64> = Vec::new();
        let row_key = combined
            .iter()
            .map(|c| {
                *key_of.entry(*c).or_insert_with(|| {
                    codes.push(*c);
                    (codes.len() - 1) as u32
                })
            })
            .collect();
        for code in codes {
            let mut rest = code;
            let mut k = vec![None; keys.len()];
            for (i, values) in values_of.iter().enumerate().rev() {
                let radix = values.len().max(1) as u64;
                k[i] = values[(rest % radix) as usize];
                rest /= radix;
            }
            key_values.push(k);
        }
        row_key
    };
    let n_keys = key_values.len();
    let mut key_order: Vec<u32> = (0..n_keys as u32).collect();
    key_order.sort_by(|a, b| key_values[*a as usize].cmp(&key_values[*b as usize]));

    // per scheme, each row's cell (segment x key; SKIP: not a customer of the model)
    let per_scheme: Vec<(Vec<i64>, Vec<Cells>)> = seg
        .schemes
        .par_iter()
        .map(|s| {
            let n_cells = s.names.len() * n_keys;
            let cell: Vec<u32> = rows
                .iter()
                .zip(&row_key)
                .map(|(c, k)| c.map_or(SKIP, |c| s.codes[c as usize] * n_keys as u32 + k))
                .collect();
            let mut customers = vec![0i64; n_cells];
            for c in &cell {
                if *c != SKIP {
                    customers[*c as usize] += 1;
                }
            }
            let cells = measures
                .iter()
                .zip(&measure_names)
                .map(|(m, name)| match m {
                    Measure::Int(arrays) => {
                        let mut sums = vec![0i128; n_cells];
                        let mut counts = vec![0i64; n_cells];
                        let mut r0 = 0;
                        for a in arrays {
                            let a = a.as_primitive::<Int64Type>();
                            let cell = &cell[r0..r0 + a.len()];
                            add_sums(cell, a.values(), a.nulls(), &mut sums, &mut counts, |v| {
                                i128::from(v)
                            });
                            r0 += a.len();
                        }
                        Ok(Cells::Sum { sums, counts })
                    }
                    Measure::Decimal {
                        values: arrays,
                        precision,
                        ..
                    } => {
                        let mut sums = vec![0i128; n_cells];
                        let mut counts = vec![0i64; n_cells];
                        let mut r0 = 0;
                        for a in arrays {
                            let a = a.as_primitive::<Decimal128Type>();
                            let cell = &cell[r0..r0 + a.len()];
                            r0 += a.len();
                            // below 29 digits, 2^32 rows cannot overflow an i128
                            if *precision <= 28 {
                                add_sums(
                                    cell,
                                    a.values(),
                                    a.nulls(),
                                    &mut sums,
                                    &mut counts,
                                    |v| v,
                                );
                            } else {
                                add_checked_sums(
                                    cell,
                                    a.values(),
                                    a.nulls(),
                                    &mut sums,
                                    &mut counts,
                                )
                                .ok_or_else(|| {
                                    model_err(format!("the sum of `{input}.{name}` overflows"))
                                })?;
                            }
                        }
                        Ok(Cells::Sum { sums, counts })
                    }
                    Measure::Float(arrays) => {
                        let mut values = vec![Vec::new(); n_cells];
                        let mut r0 = 0;
                        for a in arrays {
                            let a = a.as_primitive::<Float64Type>();
                            for (i, v) in a.values().iter().enumerate() {
                                let c = cell[r0 + i];
                                if c != SKIP && a.is_valid(i) {
                                    values[c as usize].push(*v);
                                }
                            }
                            r0 += a.len();
                        }
                        let counts = values.iter().map(|v| v.len() as i64).collect();
                        let medians = values.iter_mut().map(|v| median(v)).collect();
                        Ok(Cells::Float { medians, counts })
                    }
                })
                .collect::<Result<Vec<_>>>()?;
            Ok((customers, cells))
        })
        .collect::<Result<_>>()?;

    // the output rows: (scheme, segment, key) cells with at least one row, in that order
    let mut out_rows: Vec<(usize, usize)> = Vec::new(); // (scheme, cell)
    for (si, s) in seg.schemes.iter().enumerate() {
        for g in 0..s.names.len() {
            for k in &key_order {
                let cell = g * n_keys + *k as usize;
                if per_scheme[si].0[cell] > 0 {
                    out_rows.push((si, cell));
                }
            }
        }
    }
    let mut fields = vec![
        Field::new("scheme", DataType::Utf8, false),
        Field::new("segment", DataType::Utf8, false),
    ];
    let mut cols: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(
            out_rows.iter().map(|(si, _)| seg.schemes[*si].scheme),
        )),
        Arc::new(StringArray::from_iter_values(
            out_rows
                .iter()
                .map(|(si, cell)| seg.schemes[*si].names[cell / n_keys]),
        )),
    ];
    for (ki, name) in key_names.iter().enumerate() {
        fields.push(Field::new(name, DataType::Utf8, true));
        cols.push(Arc::new(StringArray::from_iter(
            out_rows
                .iter()
                .map(|(_, cell)| key_values[cell % n_keys][ki]),
        )));
    }
    fields.push(Field::new("customers", DataType::Int64, false));
    cols.push(Arc::new(Int64Array::from_iter_values(
        out_rows.iter().map(|(si, cell)| per_scheme[*si].0[*cell]),
    )));
    for (mi, (name, measure)) in measure_names.iter().zip(&measures).enumerate() {
        let cells = |si: usize| &per_scheme[si].1[mi];
        let count_of = |si: usize, cell: usize| match cells(si) {
            Cells::Sum { counts, .. } | Cells::Float { counts, .. } => counts[cell],
        };
        // DataFusion's sum: null when no value is
        let sum_of = |si: usize, cell: usize| match cells(si) {
            Cells::Sum { sums, counts } => (counts[cell] > 0).then_some(sums[cell]),
            Cells::Float { .. } => None,
        };
        match measure {
            Measure::Int(_) => {
                fields.push(Field::new(format!("sum_{name}"), DataType::Int64, true));
                let sums = out_rows
                    .iter()
                    .map(|(si, cell)| {
                        sum_of(*si, *cell)
                            .map(i64::try_from)
                            .transpose()
                            .map_err(|_| {
                                model_err(format!("the sum of `{input}.{name}` overflows"))
                            })
                    })
                    .collect::<Result<Int64Array>>()?;
                cols.push(Arc::new(sums));
            }
            Measure::Decimal {
                precision, scale, ..
            } => {
                let sum_type =
                    DataType::Decimal128(DECIMAL128_MAX_PRECISION.min(precision + 10), *scale);
                let avg_precision = DECIMAL128_MAX_PRECISION.min(precision + 4);
                let avg_scale = DECIMAL128_MAX_SCALE.min(scale + 4);
                let up = 10i128.pow((avg_scale - scale) as u32);
                let sums: Vec<Option<i128>> = out_rows
                    .iter()
                    .map(|(si, cell)| sum_of(*si, *cell))
                    .collect();
                let avgs = out_rows
                    .iter()
                    .zip(&sums)
                    .map(|((si, cell), sum)| match sum {
                        Some(v) => v
                            .checked_mul(up)
                            .map(|v| Some(v / i128::from(count_of(*si, *cell))))
                            .ok_or_else(|| {
                                model_err(format!("the mean of `{input}.{name}` overflows"))
                            }),
                        None => Ok(None),
                    })
                    .collect::<Result<Vec<_>>>()?;
                let decimal = |v: Vec<Option<i128>>, ty: &DataType| -> Result<ArrayRef> {
                    let (p, s) = match ty {
                        DataType::Decimal128(p, s) => (*p, *s),
                        _ => unreachable!("a decimal type"),
                    };
                    let a = Decimal128Array::from(v)
                        .with_precision_and_scale(p, s)
                        .map_err(|e| model_err(format!("`{input}.{name}`: {e}")))?;
                    a.validate_decimal_precision(p).map_err(|e| {
                        model_err(format!("the sum or mean of `{input}.{name}`: {e}"))
                    })?;
                    Ok(Arc::new(a))
                };
                fields.push(Field::new(format!("sum_{name}"), sum_type.clone(), true));
                cols.push(decimal(sums, &sum_type)?);
                let avg_type = DataType::Decimal128(avg_precision, avg_scale);
                fields.push(Field::new(format!("avg_{name}"), avg_type.clone(), true));
                cols.push(decimal(avgs, &avg_type)?);
            }
            Measure::Float(_) => {
                fields.push(Field::new(
                    format!("median_{name}"),
                    DataType::Float64,
                    true,
                ));
                cols.push(Arc::new(Float64Array::from_iter(out_rows.iter().map(
                    |(si, cell)| match cells(*si) {
                        Cells::Float { medians, .. } => medians[*cell],
                        Cells::Sum { .. } => None,
                    },
                ))));
            }
        }
        fields.push(Field::new(format!("count_{name}"), DataType::Int64, false));
        cols.push(Arc::new(Int64Array::from_iter_values(
            out_rows.iter().map(|(si, cell)| count_of(*si, *cell)),
        )));
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), cols)
        .map_err(|e| Error::Internal(format!("{input} by segment: {e}")))
}

/// DataFusion's `median` of floats: the middle value, or the mean of the two middle values of
/// an even count (total order); None when empty.
fn median(values: &mut [f64]) -> Option<f64> {
    let n = values.len();
    if n == 0 {
        return None;
    }
    let (low, mid, _) = values.select_nth_unstable_by(n / 2, f64::total_cmp);
    if n % 2 == 1 {
        return Some(*mid);
    }
    let left = low.iter().copied().max_by(f64::total_cmp)?;
    Some((left + *mid) / 2.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn output(scheme: &str, labels: &[&str]) -> SchemeOutput {
        let mut o = SchemeOutput::new(scheme);
        o.labels = StringArray::from_iter_values(labels);
        o
    }

    #[test]
    fn median_matches_datafusion_semantics() {
        assert_eq!(median(&mut []), None);
        assert_eq!(median(&mut [3.0]), Some(3.0));
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&mut [5.0, 1.0, 3.0]), Some(3.0));
    }

    #[test]
    fn groups_every_scheme_with_keys_sums_counts_and_truncated_decimal_means() {
        let ids = StringArray::from(vec!["a", "b", "c"]);
        let outputs = vec![
            output("s1", &["x", "y", "x"]),
            output("s2", &["z", "z", "z"]),
        ];
        let seg = Segmentation::new(&ids, &outputs);
        let schema = Arc::new(Schema::new(vec![
            Field::new("customer_id", DataType::Utf8, false),
            Field::new("category", DataType::Utf8, true),
            Field::new("n", DataType::Int32, true),
            Field::new("spend", DataType::Decimal128(18, 2), true),
            Field::new("v", DataType::Float64, true),
        ]));
        let batch = RecordBatch::try_new(
            schema,
            vec![
                // "d" is not a customer of the segments model: skipped, as an inner join would
                Arc::new(StringArray::from(vec!["a", "c", "b", "c", "d"])),
                Arc::new(StringArray::from(vec![
                    Some("k"),
                    Some("k"),
                    None,
                    Some("k"),
                    Some("k"),
                ])),
                Arc::new(datafusion::arrow::array::Int32Array::from(vec![
                    Some(1),
                    None,
                    Some(5),
                    Some(2),
                    Some(9),
                ])),
                Arc::new(
                    Decimal128Array::from(vec![Some(100), Some(1), Some(7), None, Some(3)])
                        .with_precision_and_scale(18, 2)
                        .unwrap(),
                ),
                Arc::new(Float64Array::from(vec![
                    Some(1.0),
                    Some(4.0),
                    None,
                    Some(2.0),
                    Some(0.0),
                ])),
            ],
        )
        .unwrap();
        let out = aggregate("t", &[batch], &seg).unwrap();
        let text =
            datafusion::arrow::util::pretty::pretty_format_batches(std::slice::from_ref(&out))
                .unwrap()
                .to_string();
        let expected = "\
+--------+---------+----------+-----------+-------+---------+-----------+-----------+-------------+----------+---------+
| scheme | segment | category | customers | sum_n | count_n | sum_spend | avg_spend | count_spend | median_v | count_v |
+--------+---------+----------+-----------+-------+---------+-----------+-----------+-------------+----------+---------+
| s1     | x       | k        | 3         | 3     | 2       | 1.01      | 0.505000  | 2           | 2.0      | 3       |
| s1     | y       |          | 1         | 5     | 1       | 0.07      | 0.070000  | 1           |          | 0       |
| s2     | z       |          | 1         | 5     | 1       | 0.07      | 0.070000  | 1           |          | 0       |
| s2     | z       | k        | 3         | 3     | 2       | 1.01      | 0.505000  | 2           | 2.0      | 3       |
+--------+---------+----------+-----------+-------+---------+-----------+-----------+-------------+----------+---------+";
        assert_eq!(text, expected, "{text}");
        assert_eq!(
            out.schema().field(6).data_type(),
            &DataType::Decimal128(28, 2)
        );
        assert_eq!(
            out.schema().field(7).data_type(),
            &DataType::Decimal128(22, 6)
        );
    }

    #[test]
    fn a_mean_is_truncated_like_datafusion_avg() {
        let ids = StringArray::from(vec!["a", "b", "c"]);
        let outputs = vec![output("s", &["x", "x", "x"])];
        let seg = Segmentation::new(&ids, &outputs);
        let schema = Arc::new(Schema::new(vec![
            Field::new("customer_id", DataType::Utf8, false),
            Field::new("m", DataType::Decimal128(18, 0), true),
        ]));
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(StringArray::from(vec!["a", "b", "c"])),
                Arc::new(
                    Decimal128Array::from(vec![Some(1), Some(1), Some(-3)])
                        .with_precision_and_scale(18, 0)
                        .unwrap(),
                ),
            ],
        )
        .unwrap();
        let out = aggregate("t", &[batch], &seg).unwrap();
        let avg = out.column_by_name("avg_m").unwrap();
        // -1/3 with four more digits, truncated toward zero
        assert_eq!(avg.as_primitive::<Decimal128Type>().value(0), -3333);
    }
}
