//! Flink-style durations, as StateFun's `module.yaml` writes them.
//!
//! A duration is a whole number followed by an optional unit, with optional whitespace in
//! between: `"10s"`, `"10 s"`, `"1min"`, `"2m"`, `"100 millis"`, `"1 day"`. A number without a
//! unit is milliseconds (so a YAML integer such as `call: 500` is 500 ms). Units are
//! case-insensitive:
//!
//! | unit         | spellings                                              |
//! |--------------|--------------------------------------------------------|
//! | milliseconds | `ms`, `milli`, `millis`, `millisecond`, `milliseconds` |
//! | seconds      | `s`, `sec`, `secs`, `second`, `seconds`                |
//! | minutes      | `m`, `min`, `mins`, `minute`, `minutes`                |
//! | hours        | `h`, `hour`, `hours`                                   |
//! | days         | `d`, `day`, `days`                                     |
//!
//! Fractions (`1.5s`), negative numbers and sub-millisecond units are rejected with a message
//! that lists the accepted forms.

use std::time::Duration;

/// The accepted units, for error messages.
pub const ACCEPTED_UNITS: &str = "ms (milli, millis, millisecond, milliseconds), \
     s (sec, secs, second, seconds), m (min, mins, minute, minutes), h (hour, hours), \
     d (day, days); a number without a unit is milliseconds";

/// Milliseconds per unit spelling, or `None` for an unknown unit.
fn unit_millis(unit: &str) -> Option<u64> {
    let millis = match unit.to_ascii_lowercase().as_str() {
        "" | "ms" | "milli" | "millis" | "millisecond" | "milliseconds" => 1,
        "s" | "sec" | "secs" | "second" | "seconds" => 1_000,
        "m" | "min" | "mins" | "minute" | "minutes" => 60_000,
        "h" | "hour" | "hours" => 3_600_000,
        "d" | "day" | "days" => 86_400_000,
        _ => return None,
    };
    Some(millis)
}

/// Parses a Flink-style duration such as `"10 s"`, `"1min"` or `"250"` (milliseconds).
///
/// The error text says what is wrong and lists the accepted units.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(format!(
            "empty duration: write a whole number and a unit, e.g. \"10s\" or \"1 min\"; accepted units: {ACCEPTED_UNITS}"
        ));
    }
    let digits_end = trimmed
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(trimmed.len());
    let (number, rest) = trimmed.split_at(digits_end);
    if number.is_empty() {
        let hint = if trimmed.starts_with('-') {
            "durations cannot be negative"
        } else {
            "it must start with a whole number"
        };
        return Err(format!(
            "{text:?} is not a duration: {hint}; write e.g. \"10s\" or \"1 min\"; accepted units: {ACCEPTED_UNITS}"
        ));
    }
    let unit = rest.trim_start();
    if unit.starts_with('.') || unit.starts_with(',') {
        return Err(format!(
            "{text:?} is not a duration: fractions are not accepted; use a smaller unit instead (e.g. \"1500ms\" rather than \"1.5s\"); accepted units: {ACCEPTED_UNITS}"
        ));
    }
    let Some(factor) = unit_millis(unit) else {
        return Err(format!(
            "{text:?} is not a duration: unknown unit {unit:?}; accepted units: {ACCEPTED_UNITS}"
        ));
    };
    let value: u64 = number.parse().map_err(|_| {
        format!("{text:?} is not a duration: the number is too large; use a larger unit")
    })?;
    let millis = value
        .checked_mul(factor)
        .ok_or_else(|| format!("{text:?} is not a duration: it is too large"))?;
    Ok(Duration::from_millis(millis))
}

