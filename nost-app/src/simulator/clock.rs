//! Wallclocks: UTC now plus an offset that can be set at run time (NTP).

use std::fmt;
use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, TimeDelta, Utc};

/// Where the simulator reads wallclock time from.
///
/// `now()` must include the offset. The simulator turns wallclock deadlines
/// into `tokio::time` sleeps, so a clock derived from [`tokio::time::Instant`]
/// ([`TokioClock`]) makes runs under `tokio::time::pause()` deterministic.
pub trait Clock: Send + Sync + fmt::Debug {
    /// Wallclock now (UTC, offset included).
    fn now(&self) -> DateTime<Utc>;
    /// The offset added to the underlying clock.
    fn offset(&self) -> TimeDelta;
    /// Replace the offset (e.g. the result of an NTP query).
    fn set_offset(&self, offset: TimeDelta);
}

fn micros(d: TimeDelta) -> i64 {
    d.num_microseconds().unwrap_or(if d < TimeDelta::zero() {
        i64::MIN
    } else {
        i64::MAX
    })
}

/// `dt + d`, saturating at the ends of the representable range.
pub(crate) fn add_saturating(dt: DateTime<Utc>, d: TimeDelta) -> DateTime<Utc> {
    dt.checked_add_signed(d)
        .unwrap_or(if d < TimeDelta::zero() {
            DateTime::<Utc>::MIN_UTC
        } else {
            DateTime::<Utc>::MAX_UTC
        })
}

/// The system clock: `Utc::now()` plus the offset.
#[derive(Debug, Default)]
pub struct SystemClock {
    offset_us: AtomicI64,
}

impl SystemClock {
    /// No offset.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        add_saturating(Utc::now(), self.offset())
    }

    fn offset(&self) -> TimeDelta {
        TimeDelta::microseconds(self.offset_us.load(Ordering::Relaxed))
    }

    fn set_offset(&self, offset: TimeDelta) {
        self.offset_us.store(micros(offset), Ordering::Relaxed);
    }
}

/// A clock that reads `base + (tokio::time::Instant::now() − start) + offset`.
///
/// It follows tokio's (possibly paused) time, so tests with
/// `#[tokio::test(start_paused = true)]` are deterministic, and in real time
/// it is monotonic (unaffected by system clock steps).
#[derive(Debug)]
pub struct TokioClock {
    base: DateTime<Utc>,
    start: tokio::time::Instant,
    offset_us: AtomicI64,
}

impl TokioClock {
    /// Anchored to the system's UTC now.
    pub fn new() -> Self {
        Self::starting_at(Utc::now())
    }

    /// Anchored so that `now()` is `base` at this instant.
    pub fn starting_at(base: DateTime<Utc>) -> Self {
        TokioClock {
            base,
            start: tokio::time::Instant::now(),
            offset_us: AtomicI64::new(0),
        }
    }
}

impl Default for TokioClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for TokioClock {
    fn now(&self) -> DateTime<Utc> {
        let elapsed = TimeDelta::from_std(self.start.elapsed()).unwrap_or(TimeDelta::MAX);
        add_saturating(add_saturating(self.base, elapsed), self.offset())
    }

    fn offset(&self) -> TimeDelta {
        TimeDelta::microseconds(self.offset_us.load(Ordering::Relaxed))
    }

    fn set_offset(&self, offset: TimeDelta) {
        self.offset_us.store(micros(offset), Ordering::Relaxed);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[tokio::test(start_paused = true)]
    async fn tokio_clock_follows_paused_time_and_offset() {
        let base = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap();
        let c = TokioClock::starting_at(base);
        assert_eq!(c.now(), base);
        tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
        assert_eq!(c.now(), base + TimeDelta::milliseconds(1500));
        c.set_offset(TimeDelta::seconds(-2));
        assert_eq!(c.offset(), TimeDelta::seconds(-2));
        assert_eq!(c.now(), base - TimeDelta::milliseconds(500));
    }

    #[test]
    fn system_clock_offset() {
        let c = SystemClock::new();
        c.set_offset(TimeDelta::hours(1));
        let d = c.now() - Utc::now();
        assert!(
            d > TimeDelta::minutes(59) && d <= TimeDelta::hours(1),
            "{d}"
        );
    }
}
