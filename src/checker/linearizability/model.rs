//! Sequential specifications the search linearizes against: a register per key (get, put,
//! append, cas), a set of integer registers updated by transactions, and a mutex.
//!
//! Owns the compiled, compact form of operations and states: a state is a `u32` id (values and
//! whole states are interned), so the search can hash and compare states in one instruction.
//! Must never know about time, clients or the search order: a model only answers "is this
//! operation legal in this state, and what state follows".

use std::collections::HashMap;

use super::history::{KvFunction, MutexFunction, Observed, RegisterAccess};

/// A sequential specification over compiled operations `0..operation_count`.
pub(crate) trait Model {
    fn initial_state(&self) -> u32;
    /// The state after `operation` runs in `state`, or `None` when the operation's recorded
    /// result is impossible in `state`. Takes `&mut self` so models may intern new states.
    fn step(&mut self, state: u32, operation: usize) -> Option<u32>;
    /// True when the operation, wherever it is legal, leaves the state unchanged (a read, a
    /// failed compare). The search places such an operation as soon as it is legal without
    /// trying alternatives: moving a legal read earlier never invalidates a linearization.
    fn is_read_only(&self, operation: usize) -> bool;
    fn describe_state(&self, state: u32) -> String;
}

/// Interns optional strings: id 0 is "absent", every other id one distinct string.
#[derive(Debug, Default)]
pub(crate) struct ValueTable {
    strings: Vec<String>,
    ids: HashMap<String, u32>,
}

impl ValueTable {
    pub(crate) const ABSENT: u32 = 0;

    pub(crate) fn intern(&mut self, value: Option<&str>) -> u32 {
        let Some(text) = value else {
            return Self::ABSENT;
        };
        if let Some(id) = self.ids.get(text) {
            return *id;
        }
        self.strings.push(text.to_owned());
        let id = self.strings.len() as u32;
        self.ids.insert(text.to_owned(), id);
        id
    }

    pub(crate) fn lookup(&self, id: u32) -> Option<&str> {
        if id == Self::ABSENT {
            return None;
        }
        self.strings.get(id as usize - 1).map(String::as_str)
    }
}

/// A key-value operation compiled against one key's value table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RegisterStep {
    Read {
        value: u32,
    },
    Write {
        value: u32,
    },
    Append {
        suffix: u32,
    },
    CasSucceeded {
        expected: u32,
        new: u32,
    },
    CasFailed {
        expected: u32,
    },
    /// An indeterminate compare-and-set: it sets `new` if the compare holds, else does nothing.
    CasUnknown {
        expected: u32,
        new: u32,
    },
}

/// One key's register. Appends create new strings, interned as the search meets them.
#[derive(Debug)]
pub(crate) struct RegisterModel {
    pub(crate) values: ValueTable,
    pub(crate) steps: Vec<RegisterStep>,
    initial: u32,
    /// (state, suffix) -> state after the append, so a revisited append does not reallocate.
    appended: HashMap<(u32, u32), u32>,
}

impl RegisterModel {
    pub(crate) fn new(initial_value: Option<&str>) -> Self {
        let mut values = ValueTable::default();
        let initial = values.intern(initial_value);
        RegisterModel { values, steps: Vec::new(), initial, appended: HashMap::new() }
    }

    /// Compiles one operation. `indeterminate` operations lose their recorded result.
    /// Returns `None` for operations that constrain nothing and change nothing (an unknown
    /// read), which the caller leaves out of the search.
    pub(crate) fn compile(&mut self, function: &KvFunction, indeterminate: bool) -> Option<RegisterStep> {
        let step = match function {
            KvFunction::Get { result } => match (indeterminate, result) {
                (false, Observed::Value(value)) => RegisterStep::Read { value: self.values.intern(value.as_deref()) },
                (true, _) | (false, Observed::Unknown) => return None,
            },
            KvFunction::Put { value } => RegisterStep::Write { value: self.values.intern(Some(value)) },
            KvFunction::Append { value } => RegisterStep::Append { suffix: self.values.intern(Some(value)) },
            KvFunction::Cas { expected, new, result } => {
                let expected = self.values.intern(expected.as_deref());
                let new = self.values.intern(Some(new));
                match (indeterminate, result) {
                    (false, Observed::Value(true)) => RegisterStep::CasSucceeded { expected, new },
                    (false, Observed::Value(false)) => RegisterStep::CasFailed { expected },
                    (true, _) | (false, Observed::Unknown) => RegisterStep::CasUnknown { expected, new },
                }
            }
        };
        Some(step)
    }

    pub(crate) fn push(&mut self, step: RegisterStep) {
        self.steps.push(step);
    }

    pub(crate) fn initial_state_id(&self) -> u32 {
        self.initial
    }

    pub(crate) fn describe_value_id(&self, value: u32) -> String {
        describe_value(self.values.lookup(value))
    }
}

impl Model for RegisterModel {
    fn initial_state(&self) -> u32 {
        self.initial
    }

