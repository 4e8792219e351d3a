//! Time as the generator keeps it: whole days or seconds counted from `start` 00:00, local
//! business time without a zone, formatted as `YYYY-MM-DD` and `YYYY-MM-DD HH:MM:SS`.

use std::fmt;

use chrono::{Datelike, NaiveDate};

/// Seconds per day.
pub(super) const DAY: i64 = 86_400;

/// Seconds per week, the process time unit.
pub(super) const WEEK: f64 = 7.0 * 86_400.0;

/// Maps day offsets from `start` to calendar dates.
#[derive(Debug, Clone)]
pub(super) struct Calendar {
    start_ce: i32,
    /// Day offset of `end` (the observation window is days 0..=end_day).
    pub(super) end_day: i64,
}

impl Calendar {
    /// A calendar for [start, end]; `end` must not be before `start`.
    pub(super) fn new(start: NaiveDate, end: NaiveDate) -> Self {
        Self {
            start_ce: start.num_days_from_ce(),
            end_day: (end - start).num_days(),
        }
    }

    /// The date `day` days after start (negative: before).
    pub(super) fn date(&self, day: i64) -> NaiveDate {
        i32::try_from(day + i64::from(self.start_ce))
            .ok()
            .and_then(NaiveDate::from_num_days_from_ce_opt)
            .unwrap_or(NaiveDate::MIN)
    }

    /// The day offset of a date.
    pub(super) fn day_of(&self, date: NaiveDate) -> i64 {
        i64::from(date.num_days_from_ce()) - i64::from(self.start_ce)
    }

    /// Display of a day offset as `YYYY-MM-DD`.
    pub(super) fn d(&self, day: i64) -> DateText {
        DateText(self.date(day))
    }

    /// Display of seconds since start as `YYYY-MM-DD HH:MM:SS`.
    pub(super) fn ts(&self, secs: i64) -> TsText {
        TsText(self.date(secs.div_euclid(DAY)), secs.rem_euclid(DAY))
    }

    /// The first second after the observation window (end + 1 day, 00:00).
    pub(super) fn horizon_secs(&self) -> i64 {
        (self.end_day + 1) * DAY
    }
}

/// A date as `YYYY-MM-DD`.
pub(super) struct DateText(pub(super) NaiveDate);

impl fmt::Display for DateText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:04}-{:02}-{:02}",
            self.0.year(),
            self.0.month(),
            self.0.day()
        )
    }
}

/// A timestamp as `YYYY-MM-DD HH:MM:SS`.
pub(super) struct TsText(NaiveDate, i64);

impl fmt::Display for TsText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.1;
        write!(
            f,
            "{} {:02}:{:02}:{:02}",
            DateText(self.0),
            s / 3600,
            (s / 60) % 60,
            s % 60
        )
    }
}
