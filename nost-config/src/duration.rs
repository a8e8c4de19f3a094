//! Durations as NOS-T writes them: `"H:MM:SS"` in YAML, ISO-8601 on the wire.
//!
//! ```
//! use nost_config::NostDuration;
//!
//! let step: NostDuration = "0:01:30".parse().unwrap();
//! assert_eq!(step, NostDuration::seconds(90));
//! assert_eq!(step.to_iso8601(), "PT1M30S"); // what goes on the wire
//! assert_eq!("P1DT3S".parse::<NostDuration>().unwrap().as_secs_f64(), 86_403.0);
//! assert_eq!("1 day, 0:00:01".parse::<NostDuration>().unwrap(), NostDuration::seconds(86_401));
//! assert!("soon".parse::<NostDuration>().is_err());
//! ```

use std::fmt;
use std::str::FromStr;

use chrono::TimeDelta;
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A signed duration with microsecond precision, as pydantic's `timedelta`.
///
/// Accepted input (what `nost_tools` accepts):
/// `"H:MM:SS"` (hours may exceed 23), `"H:MM:SS.ffffff"`, `"1 day, 0:00:01"`,
/// `"2 days, 1:00:00"`, ISO-8601 (`"PT90S"`, `"P1D"`, `"P1Y35D"`, `"-PT1S"`),
/// `"1d"`, and plain numbers of seconds (fractions allowed).
///
/// Output is ISO-8601 in the form pydantic 2.13 writes (`PT1M30S`, `PT12H`,
/// `P1DT3S`, `PT0.5S`, `PT0S`, `-PT1S`, 400 days as `P1Y35D`).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct NostDuration(TimeDelta);

impl NostDuration {
    /// Zero length.
    pub const ZERO: NostDuration = NostDuration(TimeDelta::zero());

    /// The longest duration (about 292,000 years): `i64::MAX` microseconds,
    /// the range of a Python `timedelta` in microseconds and more than any
    /// datetime span.
    pub const MAX: NostDuration = NostDuration(TimeDelta::microseconds(i64::MAX));
    /// The most negative duration.
    pub const MIN: NostDuration = NostDuration(TimeDelta::microseconds(-i64::MAX));

    /// From whole seconds, saturating at [`MAX`](Self::MAX) / [`MIN`](Self::MIN)
    /// (use [`try_seconds`](Self::try_seconds) to refuse out-of-range values).
    pub fn seconds(secs: i64) -> Self {
        Self::try_seconds(secs).unwrap_or(if secs < 0 { Self::MIN } else { Self::MAX })
    }

    /// From whole seconds; `None` beyond about 292,000 years.
    pub fn try_seconds(secs: i64) -> Option<Self> {
        secs.checked_mul(1_000_000)
            .filter(|us| *us != i64::MIN)
            .map(NostDuration::microseconds)
    }

    /// From microseconds (`i64::MIN` is taken as `-i64::MAX`).
    pub fn microseconds(us: i64) -> Self {
        NostDuration(TimeDelta::microseconds(us.max(-i64::MAX)))
    }

    /// From fractional seconds, rounded to the microsecond. `None` when not
    /// finite or beyond about 292,000 years.
    pub fn from_secs_f64(secs: f64) -> Option<Self> {
        let us = (secs * 1e6).round();
        if !us.is_finite() || us.abs() >= 9.2e18 {
            return None;
        }
        Some(NostDuration::microseconds(us as i64))
    }

    /// The chrono value.
    pub fn as_delta(&self) -> TimeDelta {
        self.0
    }

    /// Total microseconds.
    pub fn as_micros(&self) -> i64 {
        self.0
            .num_microseconds()
            .unwrap_or(if self.0 < TimeDelta::zero() {
                -i64::MAX
            } else {
                i64::MAX
            })
    }

    /// Seconds as a float.
    pub fn as_secs_f64(&self) -> f64 {
        self.as_micros() as f64 / 1e6
    }

