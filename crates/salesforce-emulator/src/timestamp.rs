//! Wall-clock instants as Salesforce writes them (`2022-01-02T15:41:15.000+0000`). Pure arithmetic on
//! epoch milliseconds; the only place that reads the system clock is [`Millis::now`].

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch, UTC.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct Millis(pub i64);

impl Millis {
    pub fn now() -> Self {
        let elapsed = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        Millis(i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX))
    }

    /// `YYYY-MM-DDThh:mm:ss.SSS+0000`: UTC, milliseconds, an offset without a colon.
    pub fn to_salesforce_datetime(self) -> String {
        let (days, millis_of_day) = (self.0.div_euclid(86_400_000), self.0.rem_euclid(86_400_000));
        let (year, month, day) = civil_from_days(days);
        let seconds_of_day = millis_of_day / 1000;
        format!(
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}+0000",
            seconds_of_day / 3600,
            seconds_of_day / 60 % 60,
            seconds_of_day % 60,
            millis_of_day % 1000
        )
    }

    pub fn saturating_add_millis(self, millis: i64) -> Self {
        Millis(self.0.saturating_add(millis))
    }
}

/// Howard Hinnant's days-to-civil algorithm (proleptic Gregorian calendar).
fn civil_from_days(days_since_epoch: i64) -> (i64, u32, u32) {
    let z = days_since_epoch + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_index + 2) / 5 + 1) as u32;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Whether `text` is a date-time Salesforce's JSON reader accepts: `YYYY-MM-DDThh:mm:ss[.SSS](Z|±hhmm|±hh:mm)`.
pub fn is_salesforce_datetime(text: &str) -> bool {
    let bytes = text.as_bytes();
    if bytes.len() < 20 || !is_salesforce_date(&text[..10]) || bytes[10] != b'T' {
        return false;
    }
    let digits_at = |positions: &[usize]| {
        positions
            .iter()
            .all(|p| bytes.get(*p).is_some_and(u8::is_ascii_digit))
    };
    if !digits_at(&[11, 12, 14, 15, 17, 18]) || bytes[13] != b':' || bytes[16] != b':' {
        return false;
    }
    let mut rest = &text[19..];
    if let Some(fraction) = rest.strip_prefix('.') {
        let digit_count = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if digit_count == 0 {
            return false;
        }
        rest = &fraction[digit_count..];
    }
    match rest.as_bytes() {
        [b'Z'] => true,
        [b'+' | b'-', a, b, c, d] => [a, b, c, d].iter().all(|x| x.is_ascii_digit()),
        [b'+' | b'-', a, b, b':', c, d] => [a, b, c, d].iter().all(|x| x.is_ascii_digit()),
        _ => false,
    }
}

/// `YYYY-MM-DD`.
pub fn is_salesforce_date(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.len() == 10
        && bytes[4] == b'-'
        && bytes[7] == b'-'
        && bytes
            .iter()
            .enumerate()
            .all(|(i, b)| i == 4 || i == 7 || b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_salesforce() {
        assert_eq!(
            Millis(0).to_salesforce_datetime(),
            "1970-01-01T00:00:00.000+0000"
        );
        // 1641138075086 = 2022-01-02T15:41:15.086Z
        assert_eq!(
            Millis(1_641_138_075_086).to_salesforce_datetime(),
            "2022-01-02T15:41:15.086+0000"
        );
        // 2024-02-29T23:59:59.999Z, a leap day.
        assert_eq!(
            Millis(1_709_251_199_999).to_salesforce_datetime(),
            "2024-02-29T23:59:59.999+0000"
        );
    }

    #[test]
    fn recognises_datetimes() {
        assert!(is_salesforce_datetime("2013-08-12T15:20:00.000+0000"));
        assert!(is_salesforce_datetime("2013-08-12T15:20:00Z"));
        assert!(is_salesforce_datetime("2013-08-12T15:20:00+02:00"));
        assert!(!is_salesforce_datetime("2013-08-12 15:20:00"));
        assert!(!is_salesforce_datetime("yesterday"));
        assert!(is_salesforce_date("2013-08-12"));
        assert!(!is_salesforce_date("2013-8-12"));
    }
}