    fn step(&mut self, state: u32, operation: usize) -> Option<u32> {
        match self.steps[operation] {
            RegisterStep::Read { value } => (state == value).then_some(state),
            RegisterStep::Write { value } => Some(value),
            RegisterStep::CasSucceeded { expected, new } => (state == expected).then_some(new),
            RegisterStep::CasFailed { expected } => (state != expected).then_some(state),
            RegisterStep::CasUnknown { expected, new } => Some(if state == expected { new } else { state }),
            RegisterStep::Append { suffix } => {
                if let Some(next) = self.appended.get(&(state, suffix)) {
                    return Some(*next);
                }
                let mut text = self.values.lookup(state).unwrap_or("").to_owned();
                text.push_str(self.values.lookup(suffix).unwrap_or(""));
                let next = self.values.intern(Some(&text));
                self.appended.insert((state, suffix), next);
                Some(next)
            }
        }
    }

    fn is_read_only(&self, operation: usize) -> bool {
        match self.steps[operation] {
            RegisterStep::Read { .. } | RegisterStep::CasFailed { .. } => true,
            RegisterStep::CasSucceeded { expected, new } => expected == new,
            RegisterStep::Write { .. } | RegisterStep::Append { .. } | RegisterStep::CasUnknown { .. } => false,
        }
    }

    fn describe_state(&self, state: u32) -> String {
        describe_value(self.values.lookup(state))
    }
}

/// How reports print a register value: quoted, or `absent`.
pub(crate) fn describe_value(value: Option<&str>) -> String {
    match value {
        Some(text) => format!("{text:?}"),
        None => "absent".to_owned(),
    }
}

/// A transaction compiled to register indices.
#[derive(Clone, Debug)]
pub(crate) enum CompiledAccess {
    Read { register: usize, value: Option<i64> },
    Write { register: usize, value: i64 },
}

/// Several integer registers; a state is one interned vector of all their values.
#[derive(Debug)]
pub(crate) struct MultiRegisterModel {
    pub(crate) register_names: Vec<String>,
    transactions: Vec<Vec<CompiledAccess>>,
    states: Vec<Vec<i64>>,
    state_ids: HashMap<Vec<i64>, u32>,
}

impl MultiRegisterModel {
    pub(crate) fn new<'a>(
        initial_value: i64,
        transactions: impl Iterator<Item = &'a [RegisterAccess]> + Clone,
    ) -> Self {
        let mut register_names: Vec<String> = Vec::new();
        for accesses in transactions.clone() {
            for access in accesses {
                let name = match access {
                    RegisterAccess::Read { register, .. } | RegisterAccess::Write { register, .. } => register,
                };
                if !register_names.contains(name) {
                    register_names.push(name.clone());
                }
            }
        }
        register_names.sort();
        let index_of = |name: &str| register_names.iter().position(|known| known == name).unwrap_or(0);
        let compiled = transactions
            .map(|accesses| {
                accesses
                    .iter()
                    .map(|access| match access {
                        RegisterAccess::Read { register, value } => {
                            CompiledAccess::Read { register: index_of(register), value: *value }
                        }
                        RegisterAccess::Write { register, value } => {
                            CompiledAccess::Write { register: index_of(register), value: *value }
                        }
                    })
                    .collect()
            })
            .collect();
        let initial = vec![initial_value; register_names.len()];
        let mut model = MultiRegisterModel {
            register_names,
            transactions: compiled,
            states: Vec::new(),
            state_ids: HashMap::new(),
        };
        model.intern(initial);
        model
    }

    fn intern(&mut self, values: Vec<i64>) -> u32 {
        if let Some(id) = self.state_ids.get(&values) {
            return *id;
        }
        let id = self.states.len() as u32;
        self.states.push(values.clone());
        self.state_ids.insert(values, id);
        id
    }
}

impl Model for MultiRegisterModel {
    fn initial_state(&self) -> u32 {
        0
    }

    fn step(&mut self, state: u32, operation: usize) -> Option<u32> {
        let mut values = self.states[state as usize].clone();
        for access in &self.transactions[operation] {
            match access {
                CompiledAccess::Read { register, value: Some(expected) } => {
                    if values[*register] != *expected {
                        return None;
                    }
                }
                CompiledAccess::Read { value: None, .. } => {}
                CompiledAccess::Write { register, value } => values[*register] = *value,
            }
        }
        Some(self.intern(values))
    }

    fn is_read_only(&self, operation: usize) -> bool {
        self.transactions[operation].iter().all(|access| match access {
            CompiledAccess::Read { .. } => true,
            CompiledAccess::Write { .. } => false,
        })
    }

    fn describe_state(&self, state: u32) -> String {
        let values = &self.states[state as usize];
        let pairs: Vec<String> =
            self.register_names.iter().zip(values).map(|(name, value)| format!("{name}={value}")).collect();
        format!("{{{}}}", pairs.join(", "))
    }
}

/// One lock: state 0 released, 1 held. Acquiring a held lock or releasing a free one is illegal.
#[derive(Debug)]
pub(crate) struct MutexModel {
    pub(crate) functions: Vec<MutexFunction>,
}

impl Model for MutexModel {
    fn initial_state(&self) -> u32 {
        0
    }

    fn step(&mut self, state: u32, operation: usize) -> Option<u32> {
        match (self.functions[operation], state) {
            (MutexFunction::Acquire, 0) => Some(1),
            (MutexFunction::Release, 1) => Some(0),
            (MutexFunction::Acquire | MutexFunction::Release, _) => None,
        }
    }

    fn is_read_only(&self, _operation: usize) -> bool {
        false
    }

    fn describe_state(&self, state: u32) -> String {
        if state == 0 {
            "released".to_owned()
        } else {
            "held".to_owned()
        }
    }
}