    /// A `std` duration; negative values become zero.
    pub fn to_std(&self) -> std::time::Duration {
        self.0.to_std().unwrap_or_default()
    }

    /// Multiply by a float factor (the `is_scenario_time_step` scaling rule);
    /// `None` when the result is not finite or out of range.
    pub fn scaled(&self, factor: f64) -> Option<Self> {
        NostDuration::from_secs_f64(self.as_secs_f64() * factor)
    }

    /// True for a zero duration.
    pub fn is_zero(&self) -> bool {
        self.0.is_zero()
    }

    /// True for a negative duration.
    pub fn is_negative(&self) -> bool {
        self.0 < TimeDelta::zero()
    }

    /// The ISO-8601 text `nost_tools` 3.6.0 (pydantic 2.13) writes.
    pub fn to_iso8601(&self) -> String {
        let signed = self.as_micros();
        let us = signed.unsigned_abs();
        let mut out = String::new();
        if signed < 0 {
            out.push('-');
        }
        out.push('P');
        let total_secs = us / 1_000_000;
        let frac = us % 1_000_000;
        let mut days = total_secs / 86_400;
        let rem = total_secs % 86_400;
        let years = days / 365;
        days %= 365;
        if years > 0 {
            out.push_str(&format!("{years}Y"));
        }
        if days > 0 {
            out.push_str(&format!("{days}D"));
        }
        let (h, m, s) = (rem / 3600, (rem % 3600) / 60, rem % 60);
        let has_time = h > 0 || m > 0 || s > 0 || frac > 0;
        if has_time || (years == 0 && days == 0) {
            out.push('T');
            if h > 0 {
                out.push_str(&format!("{h}H"));
            }
            if m > 0 {
                out.push_str(&format!("{m}M"));
            }
            if s > 0 || frac > 0 || (h == 0 && m == 0) {
                if frac > 0 {
                    let f = format!("{frac:06}");
                    out.push_str(&format!("{s}.{}S", f.trim_end_matches('0')));
                } else {
                    out.push_str(&format!("{s}S"));
                }
            }
        }
        out
    }

    /// `H:MM:SS` (or `H:MM:SS.ffffff`), the form used in YAML files.
    pub fn to_hms(&self) -> String {
        let us = self.as_micros();
        let sign = if us < 0 { "-" } else { "" };
        let us = us.unsigned_abs();
        let secs = us / 1_000_000;
        let frac = us % 1_000_000;
        let (h, m, s) = (secs / 3600, (secs % 3600) / 60, secs % 60);
        if frac > 0 {
            format!("{sign}{h}:{m:02}:{s:02}.{frac:06}")
        } else {
            format!("{sign}{h}:{m:02}:{s:02}")
        }
    }
}

impl From<std::time::Duration> for NostDuration {
    fn from(d: std::time::Duration) -> Self {
        NostDuration::microseconds(i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
    }
}

impl From<TimeDelta> for NostDuration {
    /// Clamped to [`NostDuration::MIN`]..=[`NostDuration::MAX`].
    fn from(d: TimeDelta) -> Self {
        NostDuration(d.clamp(NostDuration::MIN.0, NostDuration::MAX.0))
    }
}

impl fmt::Debug for NostDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NostDuration({})", self.to_hms())
    }
}

impl fmt::Display for NostDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hms())
    }
}

/// Why a duration text was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid duration {input:?}: expected \"H:MM:SS\" (e.g. \"0:00:01\"), \"H:MM:SS.ffffff\", \"1 day, 0:00:01\", ISO-8601 (\"PT90S\") or a number of seconds"
)]
pub struct DurationParseError {
    input: String,
}

impl DurationParseError {
    fn new(input: &str) -> Self {
        DurationParseError {
            input: input.to_owned(),
        }
    }
}

