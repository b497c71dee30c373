//! The migration's design choices, in one place: where writes are held during a cut-over, where
//! the commit point lives, how the target's lag is judged, and how the pause budget is split
//! between the parts of a cut-over. The participants (`source.rs`, `gateway.rs`, `holds.rs`) ask
//! this module rather than deciding these things in conditionals of their own.
//!
//! Only the reference design is built. The choices are named so that the seeds' own designs can
//! become selectable variants later, each a new value of one of these enums with its rule here:
//!
//! | choice | reference (built) | seeds' designs (later) |
//! | --- | --- | --- |
//! | where writes are held | gateways hold P's writes; S's fence refuses what slips past | Pegasus: S rejects writes above a threshold and waits for in-flight ones to reach zero; MatrixOne: forwarding tunnels from S to T |
//! | commit point | a `Handoff` entry in S's replicated log, racing the fence's lease (an `Unfence`) | nbase-arc: a blocking two-phase commit at the master; MatrixOne: a change-config entry |
//! | lag judgement | lag in P's entries <= `lag_threshold` and the predicted drain fits half the budget | NodeDB: an estimated pause from a learner copy's progress |
//!
//! The budget split (`lease_us`, `hold_us`, `freeze_wait_us`) is what ARCHITECTURE.md's write-pause
//! argument rests on: the lease is half the budget, so a fence unresolved by its lease has ended
//! (handoff or unfence logged) with time left for the decision to commit and reach the gateways;
//! gateways hold for at most four fifths of the budget from the freeze's start, every notice and
//! refusal carrying what is left of that window; the fifth left over covers delivery.

/// Where a cut-over holds a partition's writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteHold {
    /// Gateways hold the partition's writes from the freeze notice, each within the write's own
    /// budget and the attempt's window; the source's fence refuses (`Answer::Frozen`) any write
    /// that reaches it anyway, so nothing bypasses the hold.
    Gateways,
}

/// Where the decision "the partition now belongs to the target" is made durable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CommitPoint {
    /// A `Handoff` entry in the source group's replicated log, logged only once the target
    /// durably holds everything through F; the fence's lease turns into an `Unfence` entry when
    /// no handoff was logged in time, and whichever is logged first wins. The master learns the
    /// outcome; it is never on the cut-over's path.
    SourceLogHandoff,
}

/// How the source decides that the target is close enough to cut over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LagJudgement {
    /// The target's lag, in the partition's log entries (committed at the source and not durable
    /// at the target), is within the migration's `lag_threshold`, and the drain it predicts (one
    /// measured round trip plus the lag times the measured per-entry apply time) fits half the
    /// pause budget.
    EntriesAndForecast,
}

/// The most a node's clock may drift, either way, in a scenario with migrations (validation
/// refuses more, and refuses clocks stepped back): gateways and sources time holds and leases on
/// their own clocks, and the pause bound is argued in true time for drift up to this.
pub const CLOCK_DRIFT_MAX_PPM: u64 = 100_000;

/// One migration design: the three choices.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Design {
    pub write_hold: WriteHold,
    pub commit_point: CommitPoint,
    pub lag_judgement: LagJudgement,
}

/// The design migsim builds and ships (DESIGN.md's reference protocol).
pub const REFERENCE: Design = Design {
    write_hold: WriteHold::Gateways,
    commit_point: CommitPoint::SourceLogHandoff,
    lag_judgement: LagJudgement::EntriesAndForecast,
};

/// What the source knows of its target's progress when it considers a cut-over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LagEstimate {
    /// The partition's entries committed at the source and not durable at the target.
    pub lag_entries: u64,
    /// The measured round trip to the target, if one was measured yet.
    pub rtt_us: Option<u64>,
    /// The measured time the target takes to make one entry durable.
    pub entry_us: u64,
}

impl Design {
    /// Whether the source may start freezing the partition now.
    pub fn ready_to_freeze(&self, lag: LagEstimate, lag_threshold: u64, pause_budget_us: u64) -> bool {
        match self.lag_judgement {
            LagJudgement::EntriesAndForecast => {
                // With no round trip measured yet, no forecast fits.
                let forecast_us =
                    lag.rtt_us.unwrap_or(u64::MAX / 4).saturating_add(lag.lag_entries.saturating_mul(lag.entry_us));
                lag.lag_entries <= lag_threshold && forecast_us <= pause_budget_us / 2
            }
        }
    }

    /// The fence's lease: half the budget. The rest covers the freeze before the fence, the
    /// decision's commit and its news reaching the gateways.
    pub fn lease_us(&self, pause_budget_us: u64) -> u64 {
        match self.commit_point {
            CommitPoint::SourceLogHandoff => pause_budget_us / 2,
        }
    }

    /// How long, from the freeze's start, gateways may hold the partition's writes for one
    /// attempt: four fifths of the budget, the rest covering delivery of notices and releases.
    pub fn hold_us(&self, pause_budget_us: u64) -> u64 {
        match self.write_hold {
            WriteHold::Gateways => pause_budget_us - pause_budget_us / 5,
        }
    }

    /// How long, by a gateway's own clock, one write may be paused in all: the budget less the
    /// most that clock may run slow (`CLOCK_DRIFT_MAX_PPM`), so the pause stays within the budget
    /// in true time, summed over attempts and retries.
    pub fn write_budget_us(&self, pause_budget_us: u64) -> u64 {
        match self.write_hold {
            WriteHold::Gateways => {
                pause_budget_us - (u128::from(pause_budget_us) * u128::from(CLOCK_DRIFT_MAX_PPM) / 1_000_000) as u64
            }
        }
    }

    /// How long the freeze waits for the gateways' acknowledgements before fencing anyway: a
    /// tenth of the budget (a gateway that has not heard is stopped by the fence instead).
    pub fn freeze_wait_us(&self, pause_budget_us: u64) -> u64 {
        match self.write_hold {
            WriteHold::Gateways => (pause_budget_us / 10).max(1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_split_leaves_room_for_delivery() {
        for budget in [1, 7, 1_000, 50_000, 3_600_000_000] {
            let (lease, hold, wait) =
                (REFERENCE.lease_us(budget), REFERENCE.hold_us(budget), REFERENCE.freeze_wait_us(budget));
            assert!(wait + lease <= hold.max(1), "budget {budget}: the fence's lease ends inside the hold window");
            assert!(hold <= budget, "budget {budget}: gateways hold within the budget");
            // A clock slow by the most drift allowed spends a write's local budget within the
            // true one; a single window fits too.
            let slowest = |local: u64| u128::from(local) * 1_000_000 / (1_000_000 - u128::from(CLOCK_DRIFT_MAX_PPM));
            assert!(slowest(REFERENCE.write_budget_us(budget)) <= u128::from(budget), "budget {budget}");
            assert!(slowest(hold) <= u128::from(budget), "budget {budget}: one window");
        }
    }

    #[test]
    fn a_cut_over_waits_for_a_measured_round_trip_and_a_small_lag() {
        let estimate = |lag_entries, rtt_us| LagEstimate { lag_entries, rtt_us, entry_us: 100 };
        assert!(!REFERENCE.ready_to_freeze(estimate(0, None), 64, 50_000), "no round trip measured yet");
        assert!(REFERENCE.ready_to_freeze(estimate(10, Some(2_000)), 64, 50_000));
        assert!(!REFERENCE.ready_to_freeze(estimate(65, Some(2_000)), 64, 50_000), "over the threshold");
        assert!(!REFERENCE.ready_to_freeze(estimate(60, Some(23_000)), 64, 50_000), "the drain would not fit");
    }
}
