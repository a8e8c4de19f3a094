//! Datetimes as NOS-T YAML files write them.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use serde::{Deserialize, Deserializer};

/// Parse a datetime the way `nost_tools` reads YAML: RFC 3339 / ISO-8601 with
/// an offset (`…Z`, `…+00:00`), with a space instead of `T`, without an offset
/// (taken as UTC: `nost_tools` keeps such values naive, which only works when
/// every scenario time is naive), or a date alone (midnight UTC).
pub fn parse_datetime(text: &str) -> Option<DateTime<Utc>> {
    let t = text.trim();
    if let Ok(dt) = DateTime::parse_from_rfc3339(t) {
        return Some(dt.with_timezone(&Utc));
    }
    let with_t = t.replacen(' ', "T", 1);
    if let Ok(dt) = DateTime::parse_from_rfc3339(&with_t) {
        return Some(dt.with_timezone(&Utc));
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M"] {
        if let Ok(n) = NaiveDateTime::parse_from_str(&with_t, fmt) {
            return Some(n.and_utc());
        }
    }
    NaiveDate::parse_from_str(t, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|n| n.and_utc())
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Raw {
    Text(String),
    Int(i64),
    Float(f64),
}

/// Serde helper for `Option<DateTime<Utc>>` fields (text or Unix seconds).
pub fn deserialize_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
    let raw: Option<Raw> = Option::deserialize(d)?;
    raw.map(|r| match r {
        Raw::Text(s) => parse_datetime(&s).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "invalid datetime {s:?}: expected ISO-8601/RFC 3339 such as \"2020-01-01T07:20:00Z\""
            ))
        }),
        Raw::Int(secs) => DateTime::from_timestamp(secs, 0)
            .ok_or_else(|| serde::de::Error::custom("Unix timestamp out of range")),
        Raw::Float(secs) => Some((secs * 1e6).round())
            .filter(|us| us.is_finite() && us.abs() < 9.2e18)
            .and_then(|us| DateTime::from_timestamp_micros(us as i64))
            .ok_or_else(|| serde::de::Error::custom("Unix timestamp out of range")),
    })
    .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_written_in_yaml_files() {
        let z = parse_datetime("2020-01-01T07:20:00Z");
        assert!(z.is_some());
        assert_eq!(parse_datetime("2020-01-01T07:20:00+00:00"), z);
        assert_eq!(parse_datetime("2020-01-01 07:20:00"), z);
        assert_eq!(parse_datetime("2020-01-01T07:20:00"), z);
        assert_eq!(
            parse_datetime("2020-01-01T09:20:00+02:00"),
            z,
            "offsets are converted to UTC"
        );
        assert_eq!(
            parse_datetime("2020-01-01").map(|d| d.to_rfc3339()),
            Some("2020-01-01T00:00:00+00:00".into())
        );
        assert!(parse_datetime("yesterday").is_none());
    }
}
