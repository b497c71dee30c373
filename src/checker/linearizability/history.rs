//! The histories the linearizability checker accepts: plain data, one struct per model.
//!
//! Owns the vocabulary (operations, outcomes, call and return times). Must never depend on the
//! simulated world: a history is a value that any program (the simulation, a test, the
//! `migsim check` command) can build.

/// A value an operation observed, or the fact that nobody knows what it observed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Observed<T> {
    Value(T),
    /// The operation completed but its result was not recorded (a Jepsen read whose value is
    /// nil, an etcd read that timed out): it constrains nothing.
    Unknown,
}

/// What a key-value operation asked for and, where it returned, what it saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KvFunction {
    /// Read the key; `None` means the key was absent.
    Get { result: Observed<Option<String>> },
    /// Overwrite the key.
    Put { value: String },
    /// Concatenate `value` to the key; appending to an absent key makes it equal to `value`.
    Append { value: String },
    /// Compare-and-set: when the key equals `expected` (`None`: absent), set it to `new`.
    /// `result` is whether the compare succeeded; a compare that failed is an observation
    /// that must be linearized like a read.
    Cas { expected: Option<String>, new: String, result: Observed<bool> },
}

impl KvFunction {
    /// The short name used in reports and pictures.
    pub fn name(&self) -> &'static str {
        match self {
            KvFunction::Get { .. } => "get",
            KvFunction::Put { .. } => "put",
            KvFunction::Append { .. } => "append",
            KvFunction::Cas { .. } => "cas",
        }
    }
}

/// One operation of a key-value history.
///
/// `return_us == None` makes the operation indeterminate (it timed out, its client crashed):
/// it may take effect once, at any time after `call_us`, or never, and its recorded result (if
/// any) is ignored. Operations that definitely did not happen must be left out of the history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KvOperation {
    /// An identifier the caller chose; reports quote it.
    pub id: u64,
    /// The client (process) that issued the operation; pictures draw one lane per client.
    pub client: u64,
    pub key: String,
    pub function: KvFunction,
    pub call_us: u64,
    pub return_us: Option<u64>,
}

/// A key-value history: every key is an independent register starting at `initial_value`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KvHistory {
    /// The value of every key before the first operation (`None`: absent).
    pub initial_value: Option<String>,
    pub operations: Vec<KvOperation>,
}

/// One step of a multi-register transaction (Knossos's `[:read :x 1]` / `[:write :y 2]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RegisterAccess {
    /// `value == None`: the read's value was not recorded, so it is unconstrained.
    Read {
        register: String,
        value: Option<i64>,
    },
    Write {
        register: String,
        value: i64,
    },
}

/// A multi-register transaction, checked as one atomic operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransactionOperation {
    pub id: u64,
    pub client: u64,
    pub accesses: Vec<RegisterAccess>,
    pub call_us: u64,
    pub return_us: Option<u64>,
}

/// A history over several integer registers, checked whole (transactions span registers).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MultiRegisterHistory {
    /// The value of a register no operation has written yet.
    pub initial_value: i64,
    pub operations: Vec<TransactionOperation>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MutexFunction {
    Acquire,
    Release,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MutexOperation {
    pub id: u64,
    pub client: u64,
    pub function: MutexFunction,
    pub call_us: u64,
    pub return_us: Option<u64>,
}

/// A history of one lock, initially released.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MutexHistory {
    pub operations: Vec<MutexOperation>,
}
