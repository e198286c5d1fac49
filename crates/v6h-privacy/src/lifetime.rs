//! Lifetimes with units (`90s`, `30m`, `2h`, `2d`, `1d12h`): the command line never takes a
//! bare number, because "7200 means seconds, not minutes" was exactly the folklore bug.

use std::fmt;
use std::str::FromStr;

/// A lifetime in whole seconds, parsed from a string with units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Lifetime(pub u32);

/// Why a lifetime string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LifetimeError {
    /// Empty input.
    #[error("empty lifetime; use a number with a unit, e.g. 2h")]
    Empty,
    /// A bare number: the unit is mandatory.
    #[error(
        "`{0}` has no unit; write e.g. `{0}s` for seconds (units: s, m, h, d), sysctls count in seconds"
    )]
    NoUnit(String),
    /// A unit other than s, m, h, d.
    #[error("unknown unit `{unit}` in `{input}`; units are s, m, h, d")]
    BadUnit {
        /// The input.
        input: String,
        /// The offending unit.
        unit: String,
    },
    /// Not of the form number+unit.
    #[error("cannot parse `{0}`; expected e.g. 90s, 30m, 2h, 2d or 1d12h")]
    Syntax(String),
    /// Larger than a 32-bit count of seconds.
    #[error("`{0}` is too long (the kernel stores lifetimes as 32-bit seconds)")]
    TooLarge(String),
}

impl FromStr for Lifetime {
    type Err = LifetimeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.is_empty() {
            return Err(LifetimeError::Empty);
        }
        if s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(LifetimeError::NoUnit(s.to_string()));
        }
        let mut total: u64 = 0;
        let mut rest = s;
        while !rest.is_empty() {
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 {
                return Err(LifetimeError::Syntax(s.to_string()));
            }
            let (num, tail) = rest.split_at(digits);
            let unit_len = tail.bytes().take_while(|b| b.is_ascii_alphabetic()).count();
            let (unit, tail) = tail.split_at(unit_len);
            let mult: u64 = match unit {
                "s" => 1,
                "m" => 60,
                "h" => 3600,
                "d" => 86400,
                "" => return Err(LifetimeError::Syntax(s.to_string())),
                other => {
                    return Err(LifetimeError::BadUnit {
                        input: s.to_string(),
                        unit: other.to_string(),
                    });
                }
            };
            let n: u64 = num
                .parse()
                .map_err(|_| LifetimeError::TooLarge(s.to_string()))?;
            total = n
                .checked_mul(mult)
                .and_then(|v| total.checked_add(v))
                .ok_or_else(|| LifetimeError::TooLarge(s.to_string()))?;
            rest = tail;
        }
        let secs = u32::try_from(total)
            .ok()
            .filter(|v| *v < u32::MAX)
            .ok_or_else(|| LifetimeError::TooLarge(s.to_string()))?;
        Ok(Lifetime(secs))
    }
}

impl fmt::Display for Lifetime {
    /// Writes the shortest exact form, e.g. `2d`, `1d12h`, `90s`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = self.0;
        if s == 0 {
            return write!(f, "0s");
        }
        for (unit, len) in [("d", 86400), ("h", 3600), ("m", 60), ("s", 1)] {
            if s >= len {
                write!(f, "{}{unit}", s / len)?;
                s %= len;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_units() {
        assert_eq!("90s".parse(), Ok(Lifetime(90)));
        assert_eq!("30m".parse(), Ok(Lifetime(1800)));
        assert_eq!("2h".parse(), Ok(Lifetime(7200)));
        assert_eq!("2d".parse(), Ok(Lifetime(172_800)));
        assert_eq!("1d12h".parse(), Ok(Lifetime(129_600)));
        assert_eq!(" 1h30m ".parse(), Ok(Lifetime(5400)));
    }

    #[test]
    fn rejects_bare_numbers_and_garbage() {
        assert_eq!(
            "7200".parse::<Lifetime>(),
            Err(LifetimeError::NoUnit("7200".into()))
        );
        let msg = "7200".parse::<Lifetime>().unwrap_err().to_string();
        assert!(msg.contains("7200s"), "{msg}");
        assert!(matches!(
            "2w".parse::<Lifetime>(),
            Err(LifetimeError::BadUnit { .. })
        ));
        assert!(matches!(
            "h".parse::<Lifetime>(),
            Err(LifetimeError::Syntax(_))
        ));
        assert!(matches!(
            "2h3".parse::<Lifetime>(),
            Err(LifetimeError::Syntax(_))
        ));
        assert!(matches!(
            "-2h".parse::<Lifetime>(),
            Err(LifetimeError::Syntax(_))
        ));
        assert_eq!("".parse::<Lifetime>(), Err(LifetimeError::Empty));
        assert!(matches!(
            "50000d".parse::<Lifetime>(),
            Err(LifetimeError::TooLarge(_))
        ));
        assert!(matches!(
            "99999999999999999999999s".parse::<Lifetime>(),
            Err(LifetimeError::TooLarge(_))
        ));
    }

    #[test]
    fn displays_shortest() {
        assert_eq!(Lifetime(172_800).to_string(), "2d");
        assert_eq!(Lifetime(129_600).to_string(), "1d12h");
        assert_eq!(Lifetime(61).to_string(), "1m1s");
        assert_eq!(Lifetime(0).to_string(), "0s");
    }

    proptest! {
        #[test]
        fn display_parse_round_trip(s in 0u32..u32::MAX) {
            let l = Lifetime(s);
            prop_assert_eq!(l.to_string().parse::<Lifetime>(), Ok(l));
        }

        #[test]
        fn never_panics(s in "\\PC{0,20}") {
            let _ = s.parse::<Lifetime>();
        }
    }
}
