//! System wiring: the one place that names each system's programs and says which node plays
//! which fixed role (the cast the fault engine resolves selectors against).

use super::{RunPlan, SystemPlan};
use crate::nemesis::Cast;
use crate::sut::ping::{self, PingMessage};
use crate::sut::store::message::StoreMessage;
use crate::world::Sim;

/// Every node runs the ping program.
pub(super) fn add_ping_nodes(sim: &Sim<PingMessage>, plan: &RunPlan) {
    let SystemPlan::Ping(config) = &plan.system else {
        unreachable!("runner: ping wiring for a {:?} plan", plan.system)
    };
    for node in 0..plan.nodes {
        sim.add_node(&format!("n{node}"), ping::program(*config));
    }
}

/// Creates the store's nodes in layout order: storage nodes, the master, gateways, the clients.
pub(super) fn add_store_nodes(sim: &Sim<StoreMessage>, plan: &RunPlan) {
    let SystemPlan::Store(store) = &plan.system else {
        unreachable!("runner: store wiring for a {:?} plan", plan.system)
    };
    let layout = store.store.layout();
    for node in 0..layout.node_count() {
        let program = if node < layout.storage_nodes {
            crate::sut::store::node::program(store.store.clone())
        } else if node == layout.master() {
            crate::sut::store::master::program(store.store.clone())
        } else if layout.gateway_index(node).is_some() {
            crate::sut::store::gateway::program(store.store.clone())
        } else {
            crate::workload::client::program(store.workload.clone(), layout, store.store.partitions)
        };
        let id = sim.add_node(&layout.role(node), program);
        assert_eq!(id, node, "store: nodes are created in layout order");
    }
}

/// Which node plays which fixed role.
pub(super) fn cast(plan: &RunPlan) -> Cast {
    match &plan.system {
        SystemPlan::Ping(_) => Cast {
            node_count: plan.nodes,
            storage: Vec::new(),
            master: None,
            gateways: Vec::new(),
            observers: Vec::new(),
        },
        SystemPlan::Store(store) => {
            let layout = store.store.layout();
            Cast {
                node_count: layout.node_count(),
                storage: (0..layout.storage_nodes).collect(),
                master: Some(layout.master()),
                gateways: (0..layout.gateways).map(|index| layout.gateway(index)).collect(),
                observers: vec![layout.clients()],
            }
        }
    }
}
