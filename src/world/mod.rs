//! The simulated world: nodes, network, disks, clocks and faults, on madsim.
//! It knows nothing about migration, partitions or groups: it never imports `sut`, `checker` or
//! `workload`. The system under test reaches it only through `NodeContext`.
//!
//! The pure models (`clock`, `disk`, `net`, `fault`) know nothing of madsim's nodes; `state` holds
//! the one `World` they live in, and each of `transport` (the network's rules), `disk_faults`
//! (disk faults and crash resolution), `sim` (the operator's handle) and `node_context` (the
//! node's face) adds one job's rules to it.

pub mod clock;
pub mod disk;
mod disk_faults;
pub mod fault;
pub mod net;
mod node_context;
pub mod sim;
mod state;
mod transport;

pub use crate::vocabulary::NodeId;
pub use disk::{DiskConfig, DiskError};
pub use fault::{Fault, FaultId, FaultKind, LatencyRange, LinkSet};
pub use net::{Envelope, Message, NetworkConfig, NetworkStats};
pub use node_context::{NodeContext, NodeDisk, Recv};
pub use sim::{Sim, WorldRecord};
pub use state::{component_rng, NodeState, Program, WorldConfig, INCARNATION_FILE};