/// Writes a duration in the form [`parse_duration`] reads back, with the largest unit that
/// represents it exactly (`"1min"`, `"90s"`, `"250ms"`). Sub-millisecond parts are dropped.
pub fn format_duration(duration: Duration) -> String {
    let millis = duration.as_millis();
    const UNITS: [(u128, &str); 4] = [
        (86_400_000, "d"),
        (3_600_000, "h"),
        (60_000, "min"),
        (1_000, "s"),
    ];
    for (factor, unit) in UNITS {
        if millis != 0 && millis % factor == 0 {
            return format!("{}{unit}", millis / factor);
        }
    }
    format!("{millis}ms")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ms(millis: u64) -> Duration {
        Duration::from_millis(millis)
    }

    #[test]
    fn accepts_flink_forms() {
        let cases = [
            ("10s", ms(10_000)),
            ("10 s", ms(10_000)),
            ("  10 s  ", ms(10_000)),
            ("1min", ms(60_000)),
            ("1 min", ms(60_000)),
            ("2m", ms(120_000)),
            ("100ms", ms(100)),
            ("100 millis", ms(100)),
            ("1 milli", ms(1)),
            ("5 milliseconds", ms(5)),
            ("1h", ms(3_600_000)),
            ("2 hours", ms(7_200_000)),
            ("1 day", ms(86_400_000)),
            ("3d", ms(3 * 86_400_000)),
            ("30 sec", ms(30_000)),
            ("30 secs", ms(30_000)),
            ("1 second", ms(1_000)),
            ("10 SECONDS", ms(10_000)),
            ("1Min", ms(60_000)),
            ("250", ms(250)),
            ("0", ms(0)),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_duration(text), Ok(expected), "{text}");
        }
    }

    #[test]
    fn rejects_with_accepted_units() {
        for text in ["", "s", "ten seconds", "10 fortnights", "10 ns", "500us"] {
            let error = parse_duration(text).expect_err(text);
            assert!(error.contains("accepted units"), "{text}: {error}");
        }
        let error = parse_duration("1.5s").expect_err("fraction");
        assert!(error.contains("fractions"), "{error}");
        let error = parse_duration("-1s").expect_err("negative");
        assert!(error.contains("negative"), "{error}");
        let error = parse_duration("99999999999999999999999 d").expect_err("huge");
        assert!(error.contains("too large"), "{error}");
        let error = parse_duration("999999999999999 d").expect_err("overflow");
        assert!(error.contains("too large"), "{error}");
    }

    #[test]
    fn formats_with_the_largest_exact_unit() {
        assert_eq!(format_duration(ms(60_000)), "1min");
        assert_eq!(format_duration(ms(90_000)), "90s");
        assert_eq!(format_duration(ms(250)), "250ms");
        assert_eq!(format_duration(ms(0)), "0ms");
        assert_eq!(format_duration(ms(86_400_000)), "1d");
    }

    fn unit_spelling() -> impl Strategy<Value = (&'static str, u64)> {
        prop::sample::select(vec![
            ("ms", 1),
            ("milli", 1),
            ("millis", 1),
            ("millisecond", 1),
            ("milliseconds", 1),
            ("", 1),
            ("s", 1_000),
            ("sec", 1_000),
            ("secs", 1_000),
            ("second", 1_000),
            ("seconds", 1_000),
            ("m", 60_000),
            ("min", 60_000),
            ("mins", 60_000),
            ("minute", 60_000),
            ("minutes", 60_000),
            ("h", 3_600_000),
            ("hour", 3_600_000),
            ("hours", 3_600_000),
            ("d", 86_400_000),
            ("day", 86_400_000),
            ("days", 86_400_000),
        ])
    }

    proptest! {
        #[test]
        fn format_then_parse_round_trips(millis in 0u64..=10_000_000_000_000) {
            let duration = ms(millis);
            prop_assert_eq!(parse_duration(&format_duration(duration)), Ok(duration));
        }

        #[test]
        fn number_and_unit_parse_to_their_product(
            value in 0u64..=1_000_000,
            (unit, factor) in unit_spelling(),
            spaces in 0usize..3,
            upper in any::<bool>(),
        ) {
            let unit = if upper { unit.to_ascii_uppercase() } else { unit.to_string() };
            let text = format!("{value}{}{unit}", " ".repeat(spaces));
            prop_assert_eq!(parse_duration(&text), Ok(ms(value * factor)));
        }
    }
}