/// Whether `text` is exactly three colon-separated integers: the only form
/// `nost_tools` scales by `time_scale_factor`.
pub fn is_plain_hms(text: &str) -> bool {
    let parts: Vec<&str> = text.trim().split(':').collect();
    parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

fn parse_seconds_text(text: &str) -> Option<i64> {
    // "SS" or "SS.ffffff" -> microseconds
    let (whole, frac) = match text.split_once('.') {
        Some((w, f)) => (w, f),
        None => (text, ""),
    };
    if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if !frac.bytes().all(|b| b.is_ascii_digit()) || frac.len() > 6 {
        return None;
    }
    let w: i64 = whole.parse().ok()?;
    let f: i64 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<6}").parse().ok()?
    };
    w.checked_mul(1_000_000)?.checked_add(f)
}

fn parse_hms(text: &str) -> Option<i64> {
    let parts: Vec<&str> = text.split(':').collect();
    if parts.len() != 3 {
        return None;
    }
    let digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    if !digits(parts[0]) || !digits(parts[1]) {
        return None;
    }
    let h: i64 = parts[0].parse().ok()?;
    let m: i64 = parts[1].parse().ok()?;
    let s = parse_seconds_text(parts[2])?;
    h.checked_mul(3600)?
        .checked_add(m.checked_mul(60)?)?
        .checked_mul(1_000_000)?
        .checked_add(s)
}

fn parse_iso(text: &str) -> Option<i64> {
    let (neg, body) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let body = body.strip_prefix('P')?;
    if body.is_empty() {
        return None;
    }
    let (date, time) = match body.split_once('T') {
        Some((d, t)) if !t.is_empty() => (d, Some(t)),
        Some(_) => return None,
        None => (body, None),
    };
    let mut total: f64 = 0.0;
    let mut parse_units = |s: &str, units: &[(char, f64)]| -> Option<()> {
        let mut num = String::new();
        let mut idx = 0;
        for c in s.chars() {
            if c.is_ascii_digit() || c == '.' || c == ',' {
                num.push(if c == ',' { '.' } else { c });
            } else {
                let pos = units[idx..].iter().position(|(u, _)| *u == c)?;
                idx += pos + 1;
                let v: f64 = num.parse().ok()?;
                total += v * units[idx - 1].1;
                num.clear();
            }
        }
        num.is_empty().then_some(())
    };
    parse_units(
        date,
        &[
            ('Y', 365.0 * 86400.0),
            ('M', 30.0 * 86400.0),
            ('W', 7.0 * 86400.0),
            ('D', 86400.0),
        ],
    )?;
    if let Some(t) = time {
        parse_units(t, &[('H', 3600.0), ('M', 60.0), ('S', 1.0)])?;
    }
    let us = (total * 1e6).round();
    if !us.is_finite() || us.abs() > 9.0e18 {
        return None;
    }
    let us = us as i64;
    Some(if neg { -us } else { us })
}

fn parse_days_form(text: &str) -> Option<i64> {
    // "1 day, 0:00:01" / "2 days, 1:00:00" / "-1 day, 23:59:59"
    let (days_part, rest) = text.split_once(',')?;
    let mut it = days_part.split_whitespace();
    let n: i64 = it.next()?.parse().ok()?;
    let word = it.next()?;
    if (word != "day" && word != "days") || it.next().is_some() {
        return None;
    }
    let rest_us = parse_hms(rest.trim())?;
    n.checked_mul(86_400_000_000)?.checked_add(rest_us)
}

impl FromStr for NostDuration {
    type Err = DurationParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        if t.is_empty() {
            return Err(DurationParseError::new(s));
        }
        if let Some(v) = parse_iso(t).or_else(|| parse_days_form(t)) {
            return Ok(NostDuration::microseconds(v));
        }
        let (neg, unsigned) = match t.strip_prefix('-') {
            Some(r) => (true, r),
            None => (false, t),
        };
        parse_hms(unsigned)
            .or_else(|| {
                unsigned
                    .strip_suffix('d')
                    .and_then(|n| n.trim().parse::<i64>().ok())
                    .and_then(|d| d.checked_mul(86_400_000_000))
            })
            .or_else(|| parse_seconds_text(unsigned))
            .map(|v| NostDuration::microseconds(if neg { -v } else { v }))
            .ok_or_else(|| DurationParseError::new(s))
    }
}

