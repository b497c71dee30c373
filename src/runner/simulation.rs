//! One run inside its madsim runtime: build the world and the system, drive the fault engine
//! through the safety phase, heal everything, run the liveness phase, close. This is the only
//! place that sequences a run's phases; what runs on the nodes is the system wiring's business.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use super::system;
use super::{RunPlan, SystemPlan};
use crate::nemesis::{Nemesis, Step};
use crate::sut::ping::PingMessage;
use crate::sut::store::message::StoreMessage;
use crate::trace::{EventKind, SharedTrace, Subscription, TraceLevel};
use crate::world::clock::{now_us, sleep_until_us, sleep_us};
use crate::world::{FaultId, Message, Sim, WorldConfig, WorldRecord};

/// Runs one seed of `plan`. The world's trace is put into `trace_slot` as soon as it exists, so
/// the host can read it even if the simulation panics.
pub(super) async fn simulate(
    plan: RunPlan,
    seed: u64,
    trace: TraceLevel,
    trace_slot: Arc<Mutex<Option<SharedTrace>>>,
) -> WorldRecord {
    match &plan.system {
        SystemPlan::Ping(_) => {
            simulate_system::<PingMessage>(&plan, seed, trace, trace_slot, system::add_ping_nodes).await
        }
        SystemPlan::Store(_) => {
            simulate_system::<StoreMessage>(&plan, seed, trace, trace_slot, system::add_store_nodes).await
        }
    }
}

async fn simulate_system<M: Message>(
    plan: &RunPlan,
    seed: u64,
    trace: TraceLevel,
    trace_slot: Arc<Mutex<Option<SharedTrace>>>,
    add_nodes: fn(&Sim<M>, &RunPlan),
) -> WorldRecord {
    let sim: Sim<M> = Sim::new(WorldConfig {
        seed,
        network: plan.network.clone(),
        disk: plan.disk.clone(),
        disks_per_node: plan.disks_per_node,
        trace,
    });
    *trace_slot.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(sim.trace());
    // The engine watches from before the first node boots, so it misses no view.
    let watch = sim.watch(Nemesis::watches);
    let nemesis =
        Nemesis::new(plan.faults.clone(), system::cast(plan), crate::world::component_rng(seed, "nemesis", 0));
    add_nodes(&sim, plan);
    set_clocks(&sim, plan, seed);
    safety_phase(&sim, nemesis, watch, plan.duration_us).await;
    sim.heal_all();
    sleep_us(plan.heal_us).await;
    sim.finish()
}

/// Each node's baseline clock: a skew and a drift drawn within the scenario's `[clock]` bounds.
fn set_clocks<M: Message>(sim: &Sim<M>, plan: &RunPlan, seed: u64) {
    if plan.clock_skew_max_us == 0 && plan.clock_drift_ppm_max == 0 {
        return;
    }
    let mut rng = crate::world::component_rng(seed, "clock", 0);
    for node in 0..plan.nodes {
        let skew = plan.clock_skew_max_us as i64;
        let drift = plan.clock_drift_ppm_max as i64;
        let clock = crate::world::clock::NodeClock {
            skew_us: rand::Rng::gen_range(&mut rng, -skew..=skew),
            drift_ppm: rand::Rng::gen_range(&mut rng, -drift..=drift),
        };
        sim.set_clock(node, clock);
    }
}

/// Drives the fault engine until the safety phase ends at `end_us`: it sees every event it
/// watches as it is recorded, and applies what it says is due. Nothing fires at or after the
/// end: each fault that never fired is recorded as skipped, with why, before the driver returns;
/// `heal_all` heals whatever is still active.
async fn safety_phase<M: Message>(sim: &Sim<M>, mut nemesis: Nemesis, watch: Subscription, end_us: u64) {
    let mut injected: BTreeMap<u32, Vec<FaultId>> = BTreeMap::new();
    loop {
        while let Some(event) = watch.try_next() {
            nemesis.observe(&event);
        }
        let now = now_us();
        if now >= end_us {
            for step in nemesis.end(end_us) {
                apply(sim, step, &mut injected);
            }
            return;
        }
        for step in nemesis.due(now) {
            apply(sim, step, &mut injected);
        }
        let next_us = nemesis.next_due_us().map_or(end_us, |due| due.min(end_us));
        let event = std::pin::pin!(watch.next());
        let timer = std::pin::pin!(sleep_until_us(next_us));
        if let madsim::export::futures::future::Either::Left((event, _)) =
            madsim::export::futures::future::select(event, timer).await
        {
            nemesis.observe(&event);
        }
    }
}

/// Carries one step of the engine into the world. `injected` holds the world faults each entry
/// applied, for its heal.
fn apply<M: Message>(sim: &Sim<M>, step: Step, injected: &mut BTreeMap<u32, Vec<FaultId>>) {
    match step {
        Step::Inject { entry, faults, selector } => {
            let ids = faults.into_iter().map(|fault| sim.inject_from(fault, Some(entry), selector.clone()));
            injected.entry(entry).or_default().extend(ids);
        }
        Step::Skip { entry, kind, selector, reason } => {
            sim.record(None, EventKind::FaultSkip { fault: kind, entry, selector, reason });
        }
        Step::Heal { entry } => {
            for id in injected.remove(&entry).unwrap_or_default() {
                sim.heal(id);
            }
        }
    }
}
