//! The simulated world: nodes, network, disks, clocks and faults, on madsim.
//! It knows nothing about migration, partitions or groups: it never imports `sut`, `checker` or
//! `workload`. The system under test reaches it only through `NodeContext`.

pub mod clock;
pub mod disk;
pub mod fault;
pub mod net;
pub mod sim;

pub use crate::vocabulary::NodeId;
pub use disk::{DiskConfig, DiskError};
pub use fault::{Fault, FaultKind, LatencyRange, LinkSet};
pub use net::{Envelope, Message, NetworkConfig, NetworkStats};
pub use sim::{
    component_rng, FaultId, NodeContext, NodeDisk, NodeState, Program, Sim, WorldConfig, WorldRecord, INCARNATION_FILE,
};
