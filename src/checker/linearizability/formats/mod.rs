//! Readers that turn history files into the checker's histories: Jepsen/Knossos EDN, Jepsen's
//! etcd log lines (as Porcupine's tests use them), Porcupine's key-value logs, and migsim's
//! own JSON Lines. Each format keeps its own semantics (see ../shared/histories/README.md).
//!
//! Owns parsing, the pairing of invocations with completions, format and model detection, and
//! error messages that name the file and line. Must never judge linearizability: a reader
//! either returns a history or says where the input is malformed.

pub mod edn;
mod etcd_log;
mod jepsen_edn;
mod jsonl;

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::str::FromStr;

use super::history::{KvHistory, MultiRegisterHistory, MutexHistory};
use super::{check_kv_report, check_multi_register, check_mutex, CheckOptions, CheckReport};

/// The key under which single-register formats (etcd logs, Knossos cas-register) are checked.
pub const SINGLE_REGISTER_KEY: &str = "register";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Decide from the file's content.
    Auto,
    /// Knossos/Jepsen EDN: a vector or list of op maps, or a stream of them.
    Edn,
    /// Jepsen's etcd test log: `INFO  jepsen.util - 2\t:invoke\t:cas\t[3 0]`.
    EtcdLog,
    /// Porcupine's key-value log: one EDN op map with a `:key` per line.
    KvLog,
    /// migsim's own trace, JSON Lines with `op_invoke` / `op_complete` events.
    Jsonl,
}

impl Format {
    pub const NAMES: &'static str = "auto, edn, etcd-log, kv-log or jsonl";

    pub fn name(self) -> &'static str {
        match self {
            Format::Auto => "auto",
            Format::Edn => "edn",
            Format::EtcdLog => "etcd-log",
            Format::KvLog => "kv-log",
            Format::Jsonl => "jsonl",
        }
    }
}

impl FromStr for Format {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "auto" => Ok(Format::Auto),
            "edn" => Ok(Format::Edn),
            "etcd-log" => Ok(Format::EtcdLog),
            "kv-log" => Ok(Format::KvLog),
            "jsonl" => Ok(Format::Jsonl),
            other => Err(format!(
                "unknown format '{other}' (expected {})",
                Format::NAMES
            )),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModelKind {
    /// One register with read and write.
    Register,
    /// One register with read, write and compare-and-set.
    CasRegister,
    /// Independent string registers per key: get, put, append, cas.
    Kv,
    /// Transactions over several integer registers, checked whole.
    MultiRegister,
    /// One lock: acquire and release, checked whole.
    Mutex,
}

impl ModelKind {
    pub const NAMES: &'static str = "register, cas-register, kv, multi-register or mutex";

    pub fn name(self) -> &'static str {
        match self {
            ModelKind::Register => "register",
            ModelKind::CasRegister => "cas-register",
            ModelKind::Kv => "kv",
            ModelKind::MultiRegister => "multi-register",
            ModelKind::Mutex => "mutex",
        }
    }
}

impl FromStr for ModelKind {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "register" => Ok(ModelKind::Register),
            "cas-register" => Ok(ModelKind::CasRegister),
            "kv" => Ok(ModelKind::Kv),
            "multi-register" => Ok(ModelKind::MultiRegister),
            "mutex" => Ok(ModelKind::Mutex),
            other => Err(format!(
                "unknown model '{other}' (expected {})",
                ModelKind::NAMES
            )),
        }
    }
}

/// A history of any model the checker knows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum History {
    Kv(KvHistory),
    MultiRegister(MultiRegisterHistory),
    Mutex(MutexHistory),
}

impl History {
    pub fn operation_count(&self) -> usize {
        match self {
            History::Kv(history) => history.operations.len(),
            History::MultiRegister(history) => history.operations.len(),
            History::Mutex(history) => history.operations.len(),
        }
    }

    /// Checks the history with its model: key-value histories split by key, the others whole.
    pub fn check(&self, options: &CheckOptions) -> CheckReport {
        match self {
            History::Kv(history) => check_kv_report(history, options),
            History::MultiRegister(history) => check_multi_register(history, options),
            History::Mutex(history) => check_mutex(history, options),
        }
    }
}

/// A history read from a file, with the format and model it was read as.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParsedHistory {
    pub format: Format,
    pub model: ModelKind,
    pub history: History,
}

/// Malformed input: the file, the 1-based line (0 when the whole file is at fault), and what
/// is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    pub file: String,
    pub line: usize,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(formatter, "{}: {}", self.file, self.message)
        } else {
            write!(formatter, "{}:{}: {}", self.file, self.line, self.message)
        }
    }
}

impl std::error::Error for ParseError {}

