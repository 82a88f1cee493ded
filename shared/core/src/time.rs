//! UTC time: epoch milliseconds ⇄ RFC 3339, by the `time` crate.

use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::OffsetDateTime;

/// Formats epoch milliseconds as `YYYY-MM-DDTHH:MM:SS.mmmZ`. An instant outside the years
/// -9999..=9999 is shown as the nearest one inside (the hub's clock never gets there).
pub fn format_rfc3339(ms: i64) -> String {
    let nanos = i128::from(ms) * 1_000_000;
    let at = OffsetDateTime::from_unix_timestamp_nanos(nanos).unwrap_or(if ms < 0 {
        time::PrimitiveDateTime::MIN.assume_utc()
    } else {
        time::PrimitiveDateTime::MAX.assume_utc()
    });
    let shape = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
    at.format(&shape).unwrap_or_default()
}

/// Parses RFC 3339 (`2024-05-01T10:00:00Z`, fractional seconds and `±HH:MM` offsets allowed; a
/// space in place of the `T`, as RFC 3339 permits). Fractions finer than a millisecond are cut.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let spaced =
        s.len() > 10 && s.as_bytes().get(10) == Some(&b' ') && s.is_char_boundary(10) && s.is_char_boundary(11);
    let text = if spaced { std::borrow::Cow::Owned(format!("{}T{}", &s[..10], &s[11..])) } else { s.into() };
    let at = OffsetDateTime::parse(&text, &Rfc3339).ok()?;
    i64::try_from(at.unix_timestamp_nanos().div_euclid(1_000_000)).ok()
}

/// Current time in epoch milliseconds.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        for ms in [0, 1_700_000_000_123, 951_782_400_000, -86_400_000] {
            assert_eq!(parse_rfc3339(&format_rfc3339(ms)), Some(ms));
        }
        assert_eq!(format_rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(parse_rfc3339("2024-02-29T12:00:00+02:00"), parse_rfc3339("2024-02-29T10:00:00Z"));
        assert_eq!(parse_rfc3339("2023-02-29T12:00:00Z"), None);
        assert_eq!(parse_rfc3339("yesterday"), None);
        assert_eq!(parse_rfc3339("2024-01-01T00:00:00"), None);
        assert_eq!(parse_rfc3339("2024-01-01T00:00:00+€ab"), None, "non-ASCII never panics");
        assert_eq!(parse_rfc3339("2024-01-01T00:00:00.€Z"), None);
    }

    /// Leap years, offsets either side, fractions of any length, a space for the `T`, and the
    /// shapes RFC 3339 refuses.
    #[test]
    fn rfc_3339_edges() {
        assert_eq!(parse_rfc3339("2000-02-29T00:00:00Z"), Some(951_782_400_000));
        assert_eq!(parse_rfc3339("1900-02-29T00:00:00Z"), None, "1900 is not a leap year");
        assert_eq!(parse_rfc3339("2024-05-01T10:00:00-05:30"), parse_rfc3339("2024-05-01T15:30:00Z"));
        assert_eq!(parse_rfc3339("2024-05-01t10:00:00z"), parse_rfc3339("2024-05-01T10:00:00Z"));
        assert_eq!(parse_rfc3339("2024-05-01 10:00:00Z"), parse_rfc3339("2024-05-01T10:00:00Z"));
        assert_eq!(
            parse_rfc3339("2024-05-01T10:00:00.5Z"),
            Some(parse_rfc3339("2024-05-01T10:00:00Z").unwrap_or(0) + 500)
        );
        assert_eq!(
            parse_rfc3339("2024-05-01T10:00:00.123456789Z"),
            Some(parse_rfc3339("2024-05-01T10:00:00Z").unwrap_or(0) + 123)
        );
        for bad in [
            "2024-05-01T10:00Z",
            "2024-13-01T10:00:00Z",
            "2024-05-01T24:00:00Z",
            "2024-05-01T10:00:00+0100",
            "2024-05-01T10:00:00.Z",
            "2024-05-01",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
        assert_eq!(format_rfc3339(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
        assert_eq!(format_rfc3339(-1), "1969-12-31T23:59:59.999Z");
    }
}
