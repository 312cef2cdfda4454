//! RFC 3339 UTC timestamps with microseconds (`2025-11-25T21:28:46.038789Z`), the one
//! form the kernel writes: in every log line and in `created_at` / `updated_at`.
//!
//! Both are written once per request, so the date and time of day are formatted once
//! per second per thread and only the microseconds each time.

use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

/// Appends `at` to `out`.
pub(crate) fn push_utc_micros(out: &mut String, at: SystemTime) {
    thread_local! {
        static SECOND: std::cell::RefCell<(u64, String)> = const { std::cell::RefCell::new((u64::MAX, String::new())) };
    }
    let since = at.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    SECOND.with_borrow_mut(|(cached, text)| {
        if *cached != secs {
            let date = chrono::DateTime::from_timestamp(i64::try_from(secs).unwrap_or(0), 0).unwrap_or_default();
            text.clear();
            let _ = write!(text, "{}", date.format("%Y-%m-%dT%H:%M:%S"));
            *cached = secs;
        }
        out.push_str(text);
    });
    let mut digits = *b".000000Z";
    let mut n = since.subsec_micros();
    for d in digits[1..7].iter_mut().rev() {
        *d = b'0' + (n % 10) as u8;
        n /= 10;
    }
    out.push_str(std::str::from_utf8(&digits).unwrap_or(".000000Z"));
}

/// The current time, as [`push_utc_micros`] writes it.
pub(crate) fn now_utc_micros() -> String {
    let mut out = String::with_capacity(27);
    push_utc_micros(&mut out, SystemTime::now());
    out
}

/// Milliseconds since the Unix epoch, now: the expiry clock of the kernel's SQL
/// stores.
pub(crate) fn now_millis() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// `d` in whole milliseconds (saturating).
pub(crate) fn millis(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::push_utc_micros;

    #[test]
    fn rfc3339_utc_with_microseconds_as_chrono_writes_it() {
        let at = UNIX_EPOCH + Duration::new(1_764_106_126, 38_789_000);
        let mut out = String::new();
        push_utc_micros(&mut out, at);
        assert_eq!(out, "2025-11-25T21:28:46.038789Z");
        let next = at + Duration::from_micros(1_000_001);
        out.clear();
        push_utc_micros(&mut out, next);
        assert_eq!(out, "2025-11-25T21:28:47.038790Z", "the cached second moves on");
        for secs in [0, 951_782_400, 1_709_164_799, 4_102_444_800] {
            for micros in [0, 7, 999_999] {
                let at = UNIX_EPOCH + Duration::new(secs, micros * 1000);
                out.clear();
                push_utc_micros(&mut out, at);
                let chrono: chrono::DateTime<chrono::Utc> = at.into();
                assert_eq!(out, chrono.to_rfc3339_opts(chrono::SecondsFormat::Micros, true));
            }
        }
    }
}
