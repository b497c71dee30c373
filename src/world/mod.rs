//! The simulated world: nodes, network, disks, clocks and faults, on madsim.
//! It knows nothing about migration, partitions or groups: it never imports `sut`, `checker` or
//! `workload`. The system under test reaches it only through `NodeContext`.

pub mod disk;
pub mod fault;

pub use fault::{Fault, FaultKind};

/// A node's id: stable across crashes, restarts and replacement.
pub type NodeId = u32;
