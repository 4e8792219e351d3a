//! Timestamps in the business time zone (`time_zone` in pipeline.yaml).
//!
//! Every timestamp the job computes with is a local wall-clock time of the business: a period is
//! cut by local dates. At extraction each timestamp cell is brought to that form:
//! - with an explicit offset (`2024-06-30T20:00-04:00`, `...Z`, `+0200`): converted to the
//!   business zone's local time (counted as `ts_offset_converted`);
//! - without one: it already is local time. Where the zone has a daylight-saving gap (the local
//!   time does not exist, e.g. 02:30 on the spring-forward night), it is moved forward by the
//!   length of the gap, to the instant the clock showed (counted as `dst_gap_shifted`); where the
//!   zone has a fold (the local time happens twice), the value is kept and read as the earlier of
//!   the two instants when one is needed (counted as `dst_fold_earliest`).
//!
//! Text that is not a timestamp is left as it is: the staging SQL quarantines it with its reason.

use std::borrow::Cow;

use chrono::{DateTime, FixedOffset, LocalResult, NaiveDateTime, Offset, TimeZone};
use chrono_tz::Tz;

/// The normalisation note of an offset converted into the business zone.
pub const OFFSET_CONVERTED: &str = "ts_offset_converted";
/// The normalisation note of a local time in a DST gap, moved forward.
pub const DST_GAP_SHIFTED: &str = "dst_gap_shifted";
/// The normalisation note of a local time in a DST fold (kept, read as the earlier instant).
pub const DST_FOLD: &str = "dst_fold_earliest";

const LOCAL_FORMAT: &str = "%Y-%m-%d %H:%M:%S%.f";

/// Brings one timestamp cell into the business zone's local time; returns the text to land and
/// the normalisation note, if any.
pub fn normalise(text: &str, tz: Tz) -> (Cow<'_, str>, Option<&'static str>) {
    let t = text.trim();
    // a date alone, or text too short to carry a time, is left to the SQL
    if t.len() <= 10 {
        return (Cow::Borrowed(text), None);
    }
    if let Some(dt) = with_offset(t) {
        let local = dt.with_timezone(&tz).naive_local();
        return (
            Cow::Owned(local.format(LOCAL_FORMAT).to_string()),
            Some(OFFSET_CONVERTED),
        );
    }
    if tz == Tz::UTC {
        return (Cow::Borrowed(text), None);
    }
    let Some(naive) = naive(t) else {
        return (Cow::Borrowed(text), None);
    };
    match tz.from_local_datetime(&naive) {
        LocalResult::Single(_) => (Cow::Borrowed(text), None),
        LocalResult::Ambiguous(_, _) => (Cow::Borrowed(text), Some(DST_FOLD)),
        LocalResult::None => match gap_seconds(tz, naive) {
            Some(gap) => {
                let local = naive + chrono::Duration::seconds(gap);
                (
                    Cow::Owned(local.format(LOCAL_FORMAT).to_string()),
                    Some(DST_GAP_SHIFTED),
                )
            }
            None => (Cow::Borrowed(text), None),
        },
    }
}

/// The length of the DST gap `naive` falls in: the zone's offset after it minus before it.
fn gap_seconds(tz: Tz, naive: NaiveDateTime) -> Option<i64> {
    let offset = |t: NaiveDateTime| {
        tz.from_local_datetime(&t)
            .earliest()
            .map(|d| i64::from(d.offset().fix().local_minus_utc()))
    };
    let before = offset(naive - chrono::Duration::hours(6))?;
    let after = offset(naive + chrono::Duration::hours(6))?;
    let gap = after - before;
    let shifted = naive + chrono::Duration::seconds(gap);
    (gap > 0 && tz.from_local_datetime(&shifted).single().is_some()).then_some(gap)
}

/// A timestamp with an explicit offset or `Z`, in the usual export spellings.
fn with_offset(t: &str) -> Option<DateTime<FixedOffset>> {
    // the offset comes after the time: look for Z, + or - past the date
    let tail = &t[10..];
    if !tail.contains(['Z', 'z', '+', '-']) {
        return None;
    }
    let owned;
    let t = if let Some(stripped) = t.strip_suffix(['Z', 'z']) {
        owned = format!("{stripped}+00:00");
        owned.as_str()
    } else {
        t
    };
    for f in [
        "%Y-%m-%dT%H:%M:%S%.f%#z",
        "%Y-%m-%d %H:%M:%S%.f%#z",
        "%Y-%m-%dT%H:%M%#z",
        "%Y-%m-%d %H:%M%#z",
        "%Y-%m-%d %H:%M:%S%.f %#z",
        "%Y-%m-%d %H:%M %#z",
    ] {
        if let Ok(dt) = DateTime::parse_from_str(t, f) {
            return Some(dt);
        }
    }
    None
}

/// A local timestamp without an offset.
fn naive(t: &str) -> Option<NaiveDateTime> {
    [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M",
    ]
    .iter()
    .find_map(|f| NaiveDateTime::parse_from_str(t, f).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ny() -> Tz {
        "America/New_York".parse().unwrap()
    }

    #[test]
    fn an_offset_is_converted_into_the_business_zone() {
        // 20:00 in New York on 30 June is 00:00 UTC on 1 July: a June order for a NY business
        let (t, note) = normalise("2024-06-30T20:00-04:00", ny());
        assert_eq!(
            (t.as_ref(), note),
            ("2024-06-30 20:00:00", Some(OFFSET_CONVERTED))
        );
        let (t, _) = normalise("2024-07-01T00:00:00Z", ny());
        assert_eq!(t, "2024-06-30 20:00:00");
        let (t, _) = normalise("2024-07-01 02:00:00+0200", Tz::UTC);
        assert_eq!(t, "2024-07-01 00:00:00");
        let (t, _) = normalise("2024-07-01T00:00:00.250+00:00", ny());
        assert_eq!(t, "2024-06-30 20:00:00.250");
    }

    #[test]
    fn local_times_are_kept_and_dst_gaps_move_forward() {
        assert_eq!(
            normalise("2024-06-30 20:00:00", ny()),
            (Cow::Borrowed("2024-06-30 20:00:00"), None)
        );
        assert_eq!(normalise("2024-06-30", ny()).1, None);
        // 10 March 2024, New York: 02:00-03:00 does not exist
        let (t, note) = normalise("2024-03-10 02:30:00", ny());
        assert_eq!(
            (t.as_ref(), note),
            ("2024-03-10 03:30:00", Some(DST_GAP_SHIFTED))
        );
        // 3 November 2024: 01:30 happens twice; kept
        let (t, note) = normalise("2024-11-03 01:30:00", ny());
        assert_eq!((t.as_ref(), note), ("2024-11-03 01:30:00", Some(DST_FOLD)));
        // UTC has neither
        assert_eq!(normalise("2024-03-10 02:30:00", Tz::UTC).1, None);
    }

    #[test]
    fn text_that_is_not_a_timestamp_is_left_to_the_sql() {
        for bad in [
            "06/30/2024 08:00 PM",
            "yesterday at noon",
            "",
            "2024-13-45 99:00",
        ] {
            assert_eq!(normalise(bad, ny()), (Cow::Borrowed(bad), None), "{bad}");
        }
    }
}
