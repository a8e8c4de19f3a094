//! Datetimes on the wire, as `nost_tools` 3.6.0 (pydantic 2.13) writes them.
//!
//! Output: ISO-8601 with `T`, fractional seconds only when the microseconds
//! are non-zero (then always 6 digits), UTC written as `Z`:
//! `2024-01-01T11:59:55.572874Z`, `2024-01-01T12:00:00Z`.
//!
//! Input: aware values with any offset (converted to UTC), naive values
//! (taken as UTC), with or without fractions, a space instead of `T`, a date
//! alone (midnight UTC), or Unix seconds as a number (milliseconds when the
//! number is larger than 2·10¹⁰, as pydantic does). Sub-microsecond digits
//! are truncated, since Python datetimes have microsecond precision.
//!
//! Use the serde helpers with `#[serde(with = "nost_app::time_fmt::utc")]`
//! and `#[serde(with = "nost_app::time_fmt::option")]`.

use std::fmt;

use chrono::{DateTime, Timelike, Utc};
use serde::de::{self, Visitor};

/// Write a datetime in the wire format.
pub fn format(dt: &DateTime<Utc>) -> String {
    let micros = dt.nanosecond() / 1_000;
    if micros == 0 {
        dt.format("%Y-%m-%dT%H:%M:%SZ").to_string()
    } else {
        format!("{}.{micros:06}Z", dt.format("%Y-%m-%dT%H:%M:%S"))
    }
}

/// Parse a datetime text (see the module documentation). `None` when it is
/// not a datetime.
pub fn parse(text: &str) -> Option<DateTime<Utc>> {
    nost_config::time::parse_datetime(text).map(truncate_to_micros)
}

/// Drop sub-microsecond digits.
pub fn truncate_to_micros(dt: DateTime<Utc>) -> DateTime<Utc> {
    let nanos = dt.nanosecond();
    dt.with_nanosecond(nanos - nanos % 1_000).unwrap_or(dt)
}

/// Unix seconds (or milliseconds above 2·10¹⁰, pydantic's rule).
fn from_unix(value: f64) -> Option<DateTime<Utc>> {
    if !value.is_finite() {
        return None;
    }
    let secs = if value.abs() > 2e10 {
        value / 1e3
    } else {
        value
    };
    let micros = (secs * 1e6).round();
    if micros.abs() > 9.0e18 {
        return None;
    }
    DateTime::from_timestamp_micros(micros as i64)
}

struct DtVisitor;

impl Visitor<'_> for DtVisitor {
    type Value = DateTime<Utc>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an ISO-8601 datetime such as \"2024-01-01T12:00:00Z\"")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        parse(v).ok_or_else(|| {
            E::custom(format!(
                "invalid datetime {v:?}: expected ISO-8601 such as \"2024-01-01T12:00:00Z\""
            ))
        })
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        from_unix(v as f64).ok_or_else(|| E::custom("Unix timestamp out of range"))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        from_unix(v as f64).ok_or_else(|| E::custom("Unix timestamp out of range"))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        from_unix(v).ok_or_else(|| E::custom("Unix timestamp out of range"))
    }
}

/// Serde helper for `DateTime<Utc>` fields.
pub mod utc {
    use chrono::{DateTime, Utc};
    use serde::{Deserializer, Serializer};

    /// Serialize in the wire format.
    pub fn serialize<S: Serializer>(dt: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format(dt))
    }

    /// Deserialize any accepted form.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        d.deserialize_any(super::DtVisitor)
    }
}

/// Serde helper for `Option<DateTime<Utc>>` fields (`null` is `None`).
pub mod option {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    struct Wrapped(DateTime<Utc>);

    impl<'de> Deserialize<'de> for Wrapped {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            super::utc::deserialize(d).map(Wrapped)
        }
    }

    /// Serialize in the wire format, `None` as `null`.
    pub fn serialize<S: Serializer>(dt: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
        match dt {
            Some(dt) => s.serialize_str(&super::format(dt)),
            None => s.serialize_none(),
        }
    }

    /// Deserialize any accepted form, or `null`.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
        Ok(Option::<Wrapped>::deserialize(d)?.map(|w| w.0))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn writes_like_pydantic() {
        let whole = Utc.with_ymd_and_hms(2024, 1, 1, 12, 0, 0).unwrap();
        assert_eq!(format(&whole), "2024-01-01T12:00:00Z");
        let frac = whole + chrono::TimeDelta::microseconds(572_874);
        assert_eq!(format(&frac), "2024-01-01T12:00:00.572874Z");
        let half = whole + chrono::TimeDelta::milliseconds(500);
        assert_eq!(format(&half), "2024-01-01T12:00:00.500000Z");
        let nanos = whole + chrono::TimeDelta::nanoseconds(999);
        assert_eq!(format(&nanos), "2024-01-01T12:00:00Z", "sub-µs dropped");
    }

    #[test]
    fn reads_aware_naive_and_numbers() {
        let z = Utc.with_ymd_and_hms(2024, 1, 1, 12, 0, 0).unwrap();
        assert_eq!(parse("2024-01-01T12:00:00Z"), Some(z));
        assert_eq!(parse("2024-01-01T12:00:00+00:00"), Some(z));
        assert_eq!(parse("2024-01-01T14:00:00+02:00"), Some(z));
        assert_eq!(parse("2024-01-01T12:00:00"), Some(z));
        assert_eq!(parse("2024-01-01 12:00:00"), Some(z));
        assert_eq!(
            parse("2024-01-01T12:00:00.5"),
            Some(z + chrono::TimeDelta::milliseconds(500))
        );
        assert_eq!(
            parse("2024-01-01T12:00:00.123456789Z"),
            Some(z + chrono::TimeDelta::microseconds(123_456))
        );
        assert!(parse("noon").is_none());
        let v: serde_json::Value = serde_json::json!(1_704_110_400);
        assert_eq!(utc::deserialize(v).unwrap(), z);
        let ms: serde_json::Value = serde_json::json!(1_704_110_400_000_i64);
        assert_eq!(utc::deserialize(ms).unwrap(), z);
        assert_eq!(option::deserialize(serde_json::Value::Null).unwrap(), None);
    }
}
