//! Every timestamp netio renders: RFC 3339 in UTC with microseconds (RFC
//! 5424 syslog, ECS `@timestamp`) and RFC 3164's local time (`/dev/log`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// `2024-05-01T12:34:56.123456Z`: RFC 3339 in UTC with microseconds, as
/// RFC 5424's TIMESTAMP allows. Clamped to the years humantime renders,
/// 1970 to 9999, which the system clock cannot leave.
pub fn rfc3339_utc(t: SystemTime) -> String {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    humantime::format_rfc3339_micros(UNIX_EPOCH + since.min(LAST_RFC3339)).to_string()
}

/// The last instant humantime renders: 9999-12-31T23:59:59.999999999Z.
const LAST_RFC3339: Duration = Duration::new(253_402_300_799, 999_999_999);

/// `May  1 12:34:56`: RFC 3164's TIMESTAMP, in local time.
pub fn rfc3164_local(t: SystemTime) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let secs = t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs() as libc::time_t;
    // SAFETY: a zeroed tm is a valid out-parameter; localtime_r is the
    // thread-safe form and only writes to it.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    if unsafe { libc::localtime_r(&secs, &mut tm) }.is_null() {
        return "Jan  1 00:00:00".into();
    }
    format!(
        "{} {:>2} {:02}:{:02}:{:02}",
        MONTHS[tm.tm_mon.clamp(0, 11) as usize],
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_exact_across_leap_years() {
        let at = |s: u64| rfc3339_utc(UNIX_EPOCH + Duration::from_secs(s));
        assert_eq!(at(0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(at(951_782_400), "2000-02-29T00:00:00.000000Z");
        assert_eq!(at(4_107_542_399), "2100-02-28T23:59:59.000000Z");
        assert_eq!(at(4_107_542_400), "2100-03-01T00:00:00.000000Z");
    }
}