/// A reader's error before the file name is attached.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct LineError {
    pub(crate) line: usize,
    pub(crate) message: String,
}

pub(crate) fn line_error<T>(line: usize, message: impl Into<String>) -> Result<T, LineError> {
    Err(LineError {
        line,
        message: message.into(),
    })
}

/// Reads and parses one file. `model: None` lets the format (and for EDN the operations) decide.
pub fn read_file(
    path: &Path,
    format: Format,
    model: Option<ModelKind>,
) -> Result<ParsedHistory, ParseError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|error| ParseError {
        file: file.clone(),
        line: 0,
        message: format!("cannot read: {error}"),
    })?;
    parse_text(&file, &text, format, model)
}

/// Parses `text` as if read from `file` (the name only appears in errors).
pub fn parse_text(
    file: &str,
    text: &str,
    format: Format,
    model: Option<ModelKind>,
) -> Result<ParsedHistory, ParseError> {
    let format = match format {
        Format::Auto => detect_format(text),
        Format::Edn | Format::EtcdLog | Format::KvLog | Format::Jsonl => format,
    };
    let result = match format {
        Format::Auto | Format::Edn => jepsen_edn::parse(text, model, false),
        Format::KvLog => jepsen_edn::parse(text, model, true),
        Format::EtcdLog => etcd_log::parse(text, model),
        Format::Jsonl => jsonl::parse(text, model),
    };
    let (model, history) = result.map_err(|error| ParseError {
        file: file.to_owned(),
        line: error.line,
        message: error.message,
    })?;
    // EDN maps carrying a :key are Porcupine's key-value log, whatever the caller called them.
    let format = if format == Format::Edn && model == ModelKind::Kv {
        Format::KvLog
    } else {
        format
    };
    Ok(ParsedHistory {
        format,
        model,
        history,
    })
}

/// Guesses the format from the first line that is not blank or a comment.
pub fn detect_format(text: &str) -> Format {
    let first = text
        .lines()
        .map(str::trim)
        .find(|line| !line.is_empty() && !line.starts_with(';'));
    match first {
        Some(line) if line.starts_with("{\"") => Format::Jsonl,
        Some(line) if line.contains("jepsen.util") || line.starts_with("INFO") => Format::EtcdLog,
        Some(_) | None => Format::Edn,
    }
}

/// What became of an invoked operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Completion {
    /// It happened and returned (its result is in the completion).
    Ok,
    /// It definitely did not happen.
    Fail,
    /// Unknown: it may have happened once, or not.
    Info,
    /// Never completed before the history ended: unknown too.
    Pending,
}

/// One invocation with its completion, as the line-oriented readers pair them.
#[derive(Clone, Debug)]
pub(crate) struct Paired<T> {
    pub(crate) client: u64,
    pub(crate) invoke_line: usize,
    /// Position of the invocation in the history (the real-time order).
    pub(crate) call: u64,
    pub(crate) completion: Completion,
    pub(crate) return_position: Option<u64>,
    pub(crate) invocation: T,
    pub(crate) completed: Option<T>,
}

/// Pairs events by client: an invocation opens an operation, the client's next event closes it.
pub(crate) struct Pairing<T> {
    operations: Vec<Paired<T>>,
    open: HashMap<u64, usize>,
}

impl<T> Pairing<T> {
    pub(crate) fn new() -> Self {
        Pairing {
            operations: Vec::new(),
            open: HashMap::new(),
        }
    }

    pub(crate) fn invoke(
        &mut self,
        client: u64,
        line: usize,
        position: u64,
        invocation: T,
    ) -> Result<(), LineError> {
        if let Some(open) = self.open.get(&client) {
            let opened_on = self.operations[*open].invoke_line;
            return line_error(
                line,
                format!("process {client} invokes again before its operation from line {opened_on} completed"),
            );
        }
        self.open.insert(client, self.operations.len());
        self.operations.push(Paired {
            client,
            invoke_line: line,
            call: position,
            completion: Completion::Pending,
            return_position: None,
            invocation,
            completed: None,
        });
        Ok(())
    }

    /// Closes the client's open operation; returns the invocation so the caller can compare.
    pub(crate) fn complete(
        &mut self,
        client: u64,
        line: usize,
        position: u64,
        completion: Completion,
        completed: T,
    ) -> Result<&Paired<T>, LineError> {
        let Some(index) = self.open.remove(&client) else {
            return line_error(
                line,
                format!("process {client} completes an operation it never invoked"),
            );
        };
        let operation = &mut self.operations[index];
        operation.completion = completion;
        operation.return_position = Some(position);
        operation.completed = Some(completed);
        Ok(operation)
    }

    pub(crate) fn finish(self) -> Vec<Paired<T>> {
        self.operations
    }
}
