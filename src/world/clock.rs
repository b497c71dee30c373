//! The scaled clock: one model microsecond is one madsim millisecond, so timers resolve
//! microseconds although madsim sleeps at least 1 ms. Every time migsim reports is model time, an
//! integer count of microseconds since the run began. Nothing else in migsim may read madsim's time.

use std::time::Duration;

/// Model time now, in microseconds since the run's runtime started.
pub fn now_us() -> u64 {
    madsim::time::TimeHandle::current().elapsed().as_millis() as u64
}

/// Model time now, or `None` outside a simulation (for code, such as a panic hook, that may run
/// on either side).
pub fn try_now_us() -> Option<u64> {
    madsim::time::TimeHandle::try_current().map(|handle| handle.elapsed().as_millis() as u64)
}

/// Sleeps for `micros` of model time; zero yields once instead (madsim cannot sleep for less than
/// its 1 ms floor, which is our 1 us).
pub async fn sleep_us(micros: u64) {
    if micros == 0 {
        yield_now().await;
    } else {
        madsim::time::sleep(Duration::from_millis(micros)).await;
    }
}

/// Sleeps until model time `at_us` (returns at once, after a yield, if that is already past).
pub async fn sleep_until_us(at_us: u64) {
    let now = now_us();
    sleep_us(at_us.saturating_sub(now)).await;
}

/// A future for `sleep_us`, for code that polls it by hand.
pub(crate) fn sleep_future(micros: u64) -> madsim::time::Sleep {
    madsim::time::sleep(Duration::from_millis(micros.max(1)))
}

async fn yield_now() {
    let mut yielded = false;
    std::future::poll_fn(|context| {
        if yielded {
            std::task::Poll::Ready(())
        } else {
            yielded = true;
            context.waker().wake_by_ref();
            std::task::Poll::Pending
        }
    })
    .await
}

/// A node's own view of time: true model time plus a fixed skew plus a drift in parts per million.
/// Leases and timeouts in the system under test read this; traces use true model time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NodeClock {
    pub skew_us: i64,
    pub drift_ppm: i64,
}

impl NodeClock {
    pub fn local_time_us(&self, true_us: u64) -> u64 {
        let drift = (true_us as i128 * self.drift_ppm as i128) / 1_000_000;
        (true_us as i128 + self.skew_us as i128 + drift).max(0) as u64
    }

    /// How long in true time a local-clock duration lasts on this node (a fast clock's timers fire early).
    pub fn true_duration_us(&self, local_us: u64) -> u64 {
        let scaled = local_us as i128 * 1_000_000 / (1_000_000 + self.drift_ppm as i128).max(1);
        scaled.max(0) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skew_and_drift_shift_local_time() {
        let clock = NodeClock { skew_us: -500, drift_ppm: 1_000 };
        assert_eq!(clock.local_time_us(1_000_000), 1_000_000 - 500 + 1_000);
        assert_eq!(clock.true_duration_us(1_001_000), 1_000_000);
        assert_eq!(NodeClock::default().local_time_us(42), 42);
    }
}
