//! Human durations in runbooks and configs: `500ms`, `30s`, `15m`, `1h30m`, `2d`.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A span of time written with units, as in `1h30m`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct HumanDuration(pub Duration);

/// Why a text is not a duration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// Nothing was written.
    #[error("empty duration; write e.g. `30s`, `15m` or `1h30m`")]
    Empty,
    /// A number without a unit.
    #[error("`{0}` has no unit; write e.g. `{0}s` or `{0}m`")]
    MissingUnit(String),
    /// A unit lifeboat does not know.
    #[error("unknown unit `{unit}` in `{text}`; units are ms, s, m, h, d")]
    UnknownUnit {
        /// The whole text.
        text: String,
        /// The unit as written.
        unit: String,
    },
    /// Not a number followed by a unit.
    #[error("`{0}` is not a duration; write e.g. `30s`, `15m` or `1h30m`")]
    Malformed(String),
    /// Too large to represent.
    #[error("`{0}` is too long a duration")]
    Overflow(String),
}

impl HumanDuration {
    /// The duration as a `std` value.
    pub fn get(self) -> Duration {
        self.0
    }

    /// From whole seconds.
    pub const fn from_secs(secs: u64) -> Self {
        HumanDuration(Duration::from_secs(secs))
    }
}

impl FromStr for HumanDuration {
    type Err = DurationError;

    fn from_str(text: &str) -> Result<Self, DurationError> {
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err(DurationError::Empty);
        }
        if trimmed.chars().all(|c| c.is_ascii_digit()) {
            return Err(DurationError::MissingUnit(trimmed.to_string()));
        }
        let mut total = Duration::ZERO;
        let mut rest = trimmed;
        while !rest.is_empty() {
            let digits = rest
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(rest.len());
            if digits == 0 {
                return Err(DurationError::Malformed(trimmed.to_string()));
            }
            let number: u64 = rest[..digits]
                .parse()
                .map_err(|_| DurationError::Overflow(trimmed.to_string()))?;
            rest = &rest[digits..];
            let unit_len = rest
                .find(|c: char| c.is_ascii_digit())
                .unwrap_or(rest.len());
            let unit = &rest[..unit_len];
            rest = &rest[unit_len..];
            let part = match unit {
                "ms" => Some(Duration::from_millis(number)),
                "s" => Some(Duration::from_secs(number)),
                "m" => number.checked_mul(60).map(Duration::from_secs),
                "h" => number.checked_mul(3600).map(Duration::from_secs),
                "d" => number.checked_mul(86_400).map(Duration::from_secs),
                "" => return Err(DurationError::Malformed(trimmed.to_string())),
                _ => {
                    return Err(DurationError::UnknownUnit {
                        text: trimmed.to_string(),
                        unit: unit.to_string(),
                    });
                }
            };
            total = part
                .and_then(|p| total.checked_add(p))
                .ok_or_else(|| DurationError::Overflow(trimmed.to_string()))?;
        }
        Ok(HumanDuration(total))
    }
}

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut ms = self.0.as_millis();
        if ms == 0 {
            return f.write_str("0s");
        }
        for (unit, size) in [
            ("d", 86_400_000u128),
            ("h", 3_600_000),
            ("m", 60_000),
            ("s", 1_000),
            ("ms", 1),
        ] {
            if ms >= size {
                write!(f, "{}{unit}", ms / size)?;
                ms %= size;
            }
        }
        Ok(())
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl Serialize for HumanDuration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl schemars::JsonSchema for HumanDuration {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Duration".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "description": "A duration with units: 500ms, 30s, 15m, 1h30m, 2d (or a ${param} reference).",
            "pattern": "^(([0-9]+(ms|s|m|h|d))+|.*\\$\\{[^}]+\\}.*)$"
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_compound_durations() {
        let d: HumanDuration = "1h30m".parse().unwrap();
        assert_eq!(d.get(), Duration::from_secs(5400));
        assert_eq!(
            "500ms".parse::<HumanDuration>().unwrap().get(),
            Duration::from_millis(500)
        );
        assert_eq!(d.to_string(), "1h30m");
    }

    #[test]
    fn rejects_what_is_not_a_duration() {
        assert_eq!(
            "15".parse::<HumanDuration>(),
            Err(DurationError::MissingUnit("15".into()))
        );
        assert!(matches!(
            "3w".parse::<HumanDuration>(),
            Err(DurationError::UnknownUnit { .. })
        ));
        assert!(matches!(
            "m5".parse::<HumanDuration>(),
            Err(DurationError::Malformed(_))
        ));
        assert!(matches!(
            "99999999999999999999d".parse::<HumanDuration>(),
            Err(DurationError::Overflow(_))
        ));
    }
}
