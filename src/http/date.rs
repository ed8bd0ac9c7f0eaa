//! The `Date` of a response (RFC 9110 §6.6.1), as an IMF-fixdate (§5.6.7):
//! `Sun, 06 Nov 1994 08:49:37 GMT`. No dependency: days since the epoch become a civil
//! date by H. Hinnant's `civil_from_days`.

use std::time::{SystemTime, UNIX_EPOCH};

const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// `secs` seconds after 1970-01-01 00:00:00 UTC as an IMF-fixdate.
pub fn imf_fixdate(secs: u64) -> String {
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    format!(
        "{}, {day:02} {} {year:04} {:02}:{:02}:{:02} GMT",
        DAYS[(days % 7) as usize],
        MONTHS[(month - 1) as usize],
        rest / 3600,
        rest / 60 % 60,
        rest % 60
    )
}

/// The current time as an IMF-fixdate (a clock set before 1970 reads as the epoch).
pub fn now() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    imf_fixdate(secs)
}

#[cfg(test)]
mod tests {
    use super::imf_fixdate;

    #[test]
    fn known_timestamps() {
        for (secs, want) in [
            (0, "Thu, 01 Jan 1970 00:00:00 GMT"),
            (784_111_777, "Sun, 06 Nov 1994 08:49:37 GMT"),
            // Leap days: a year divisible by 4, by 400 (2000), and the day after.
            (68_169_600, "Tue, 29 Feb 1972 00:00:00 GMT"),
            (951_782_400, "Tue, 29 Feb 2000 00:00:00 GMT"),
            (951_868_800, "Wed, 01 Mar 2000 00:00:00 GMT"),
            (1_709_251_199, "Thu, 29 Feb 2024 23:59:59 GMT"),
            (1_709_251_200, "Fri, 01 Mar 2024 00:00:00 GMT"),
            // 2100 is not a leap year: 28 Feb is followed by 1 Mar.
            (4_107_542_399, "Sun, 28 Feb 2100 23:59:59 GMT"),
            (4_107_542_400, "Mon, 01 Mar 2100 00:00:00 GMT"),
            (946_684_799, "Fri, 31 Dec 1999 23:59:59 GMT"),
            (2_147_483_648, "Tue, 19 Jan 2038 03:14:08 GMT"),
            (253_402_300_799, "Fri, 31 Dec 9999 23:59:59 GMT"),
        ] {
            assert_eq!(imf_fixdate(secs), want, "{secs}");
        }
    }

    #[test]
    fn every_day_for_600_years_follows_the_one_before() {
        let weekday = |s: &str| super::DAYS.iter().position(|d| s.starts_with(d)).unwrap();
        let mut prev = imf_fixdate(0);
        for day in 1..(600 * 366) {
            let s = imf_fixdate(day * 86_400);
            assert_eq!(s.len(), 29, "{s}");
            assert!(s.ends_with(" 00:00:00 GMT"), "{s}");
            let (d, pd) = (&s[5..7], &prev[5..7]);
            let d: u32 = d.parse().unwrap();
            let pd: u32 = pd.parse().unwrap();
            assert!(d == pd + 1 || (d == 1 && pd >= 28), "{prev} -> {s}");
            assert_eq!(weekday(&s), (weekday(&prev) + 1) % 7, "{prev} -> {s}");
            prev = s;
        }
    }
}