/// The message of a number of seconds that is no duration.
fn out_of_range(v: impl fmt::Display) -> String {
    format!(
        "duration of {v} seconds is out of range: a duration must be a finite number of seconds of at most {} (about 292,000 years)",
        i64::MAX / 1_000_000
    )
}

impl Serialize for NostDuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_iso8601())
    }
}

impl<'de> Deserialize<'de> for NostDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = NostDuration;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as \"0:00:01\", \"PT1S\" or a number of seconds")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                v.parse().map_err(E::custom)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                NostDuration::try_seconds(v).ok_or_else(|| E::custom(out_of_range(v)))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                i64::try_from(v)
                    .ok()
                    .and_then(NostDuration::try_seconds)
                    .ok_or_else(|| E::custom(out_of_range(v)))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                NostDuration::from_secs_f64(v).ok_or_else(|| E::custom(out_of_range(v)))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> NostDuration {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn accepts_every_form_nost_tools_accepts() {
        assert_eq!(p("0:00:01"), NostDuration::seconds(1));
        assert_eq!(p("25:00:00"), NostDuration::seconds(90_000));
        assert_eq!(p("00:01:30"), NostDuration::seconds(90));
        assert_eq!(p("0:00:00.5"), NostDuration::microseconds(500_000));
        assert_eq!(p("1 day, 0:00:01"), NostDuration::seconds(86_401));
        assert_eq!(
            p("2 days, 1:00:00"),
            NostDuration::seconds(2 * 86_400 + 3600)
        );
        assert_eq!(p("PT90S"), NostDuration::seconds(90));
        assert_eq!(p("P1D"), NostDuration::seconds(86_400));
        assert_eq!(p("P1Y35D"), NostDuration::seconds(400 * 86_400));
        assert_eq!(p("PT0.5S"), NostDuration::microseconds(500_000));
        assert_eq!(p("-PT1S"), NostDuration::seconds(-1));
        assert_eq!(p("1d"), NostDuration::seconds(86_400));
        assert_eq!(p("90"), NostDuration::seconds(90));
        assert_eq!(p("1.5"), NostDuration::microseconds(1_500_000));
    }

    #[test]
    fn refuses_two_part_and_garbage() {
        for bad in ["1:30", "", "abc", "P", "PT", "1:xx:00", "P1S"] {
            assert!(bad.parse::<NostDuration>().is_err(), "{bad} should fail");
        }
    }

    #[test]
    fn writes_iso_like_pydantic_2_13() {
        let cases = [
            (90 * 1_000_000, "PT1M30S"),
            (12 * 3600 * 1_000_000, "PT12H"),
            ((86_400 + 3) * 1_000_000, "P1DT3S"),
            (500_000, "PT0.5S"),
            (0, "PT0S"),
            (-1_000_000, "-PT1S"),
            (400 * 86_400 * 1_000_000, "P1Y35D"),
            (300 * 1_000_000, "PT5M"),
        ];
        for (us, text) in cases {
            assert_eq!(NostDuration::microseconds(us).to_iso8601(), text);
            assert_eq!(p(text), NostDuration::microseconds(us), "round trip {text}");
        }
    }

    #[test]
    fn plain_hms_detection() {
        assert!(is_plain_hms("0:00:01"));
        assert!(is_plain_hms("00:00:01"));
        assert!(!is_plain_hms("0:00:00.5"));
        assert!(!is_plain_hms("PT1S"));
        assert!(!is_plain_hms("1 day, 0:00:01"));
    }
}
