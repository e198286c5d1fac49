//! Rate limiting for repeated log lines (per-packet and per-commit errors).
//!
//! A [`LogGate`] lets one line through per interval and counts the ones it held back, so a
//! flood of identical errors (a full disk, a forged-signature storm) costs one line a second
//! plus a count instead of thousands of lines. It is sans-IO: the caller passes `now`.

use std::time::{Duration, Instant};

/// Lets one log line through per `interval`; counts the ones suppressed in between.
#[derive(Debug, Clone)]
pub struct LogGate {
    interval: Duration,
    last_emit: Option<Instant>,
    suppressed: u64,
}

impl LogGate {
    /// The interval used across v6home daemons: one line a second.
    pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(1);

    /// A gate that lets one line through per `interval`.
    pub const fn new(interval: Duration) -> Self {
        Self {
            interval,
            last_emit: None,
            suppressed: 0,
        }
    }

    /// A gate that lets one line through per second.
    pub const fn per_second() -> Self {
        Self::new(Self::DEFAULT_INTERVAL)
    }

    /// Asks whether a line may be logged at `now`.
    ///
    /// Returns `Some(n)` when it may, where `n` is the number of lines suppressed since the last
    /// one let through (log it with the line, e.g. `suppressed = n`); returns `None` and counts
    /// the line as suppressed otherwise.
    pub fn admit(&mut self, now: Instant) -> Option<u64> {
        let open = match self.last_emit {
            None => true,
            Some(last) => now.saturating_duration_since(last) >= self.interval,
        };
        if open {
            self.last_emit = Some(now);
            Some(std::mem::take(&mut self.suppressed))
        } else {
            self.suppressed += 1;
            None
        }
    }

    /// Lines held back since the last one let through.
    pub fn suppressed(&self) -> u64 {
        self.suppressed
    }
}

impl Default for LogGate {
    fn default() -> Self {
        Self::per_second()
    }
}

/// Logs through a [`LogGate`]: `gated_log!(gate, now, warn, "text {}", x)`.
///
/// The line is emitted at the given tracing level with a `suppressed` field holding the count
/// of lines held back since the previous one; nothing is emitted while the gate is closed.
#[macro_export]
macro_rules! gated_log {
    ($gate:expr, $now:expr, $level:ident, $($arg:tt)+) => {
        if let Some(suppressed) = $gate.admit($now) {
            ::tracing::$level!(suppressed, $($arg)+);
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_interval_with_count_of_the_rest() {
        let start = Instant::now();
        let mut gate = LogGate::per_second();
        assert_eq!(gate.admit(start), Some(0));
        for i in 1..=3640u64 {
            // 3640 errors in the next 0.9 s: all held back.
            assert_eq!(gate.admit(start + Duration::from_micros(i * 247)), None);
        }
        assert_eq!(gate.suppressed(), 3640);
        assert_eq!(gate.admit(start + Duration::from_secs(1)), Some(3640));
        assert_eq!(gate.suppressed(), 0);
        assert_eq!(gate.admit(start + Duration::from_millis(1500)), None);
        assert_eq!(gate.admit(start + Duration::from_secs(2)), Some(1));
    }

    #[test]
    fn clock_going_backwards_does_not_open_the_gate() {
        let start = Instant::now() + Duration::from_secs(10);
        let mut gate = LogGate::per_second();
        assert_eq!(gate.admit(start), Some(0));
        assert_eq!(gate.admit(start - Duration::from_secs(5)), None);
    }
}
