//! Calendar periods (UTC) for daily and monthly limits.

/// The UTC date of `unix_ms`, as (year, month, day).
pub fn civil_date(unix_ms: u64) -> (i64, u32, u32) {
    // Howard Hinnant's days-to-civil algorithm.
    let days = (unix_ms / 86_400_000) as i64;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// `YYYY-MM-DD` of `unix_ms`.
pub fn day(unix_ms: u64) -> String {
    let (y, m, d) = civil_date(unix_ms);
    format!("{y:04}-{m:02}-{d:02}")
}

/// `YYYY-MM` of `unix_ms`.
pub fn month(unix_ms: u64) -> String {
    let (y, m, _) = civil_date(unix_ms);
    format!("{y:04}-{m:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_dates() {
        assert_eq!(day(0), "1970-01-01");
        assert_eq!(day(951_782_400_000), "2000-02-29");
        assert_eq!(day(1_795_219_199_999), "2026-11-20");
        assert_eq!(month(1_795_219_200_000), "2026-11");
        assert_eq!(day(1_795_219_200_000), "2026-11-21");
    }
}
