//! Sequential specifications the search linearizes against: a register per key (get, put,
//! append, cas), a set of integer registers updated by transactions, and a mutex.
//!
//! Owns the compiled, compact form of operations and states: a state is a `u32` id (values and
//! whole states are interned), so the search can hash and compare states in one instruction.
//! Must never know about time, clients or the search order: a model only answers "is this
//! operation legal in this state, and what state follows".

use std::collections::{BTreeMap, HashMap};

use super::history::{KvFunction, MutexFunction, Observed, RegisterAccess};
pub(crate) use super::values::ValueTable;

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
    /// A key equal for two operations exactly when they have the same effect in every state;
    /// `None` when the model cannot tell (the operation is then only equal to itself). The
    /// search uses one of several interchangeable indeterminate operations at a time.
    fn effect_key(&self, operation: usize) -> Option<u128>;
    /// True when the operation sets a state that no read or compare can ever match (a write
    /// whose value nobody observes). Such an indeterminate operation only ever matters to let a
    /// failed compare pass, so the search tries it only then.
    fn is_unobservable_write(&self, operation: usize) -> bool;
    /// True for a failed compare-and-set: illegal when the state equals what it compared with.
    fn is_failed_compare(&self, operation: usize) -> bool;
    /// Bytes the model holds (compiled operations, interned values and states).
    fn memory_bytes(&self) -> u64;
    /// The state the operation requires to be legal (a read's value, a successful compare's
    /// expected value), if it requires exactly one.
    fn observed_value(&self, _operation: usize) -> Option<u32> {
        None
    }
    /// The state the operation sets outright whatever the state before (a write's value, a
    /// compare-and-set's new value), if any. Every other change of state is an extension.
    fn written_value(&self, _operation: usize) -> Option<u32> {
        None
    }
    /// False when extensions alone (appends) can certainly never turn `state` into `target`.
    fn may_reach(&mut self, _state: u32, _target: u32) -> bool {
        true
    }
    /// For each of `observed`, the indices of those `written` values from which extensions
    /// alone may lead to it (possibly a few more: never fewer); `None` when the model cannot
    /// tell cheaply.
    fn may_lead_to(&mut self, _written: &[u32], _observed: &[u32]) -> Option<Vec<Vec<u32>>> {
        None
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

/// One key's register. Appends create new states, interned in O(1) as the search meets them.
#[derive(Debug)]
pub(crate) struct RegisterModel {
    pub(crate) values: ValueTable,
    pub(crate) steps: Vec<RegisterStep>,
    initial: u32,
}

impl RegisterModel {
    pub(crate) fn new(initial_value: Option<&str>) -> Self {
        let mut values = ValueTable::default();
        let initial = values.intern(initial_value);
        RegisterModel { values, steps: Vec::new(), initial }
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

    /// From now on, states no read or compare can ever match or extend into one they match are
    /// all one state (see `ValueTable::track_live_prefixes`). Histories whose compared values
    /// have more than `max_prefixes` distinct prefixes keep their states apart.
    pub(crate) fn merge_dead_states(&mut self, max_prefixes: usize) {
        let mut compared: Vec<u32> = self
            .steps
            .iter()
            .filter_map(|step| match *step {
                RegisterStep::Read { value } => Some(value),
                RegisterStep::CasSucceeded { expected, .. }
                | RegisterStep::CasFailed { expected }
                | RegisterStep::CasUnknown { expected, .. } => Some(expected),
                RegisterStep::Write { .. } | RegisterStep::Append { .. } => None,
            })
            .collect();
        compared.sort_unstable();
        compared.dedup();
        self.values.track_live_prefixes(&compared, max_prefixes);
        self.initial = self.values.canonical(self.initial);
    }

    pub(crate) fn describe_value_id(&self, value: u32) -> String {
        describe_value_of(&self.values, value)
    }
}

/// How reports print a value of the table: quoted (shortened when long), `absent`, or the
/// poisoned state.
fn describe_value_of(values: &ValueTable, value: u32) -> String {
    if value == ValueTable::POISON {
        return "a value no read or compare ever shows (a write nobody observed)".to_owned();
    }
    describe_value(values.text(value).as_deref())
}

impl Model for RegisterModel {
    fn initial_state(&self) -> u32 {
        self.initial
    }

    fn step(&mut self, state: u32, operation: usize) -> Option<u32> {
        match self.steps[operation] {
            RegisterStep::Read { value } => (state == value).then_some(state),
            RegisterStep::Write { value } => Some(self.values.canonical(value)),
            RegisterStep::CasSucceeded { expected, new } => (state == expected).then(|| self.values.canonical(new)),
            RegisterStep::CasFailed { expected } => (state != expected).then_some(state),
            RegisterStep::CasUnknown { expected, new } => {
                Some(if state == expected { self.values.canonical(new) } else { state })
            }
            RegisterStep::Append { suffix } => {
                let next = self.values.append(state, suffix);
                Some(self.values.canonical(next))
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
        describe_value_of(&self.values, state)
    }

    fn effect_key(&self, operation: usize) -> Option<u128> {
        let pack = |tag: u128, first: u32, second: u32| Some(tag << 64 | u128::from(first) << 32 | u128::from(second));
        match self.steps[operation] {
            RegisterStep::Read { value } => pack(1, value, 0),
            RegisterStep::Write { value } => pack(2, value, 0),
            RegisterStep::Append { suffix } => pack(3, suffix, 0),
            RegisterStep::CasSucceeded { expected, new } => pack(4, expected, new),
            RegisterStep::CasFailed { expected } => pack(5, expected, 0),
            RegisterStep::CasUnknown { expected, new } => pack(6, expected, new),
        }
    }

    fn is_unobservable_write(&self, operation: usize) -> bool {
        matches!(self.steps[operation], RegisterStep::Write { value: ValueTable::POISON })
    }

    fn is_failed_compare(&self, operation: usize) -> bool {
        matches!(self.steps[operation], RegisterStep::CasFailed { .. })
    }

    fn memory_bytes(&self) -> u64 {
        self.values.memory_bytes() + (self.steps.capacity() * std::mem::size_of::<RegisterStep>()) as u64
    }

    fn observed_value(&self, operation: usize) -> Option<u32> {
        match self.steps[operation] {
            RegisterStep::Read { value } => Some(value),
            RegisterStep::CasSucceeded { expected, .. } => Some(expected),
            RegisterStep::Write { .. }
            | RegisterStep::Append { .. }
            | RegisterStep::CasFailed { .. }
            | RegisterStep::CasUnknown { .. } => None,
        }
    }

    fn written_value(&self, operation: usize) -> Option<u32> {
        match self.steps[operation] {
            RegisterStep::Write { value } => Some(value),
            RegisterStep::CasSucceeded { new, .. } | RegisterStep::CasUnknown { new, .. } => Some(new),
            RegisterStep::Read { .. } | RegisterStep::Append { .. } | RegisterStep::CasFailed { .. } => None,
        }
    }

    fn may_reach(&mut self, state: u32, target: u32) -> bool {
        if state == target {
            return true;
        }
        // Nothing makes a present key absent; appends to an absent key may build anything.
        match (state, target) {
            (_, ValueTable::ABSENT) => false,
            (ValueTable::ABSENT, _) => true,
            _ => self.values.may_start_with(target, state),
        }
    }

    fn may_lead_to(&mut self, written: &[u32], observed: &[u32]) -> Option<Vec<Vec<u32>>> {
        // Written values by length, then by hash: a target's prefixes are looked up once per
        // distinct length instead of compared with every written value.
        let mut by_length: BTreeMap<u64, HashMap<u64, Vec<u32>>> = BTreeMap::new();
        for (index, value) in written.iter().enumerate() {
            if *value == ValueTable::ABSENT || *value == ValueTable::POISON {
                continue;
            }
            let length = self.values.length(*value);
            by_length.entry(length).or_default().entry(self.values.hash(*value)).or_default().push(index as u32);
        }
        if by_length.len() > MAX_WRITTEN_LENGTHS {
            return None;
        }
        let mut leads = Vec::with_capacity(observed.len());
        for target in observed {
            let mut found = Vec::new();
            if *target != ValueTable::ABSENT && *target != ValueTable::POISON {
                let target_length = self.values.length(*target);
                for (length, by_hash) in &by_length {
                    if *length > target_length {
                        break;
                    }
                    if let Some(indices) = by_hash.get(&self.values.prefix_hash(*target, *length as usize)) {
                        found.extend_from_slice(indices);
                    }
                }
            }
            leads.push(found);
        }
        Some(leads)
    }
}

/// Past this many distinct lengths of written values, finding which lead to which observed
/// value costs more than the pruning it enables saves.
const MAX_WRITTEN_LENGTHS: usize = 256;

/// Values longer than this are shortened in reports, so an explanation's size stays bounded
/// however long the appended values grow.
const SHOWN_VALUE_LENGTH: usize = 100;

/// How reports print a register value: quoted, or `absent`. A long value shows its start and
/// its end (where appends differ) with its length.
pub(crate) fn describe_value(value: Option<&str>) -> String {
    match value {
        Some(text) if text.chars().count() > SHOWN_VALUE_LENGTH => {
            let head: String = text.chars().take(20).collect();
            let tail_start = text.chars().count() - 60;
            let tail: String = text.chars().skip(tail_start).collect();
            format!("{head:?}…{tail:?} ({} bytes)", text.len())
        }
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

    fn effect_key(&self, _operation: usize) -> Option<u128> {
        None
    }

    fn is_unobservable_write(&self, _operation: usize) -> bool {
        false
    }

    fn is_failed_compare(&self, _operation: usize) -> bool {
        false
    }

    fn memory_bytes(&self) -> u64 {
        let per_state = (self.register_names.len() * 8 + 24 + 32) as u64;
        self.states.len() as u64 * per_state
            + self.transactions.iter().map(|accesses| (accesses.len() * 24 + 24) as u64).sum::<u64>()
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

    fn effect_key(&self, operation: usize) -> Option<u128> {
        Some(match self.functions[operation] {
            MutexFunction::Acquire => 1,
            MutexFunction::Release => 2,
        })
    }

    fn is_unobservable_write(&self, _operation: usize) -> bool {
        false
    }

    fn is_failed_compare(&self, _operation: usize) -> bool {
        false
    }

    fn memory_bytes(&self) -> u64 {
        self.functions.capacity() as u64
    }

    fn describe_state(&self, state: u32) -> String {
        if state == 0 {
            "released".to_owned()
        } else {
            "held".to_owned()
        }
    }
}
