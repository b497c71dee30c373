//! A node's own clock as the store's timers read it: the node's local time (its skew and drift,
//! `NodeContext::local_time_us`), held so that it never runs backwards. Every timer and timeout of
//! the master, the replicas and the gateways reads this, never true model time, so `clock_skew`
//! faults and the `[clock]` model act on the store; traces keep true model time, which the world
//! records.
//!
//! A step of the clock forward (a `clock_skew` fault with a positive skew) is seen at once:
//! timers fire early. A step backwards is held: the node's time stands still until its local time
//! catches up, so timers fire late, as a monotonic clock that refuses to step back would make
//! them. Neither may break a safety rule; `mod.rs`'s "Time" section says why none does.
//!
//! One per node boot, shared by the node's tasks; it holds no state a crash could make wrong.

use std::cell::Cell;
use std::rc::Rc;

use crate::world::{Message, NodeContext};

/// The shortest sleep in local microseconds: at least one true microsecond at any drift the
/// world allows.
const MIN_SLEEP_US: u64 = 2;

#[derive(Clone, Debug, Default)]
pub struct LocalClock {
    /// The latest time read, in the node's local microseconds.
    last_us: Rc<Cell<u64>>,
}

impl LocalClock {
    /// The node's local time now, never below an earlier reading.
    pub fn now_us<M: Message>(&self, context: &NodeContext<M>) -> u64 {
        let now = context.local_time_us().max(self.last_us.get());
        self.last_us.set(now);
        now
    }

    /// Sleeps for `local_us` as the node's clock measures it (a fast clock's sleeps end early).
    /// Zero yields once. Anything else sleeps at least 2 local microseconds: a clock may run up
    /// to twice as fast as true time (drift below 1,000,000 ppm), and a sleep it shortens to no
    /// true time at all would let a timer loop spin without time passing.
    pub async fn sleep_us<M: Message>(&self, context: &NodeContext<M>, local_us: u64) {
        let local_us = if local_us == 0 { 0 } else { local_us.max(MIN_SLEEP_US) };
        context.sleep_us(local_us).await;
    }

    /// Sleeps until the node's clock reads `at_us` (or at least yields, if it already does).
    pub async fn sleep_until_us<M: Message>(&self, context: &NodeContext<M>, at_us: u64) {
        let now = self.now_us(context);
        context.sleep_us(at_us.saturating_sub(now)).await;
    }
}
