//! Times as image configs, labels, SBOMs and provenance spell them: RFC 3339
//! in UTC to the second, always from a `SOURCE_DATE_EPOCH`-like number of
//! seconds and never from the clock, so the documents hash the same on
//! every rebuild.

use chrono::{Datelike as _, SecondsFormat};

/// The last second RFC 3339 can write, 9999-12-31T23:59:59Z: its years
/// have four digits.
pub const LATEST_EPOCH: u64 = 253_402_300_799;

/// `epoch` (seconds since 1970-01-01 UTC) in RFC 3339; `None` outside the
/// years 0 to 9999.
pub fn rfc3339(epoch: i64) -> Option<String> {
    let time = chrono::DateTime::from_timestamp(epoch, 0)?;
    (0..=9999)
        .contains(&time.year())
        .then(|| time.to_rfc3339_opts(SecondsFormat::Secs, true))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_seconds_in_utc() {
        assert_eq!(rfc3339(0).unwrap(), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000).unwrap(), "2023-11-14T22:13:20Z");
        assert_eq!(
            rfc3339(LATEST_EPOCH as i64).unwrap(),
            "9999-12-31T23:59:59Z"
        );
    }

    #[test]
    fn years_past_four_digits_have_no_spelling() {
        assert_eq!(rfc3339(LATEST_EPOCH as i64 + 1), None);
        assert_eq!(rfc3339(i64::MAX), None);
        assert_eq!(rfc3339(i64::MIN), None);
    }
}
