//! Client beat scheduler (spec §2.8): three beats back to back at start, then one every
//! `Heartbeat_Interval` seconds after the previous beat. Used for AYIYA keepalives and for
//! heartbeat datagrams. `makebeats false` starts it disabled; SIGUSR1 toggles it.
//!
//! Drive it with [`Keepalive::poll_timeout`] (sleep until then) and
//! [`Keepalive::handle_timeout`] (send that many beats).

use std::time::{Duration, Instant};

use thiserror::Error;

/// Beats sent back to back when the tunnel starts (as AICCU).
pub const INITIAL_BEATS: u32 = 3;

/// Scheduler errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum KeepaliveError {
    /// An interval of 0 would make AICCU busy-loop; v6home refuses it.
    #[error("heartbeat interval must be greater than 0")]
    ZeroInterval,
}

/// The beat schedule of one tunnel.
#[derive(Debug, Clone)]
pub struct Keepalive {
    interval: Duration,
    enabled: bool,
    started: bool,
    next: Instant,
}

impl Keepalive {
    /// A schedule starting at `now` whose first [`Keepalive::handle_timeout`] yields the three
    /// initial beats (if `enabled`).
    pub fn new(
        now: Instant,
        interval: Duration,
        enabled: bool,
    ) -> Result<Keepalive, KeepaliveError> {
        if interval.is_zero() {
            return Err(KeepaliveError::ZeroInterval);
        }
        Ok(Keepalive {
            interval,
            enabled,
            started: false,
            next: now,
        })
    }

    /// Same as [`Keepalive::new`] with the interval in whole seconds (TIC `Heartbeat_Interval`).
    pub fn from_secs(
        now: Instant,
        interval_secs: u32,
        enabled: bool,
    ) -> Result<Keepalive, KeepaliveError> {
        Keepalive::new(now, Duration::from_secs(u64::from(interval_secs)), enabled)
    }

    /// When to call [`Keepalive::handle_timeout`] next; `None` while disabled.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.enabled.then_some(self.next)
    }

    /// Returns how many beats to send now (0 if not due or disabled), and reschedules.
    pub fn handle_timeout(&mut self, now: Instant) -> u32 {
        if !self.enabled || now < self.next {
            return 0;
        }
        // The next beat is one interval after this one; missed intervals are not caught up.
        self.next = now + self.interval;
        if self.started {
            1
        } else {
            self.started = true;
            INITIAL_BEATS
        }
    }

    /// Enables or disables beats. Re-enabling makes an overdue beat fire at once.
    pub fn set_enabled(&mut self, enabled: bool) {
        self.enabled = enabled;
    }

    /// Flips the enabled state (SIGUSR1) and returns the new state.
    pub fn toggle(&mut self) -> bool {
        self.enabled = !self.enabled;
        self.enabled
    }

    /// Whether beats are enabled.
    pub fn is_enabled(&self) -> bool {
        self.enabled
    }

    /// The beat interval.
    pub fn interval(&self) -> Duration {
        self.interval
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the scheduler with a fake clock in 100 ms steps and records beat times (ms).
    fn simulate(
        ka: &mut Keepalive,
        t0: Instant,
        until_ms: u64,
        toggles: &[u64],
    ) -> Vec<(u64, u32)> {
        let mut out = Vec::new();
        let mut ms = 0;
        while ms <= until_ms {
            if toggles.contains(&ms) {
                ka.toggle();
            }
            let now = t0 + Duration::from_millis(ms);
            if ka.poll_timeout().is_some_and(|t| t <= now) {
                let n = ka.handle_timeout(now);
                if n > 0 {
                    out.push((ms, n));
                }
            }
            ms += 100;
        }
        out
    }

    #[test]
    fn three_then_every_interval() {
        let t0 = Instant::now();
        let mut ka = Keepalive::from_secs(t0, 5, true).unwrap();
        assert_eq!(ka.poll_timeout(), Some(t0));
        let beats = simulate(&mut ka, t0, 20_000, &[]);
        assert_eq!(
            beats,
            [(0, 3), (5000, 1), (10_000, 1), (15_000, 1), (20_000, 1)]
        );
    }

    #[test]
    fn not_due_and_late_wakeups() {
        let t0 = Instant::now();
        let mut ka = Keepalive::from_secs(t0, 60, true).unwrap();
        assert_eq!(ka.handle_timeout(t0), 3);
        assert_eq!(ka.handle_timeout(t0 + Duration::from_secs(59)), 0);
        // Woken 10 minutes late (suspend): one beat, next one an interval later.
        let late = t0 + Duration::from_secs(600);
        assert_eq!(ka.handle_timeout(late), 1);
        assert_eq!(ka.poll_timeout(), Some(late + Duration::from_secs(60)));
    }

    #[test]
    fn zero_interval_rejected() {
        assert_eq!(
            Keepalive::from_secs(Instant::now(), 0, true).unwrap_err(),
            KeepaliveError::ZeroInterval
        );
    }

    #[test]
    fn makebeats_false_and_sigusr1_toggle() {
        let t0 = Instant::now();
        let mut ka = Keepalive::from_secs(t0, 5, false).unwrap();
        assert_eq!(ka.poll_timeout(), None);
        assert_eq!(ka.handle_timeout(t0 + Duration::from_secs(100)), 0);
        // Toggle on at 2 s: the initial 3 fire then, then every 5 s; off at 12.1 s; on at 30 s.
        let beats = simulate(&mut ka, t0, 40_000, &[2000, 12_100, 30_000]);
        assert_eq!(
            beats,
            [
                (2000, 3),
                (7000, 1),
                (12_000, 1),
                (30_000, 1),
                (35_000, 1),
                (40_000, 1)
            ]
        );
        assert!(ka.is_enabled());
        ka.set_enabled(false);
        assert_eq!(ka.poll_timeout(), None);
    }
}
