//! Periods: the unit a run computes and publishes (`period=2024-06`). The as-of date is an
//! input, never the wall clock.

use std::fmt;

use chrono::{Datelike, Months, NaiveDate};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The period grain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Grain {
    /// Calendar months, labelled `YYYY-MM`.
    #[default]
    Month,
    /// Calendar quarters, labelled `YYYY-Qn`.
    Quarter,
    /// Calendar years, labelled `YYYY`.
    Year,
}

/// How periods are cut (`period:` in pipeline.yaml).
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct PeriodConfig {
    /// `month` (default), `quarter` or `year`.
    pub grain: Grain,
}

/// One period and the as-of date a run computes it at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Period {
    /// The grain.
    pub grain: Grain,
    /// First day of the period.
    pub start: NaiveDate,
    /// Last day of the period.
    pub end: NaiveDate,
    /// The date everything is computed as of (the period's end unless given).
    pub as_of: NaiveDate,
}

impl Period {
    /// The period of `grain` that contains `date`, computed as of `date`.
    pub fn containing(grain: Grain, date: NaiveDate) -> Self {
        let (start, months) = match grain {
            Grain::Month => (date.with_day(1), 1),
            Grain::Quarter => (
                NaiveDate::from_ymd_opt(date.year(), (date.month0() / 3) * 3 + 1, 1),
                3,
            ),
            Grain::Year => (NaiveDate::from_ymd_opt(date.year(), 1, 1), 12),
        };
        let start = start.unwrap_or(date);
        let end = start
            .checked_add_months(Months::new(months))
            .and_then(|d| d.pred_opt())
            .unwrap_or(date);
        Self {
            grain,
            start,
            end,
            as_of: date,
        }
    }

    /// Parses a period label (`2024-06`, `2024-Q2`, `2024`) as of its last day.
    pub fn parse(grain: Grain, label: &str) -> Result<Self> {
        let bad = || {
            Error::Usage(format!(
                "`{label}` is not a {} period; expected {}",
                grain.name(),
                grain.example()
            ))
        };
        let label = label.trim();
        let first = match grain {
            Grain::Month => NaiveDate::parse_from_str(&format!("{label}-01"), "%Y-%m-%d").ok(),
            Grain::Quarter => {
                let (y, q) = label.split_once("-Q").ok_or_else(bad)?;
                let y: i32 = y.parse().map_err(|_| bad())?;
                let q: u32 = q.parse().map_err(|_| bad())?;
                if !(1..=4).contains(&q) {
                    return Err(bad());
                }
                NaiveDate::from_ymd_opt(y, (q - 1) * 3 + 1, 1)
            }
            Grain::Year => label
                .parse::<i32>()
                .ok()
                .and_then(|y| NaiveDate::from_ymd_opt(y, 1, 1)),
        }
        .ok_or_else(bad)?;
        let p = Self::containing(grain, first);
        Ok(Self { as_of: p.end, ..p })
    }

    /// Parses an as-of date (`YYYY-MM-DD`); the period is the one containing it.
    pub fn from_as_of(grain: Grain, as_of: &str) -> Result<Self> {
        let d = NaiveDate::parse_from_str(as_of.trim(), "%Y-%m-%d")
            .map_err(|_| Error::Usage(format!("`{as_of}` is not a date; expected YYYY-MM-DD")))?;
        Ok(Self::containing(grain, d))
    }

    /// The label used in partition paths.
    pub fn label(&self) -> String {
        match self.grain {
            Grain::Month => format!("{:04}-{:02}", self.start.year(), self.start.month()),
            Grain::Quarter => format!("{:04}-Q{}", self.start.year(), self.start.month0() / 3 + 1),
            Grain::Year => format!("{:04}", self.start.year()),
        }
    }

    /// The period before this one, computed as of its end.
    pub fn previous(&self) -> Self {
        let p = Self::containing(self.grain, self.start.pred_opt().unwrap_or(self.start));
        Self { as_of: p.end, ..p }
    }

    /// The period after this one, computed as of its end.
    pub fn next(&self) -> Self {
        let p = Self::containing(self.grain, self.end.succ_opt().unwrap_or(self.end));
        Self { as_of: p.end, ..p }
    }

    /// Whether the as-of date is the period's last day.
    pub fn is_complete(&self) -> bool {
        self.as_of == self.end
    }
}

impl Grain {
    fn name(self) -> &'static str {
        match self {
            Grain::Month => "month",
            Grain::Quarter => "quarter",
            Grain::Year => "year",
        }
    }
    fn example(self) -> &'static str {
        match self {
            Grain::Month => "YYYY-MM, e.g. 2024-06",
            Grain::Quarter => "YYYY-Qn, e.g. 2024-Q2",
            Grain::Year => "YYYY, e.g. 2024",
        }
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.label())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn months_parse_and_roll() {
        let p = Period::parse(Grain::Month, "2024-02").unwrap();
        assert_eq!(
            (p.start, p.end, p.as_of),
            (d("2024-02-01"), d("2024-02-29"), d("2024-02-29"))
        );
        assert_eq!(p.previous().label(), "2024-01");
        assert_eq!(
            Period::parse(Grain::Month, "2024-01")
                .unwrap()
                .previous()
                .label(),
            "2023-12"
        );
        assert_eq!(p.next().label(), "2024-03");
        assert!(Period::parse(Grain::Month, "2024-13").is_err());
    }

    #[test]
    fn quarters_and_years() {
        let q = Period::parse(Grain::Quarter, "2024-Q3").unwrap();
        assert_eq!((q.start, q.end), (d("2024-07-01"), d("2024-09-30")));
        assert_eq!(q.previous().label(), "2024-Q2");
        let y = Period::parse(Grain::Year, "2023").unwrap();
        assert_eq!(y.end, d("2023-12-31"));
        assert!(Period::parse(Grain::Quarter, "2024-Q5").is_err());
    }

    #[test]
    fn as_of_inside_a_period_is_partial() {
        let p = Period::from_as_of(Grain::Month, "2024-06-15").unwrap();
        assert_eq!(p.label(), "2024-06");
        assert!(!p.is_complete());
        assert!(
            Period::from_as_of(Grain::Month, "2024-06-30")
                .unwrap()
                .is_complete()
        );
    }
}
