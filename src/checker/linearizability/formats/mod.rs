//! Readers that turn history files into the checker's histories: Jepsen/Knossos EDN, Jepsen's
//! etcd log lines (as Porcupine's tests use them), Porcupine's key-value logs, and migsim's
//! own JSON Lines. Each format keeps its own semantics (see tests/histories/README.md).
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
            other => Err(format!("unknown format '{other}' (expected {})", Format::NAMES)),
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
            other => Err(format!("unknown model '{other}' (expected {})", ModelKind::NAMES)),
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
    Err(LineError { line, message: message.into() })
}

/// Reads and parses one file. `model: None` lets the format (and for EDN the operations) decide.
pub fn read_file(path: &Path, format: Format, model: Option<ModelKind>) -> Result<ParsedHistory, ParseError> {
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
        Format::Auto | Format::Edn => jepsen_edn::parse(text, model),
        Format::KvLog => jepsen_edn::parse_kv_log(text, model),
        Format::EtcdLog => etcd_log::parse(text, model),
        Format::Jsonl => jsonl::parse(text, model),
    };
    let (model, history) =
        result.map_err(|error| ParseError { file: file.to_owned(), line: error.line, message: error.message })?;
    // EDN maps carrying a :key are Porcupine's key-value log, whatever the caller called them.
    let format = if format == Format::Edn && model == ModelKind::Kv { Format::KvLog } else { format };
    Ok(ParsedHistory { format, model, history })
}

/// Guesses the format from the first line that is not blank or a comment (and, for logs that
/// open with other components' messages, from the first line that names `jepsen.util`).
pub fn detect_format(text: &str) -> Format {
    let mut significant = text.lines().map(str::trim).filter(|line| !line.is_empty() && !line.starts_with(';'));
    let Some(first) = significant.next() else {
        return Format::Edn;
    };
    if first.starts_with("{\"") {
        return Format::Jsonl;
    }
    let names_logger = |line: &str| line.contains("jepsen.util");
    if names_logger(first) {
        return Format::EtcdLog;
    }
    if first.starts_with(['{', '[', '(', '#']) {
        return Format::Edn;
    }
    // A log line from another component first: an etcd log if some line names jepsen.util.
    let opens_with_level =
        ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"].iter().any(|level| first.starts_with(level));
    if opens_with_level && !first.contains("{:") {
        return if text.lines().any(names_logger) { Format::EtcdLog } else { Format::Edn };
    }
    // Porcupine's key-value log with a prefix before each op map.
    if first.contains("{:") {
        return Format::KvLog;
    }
    Format::Edn
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
    /// How errors name processes that are not plain integers (`"nil"`, `"\"reader\""`).
    names: HashMap<u64, String>,
}

impl<T> Pairing<T> {
    pub(crate) fn new() -> Self {
        Pairing { operations: Vec::new(), open: HashMap::new(), names: HashMap::new() }
    }

    /// Errors will name `client` as `name` (for processes that are not non-negative integers).
    pub(crate) fn name_process(&mut self, client: u64, name: String) {
        self.names.insert(client, name);
    }

    fn label(&self, client: u64) -> String {
        self.names.get(&client).cloned().unwrap_or_else(|| client.to_string())
    }

    pub(crate) fn invoke(&mut self, client: u64, line: usize, position: u64, invocation: T) -> Result<(), LineError> {
        if let Some(open) = self.open.get(&client) {
            let opened_on = self.operations[*open].invoke_line;
            let label = self.label(client);
            return line_error(
                line,
                format!("process {label} invokes again before its operation from line {opened_on} completed"),
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

    /// True when the client has an operation in flight.
    pub(crate) fn is_open(&self, client: u64) -> bool {
        self.open.contains_key(&client)
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
            return line_error(line, format!("process {} completes an operation it never invoked", self.label(client)));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checker::linearizability::history::{KvFunction, Observed};
    use crate::checker::linearizability::CheckOptions;

    fn error(format: Format, text: &str) -> String {
        match parse_text("h.txt", text, format, None) {
            Ok(parsed) => panic!("expected an error, parsed {parsed:?}"),
            Err(error) => error.to_string(),
        }
    }

    fn kv(format: Format, text: &str) -> KvHistory {
        match parse_text("h.txt", text, format, None).map(|parsed| parsed.history) {
            Ok(History::Kv(history)) => history,
            other => panic!("expected a key-value history, got {other:?}"),
        }
    }

    #[test]
    fn edn_errors_name_file_and_line() {
        let text = "[{:process 0, :type :invoke, :f :read, :value nil}\n {:process 0, :type :ok, :f :read, :value 1}\n {:process 0 :type :ok :f :read}]";
        assert!(error(Format::Edn, text).starts_with("h.txt:3: process 0 completes an operation it never invoked"));
        let text = "{:process 0, :type :invoke, :f :read}\n{:process 0, :type :okay, :f :read}\n";
        assert!(error(Format::Edn, text).starts_with("h.txt:2: unknown :type :okay"));
        let text = "{:process 0, :type :invoke, :f :read}\n{:process 0, :type :invoke, :f :read}\n";
        assert!(error(Format::Edn, text).starts_with("h.txt:2: process 0 invokes again"));
        let text = "{:process 0, :type :invoke, :f :write}\n";
        assert!(error(Format::Edn, text).starts_with("h.txt:1: a write's :value must not be nil"));
        let text = "{:process 0, :type :invoke, :f :cas, :value [1 2 3]}\n";
        assert!(error(Format::Edn, text).starts_with("h.txt:1: a cas's :value must be [expected new]"));
        // A missing :process is the process nil, as Knossos reads it; nil never invoked anything.
        let text = "{:process 0, :type :invoke, :f :read}\n\n{:type :ok, :f :read}";
        assert!(error(Format::Edn, text).starts_with("h.txt:3: process nil completes an operation it never invoked"));
        let text = "{:process 0, :type :invoke, :f 7}\n";
        assert!(error(Format::Edn, text).starts_with("h.txt:1: operation without an :f"));
        let text = "[{:process 0, :type :invoke, :f :read}\n{:process 0 :type";
        assert!(
            error(Format::Edn, text).starts_with("h.txt:2: a map needs an even number of forms")
                || error(Format::Edn, text).starts_with("h.txt:2: unexpected end of input")
        );
        let text = "{:process 0, :type :invoke, :f :write, :value 1}\n{:process 0, :type :ok, :f :read, :value 1}";
        assert!(error(Format::Edn, text).starts_with("h.txt:2: completion :f :read does not match"));
    }

    #[test]
    fn edn_reads_knossos_semantics() {
        let text = "; comment\n[{:process :nemesis, :type :info, :f :kill}\n{:process 1, :type :invoke, :f :cas, :value [0 1]}\n{:process 1, :type :fail, :f :cas, :value [0 1]}\n{:process 2, :type :invoke, :f :read, :value nil}\n{:process 2, :type :ok, :f :read, :value nil}\n{:process 3, :type :invoke, :f :write, :value 4}\n{:process 3, :type :info, :f :write, :value 4}]";
        let history = kv(Format::Auto, text);
        assert_eq!(history.initial_value.as_deref(), Some("0"));
        // The failed cas is dropped; the nil read is unconstrained; the info write is indeterminate.
        assert_eq!(history.operations.len(), 2);
        assert_eq!(history.operations[0].function, KvFunction::Get { result: Observed::Unknown });
        assert_eq!(history.operations[1].return_us, None);
    }

    #[test]
    fn etcd_log_errors_name_file_and_line() {
        let good = "INFO  jepsen.util - 2\t:invoke\t:cas\t[3 0]\n";
        assert!(error(Format::EtcdLog, &format!("{good}INFO  jepsen.util - 2\t:ok\t:swap\t[3 0]\n"))
            .starts_with("h.txt:2: unknown function ':swap'"));
        assert!(error(Format::EtcdLog, &format!("{good}INFO  jepsen.util - x\t:ok\t:cas\t[3 0]\n"))
            .starts_with("h.txt:2: process must be"));
        assert!(error(Format::EtcdLog, &format!("{good}INFO  jepsen.util - 2\t:ok\t:cas\t[3\n"))
            .starts_with("h.txt:2: malformed value"));
        assert!(error(Format::EtcdLog, "INFO  jepsen.util - 2\t:invoke\t:cas\t[3]\n")
            .starts_with("h.txt:1: a cas needs [expected new]"));
        assert!(error(Format::EtcdLog, "INFO  jepsen.util - 2\t:invoke\n").starts_with("h.txt:1: expected '<process>"));
        assert!(error(Format::EtcdLog, "hello\n").starts_with("h.txt:1: not a log line"));
        assert!(
            error(Format::EtcdLog, "INFO  jepsen.core - starting\n").starts_with("h.txt: no Jepsen operation lines")
        );
    }

    #[test]
    fn etcd_log_reads_its_semantics() {
        let text = "INFO  jepsen.util - 1\t:invoke\t:cas\t[3 0]\nINFO  jepsen.util - 1\t:fail\t:cas\t[3 0]\nINFO  jepsen.util - 2\t:invoke\t:read\tnil\nINFO  jepsen.util - 2\t:ok\t:read\tnil\nINFO  jepsen.util - 3\t:invoke\t:read\tnil\nINFO  jepsen.util - 3\t:fail\t:read\t:timed-out\nINFO  jepsen.util - 4\t:invoke\t:write\t1\nINFO  jepsen.util - 4\t:info\t:write\t:timed-out\n";
        let history = kv(Format::Auto, text);
        assert_eq!(history.initial_value, None);
        let functions: Vec<&KvFunction> = history.operations.iter().map(|operation| &operation.function).collect();
        assert_eq!(
            functions,
            vec![
                &KvFunction::Cas { expected: Some("3".into()), new: "0".into(), result: Observed::Value(false) },
                &KvFunction::Get { result: Observed::Value(None) },
                &KvFunction::Get { result: Observed::Unknown },
                &KvFunction::Put { value: "1".into() },
            ]
        );
        assert_eq!(history.operations[3].return_us, None);
    }

    fn operations(text: &str, format: Format) -> Vec<(u64, KvFunction, Option<u64>)> {
        kv(format, text)
            .operations
            .into_iter()
            .map(|operation| (operation.client, operation.function, operation.return_us))
            .collect()
    }

    /// The same three operations in the layouts Jepsen's etcd logs come in.
    #[test]
    fn etcd_log_reads_any_whitespace_and_log_layout() {
        let tabs = "INFO  jepsen.util - 2\t:invoke\t:cas\t[3 0]\nINFO  jepsen.util - 2\t:ok\t:cas\t[3 0]\nINFO  jepsen.util - 3\t:invoke\t:read\tnil\nINFO  jepsen.util - 3\t:ok\t:read\t0\n";
        let expected = operations(tabs, Format::Auto);
        assert_eq!(expected.len(), 2);
        let variants = [
            // Spaces instead of tabs between the columns.
            "INFO  jepsen.util - 2 :invoke :cas [3 0]\nINFO  jepsen.util - 2 :ok :cas [3 0]\nINFO  jepsen.util - 3 :invoke :read nil\nINFO  jepsen.util - 3 :ok :read 0\n".to_owned(),
            // Two spaces before the dash, tabs and spaces mixed, trailing blanks.
            "INFO  jepsen.util  - 2\t :invoke :cas\t[3 0]  \nINFO jepsen.util -  2\t:ok\t\t:cas [3 0]\nINFO\tjepsen.util\t-\t3\t:invoke\t:read\tnil\nINFO  jepsen.util - 3   :ok   :read   0\n".to_owned(),
            // A timestamped layout, other loggers' lines, blank lines and a nemesis.
            "INFO [2017-03-19 14:52:35,137] main - jepsen.core Running test\n\nINFO [2017-03-19 14:52:35,140] jepsen worker 2 - jepsen.util 2\t:invoke\t:cas\t[3 0]\nINFO [2017-03-19 14:52:35,141] jepsen nemesis - jepsen.util :nemesis\t:info\t:start\tnil\nINFO [2017-03-19 14:52:35,150] jepsen worker 2 - jepsen.util 2\t:ok\t:cas\t[3 0]\nWARN [2017-03-19 14:52:35,151] jepsen worker 3 - jepsen.client retrying\nINFO [2017-03-19 14:52:35,160] jepsen worker 3 - jepsen.util 3\t:invoke\t:read\tnil\nINFO [2017-03-19 14:52:35,170] jepsen worker 3 - jepsen.util 3\t:ok\t:read\t0\n".to_owned(),
        ];
        for text in &variants {
            let functions: Vec<KvFunction> =
                operations(text, Format::Auto).into_iter().map(|(_, function, _)| function).collect();
            let wanted: Vec<KvFunction> = expected.iter().map(|(_, function, _)| function.clone()).collect();
            assert_eq!(functions, wanted, "{text}");
            assert_eq!(detect_format(text), Format::EtcdLog, "{text}");
        }
    }

    #[test]
    fn etcd_log_never_drops_a_line_it_cannot_read() {
        let good = "INFO  jepsen.util - 2\t:invoke\t:write\t1\nINFO  jepsen.util - 2\t:ok\t:write\t1\n";
        // A jepsen.util line cut short, a stray line and an unknown type are errors with their line.
        assert!(error(Format::EtcdLog, &format!("{good}INFO  jepsen.util  - 2\n"))
            .starts_with("h.txt:3: expected '<process>"));
        assert!(error(Format::EtcdLog, &format!("{good}2 :invoke :read nil\n")).starts_with("h.txt:3: not a log line"));
        assert!(error(Format::EtcdLog, &format!("{good}INFO  jepsen.util - 2 :done :read nil\n"))
            .starts_with("h.txt:3: unknown type ':done'"));
        assert!(error(Format::EtcdLog, &format!("{good}INFO  jepsen.util - -2 :invoke :read nil\n"))
            .starts_with("h.txt:3: process must be"));
    }

    /// The issue's case: the read that breaks linearizability sits on a line with two spaces before
    /// the dash; skipping it turned an illegal history into `ok`.
    #[test]
    fn etcd_log_line_with_two_spaces_before_the_dash_decides_the_verdict() {
        let text = "INFO  jepsen.util - 1\t:invoke\t:write\t1\nINFO  jepsen.util - 1\t:ok\t:write\t1\nINFO  jepsen.util - 2\t:invoke\t:read\tnil\nINFO  jepsen.util  - 2\t:ok\t:read\t5\n";
        let parsed = parse_text("h.log", text, Format::Auto, None).expect("parses");
        assert_eq!(parsed.history.operation_count(), 2);
        let verdict = parsed.history.check(&CheckOptions::default()).verdict;
        assert!(matches!(verdict, crate::checker::linearizability::Verdict::Illegal(_)), "{verdict}");
    }

    #[test]
    fn edn_reads_what_knossos_reads() {
        // Tagged records, a list instead of a vector, no commas, keys in any order, extra keys.
        let text = "(#jepsen.history.Op{:index 0 :time 5 :type :invoke :process 0 :f :write :value 3}\n #jepsen.history.Op{:f :write :value 3 :type :ok :process 0 :index 1 :time 9})";
        let history = kv(Format::Auto, text);
        assert_eq!(history.operations.len(), 1);
        assert_eq!(history.operations[0].function, KvFunction::Put { value: "3".into() });
        // String and nil processes are clients; keyword processes are not; a lone :info is a note.
        let text = "{:process \"a\", :type :invoke, :f \"write\", :value 1}\n{:type :invoke, :f :read}\n{:process :checker, :type :invoke, :f :sleep}\n{:process 4, :type :info, :f :kill, :value nil}\n{:process \"a\", :type :ok, :f :write, :value 1}\n{:type :ok, :f :read, :value 1}\n";
        let history = kv(Format::Auto, text);
        let clients: Vec<u64> = history.operations.iter().map(|operation| operation.client).collect();
        assert_eq!(clients, vec![5, 6], "ids above the highest integer process (4), in order of appearance");
        assert_eq!(history.operations[1].function, KvFunction::Get { result: Observed::Value(Some("1".into())) });
        // An :ok completion's value is the operation's value, even over the invocation's.
        let text = "{:process 0, :type :invoke, :f :read, :value 2}\n{:process 0, :type :ok, :f :read, :value 0}\n";
        assert_eq!(
            kv(Format::Auto, text).operations[0].function,
            KvFunction::Get { result: Observed::Value(Some("0".into())) }
        );
        // Register values compare as EDN prints them: the string "1" is not the integer 1.
        let text = "{:process 0, :type :invoke, :f :write, :value \"1\"}\n{:process 0, :type :ok, :f :write, :value \"1\"}\n{:process 1, :type :invoke, :f :read, :value nil}\n{:process 1, :type :ok, :f :read, :value 1}\n";
        let parsed = parse_text("h.edn", text, Format::Auto, None).expect("parses");
        assert!(matches!(
            parsed.history.check(&CheckOptions::default()).verdict,
            crate::checker::linearizability::Verdict::Illegal(_)
        ));
    }

    #[test]
    fn kv_log_reads_maps_after_a_log_prefix_in_any_key_order() {
        let plain = "{:process 0, :type :invoke, :f :append, :key \"1\", :value \"x\"}\n{:process 0, :type :ok, :f :append, :key \"1\", :value \"x\"}\n{:process 1, :type :invoke, :f :get, :key \"1\", :value nil}\n{:process 1, :type :ok, :f :get, :key \"1\", :value \"x\"}\n";
        let prefixed = "2024-05-01 10:00:00 INFO kv - {:process 0, :type :invoke, :f :append, :key \"1\", :value \"x\"}\n2024-05-01 10:00:01 INFO kv - {:type :ok, :process 0, :key \"1\", :f :append, :value \"x\"}\n2024-05-01 10:00:02 INFO kv - {:process 1, :type :invoke, :f :get, :key \"1\", :value nil}\n2024-05-01 10:00:03 INFO kv - {:process 1 :type :ok :f :get :key \"1\" :value \"x\"}\n";
        assert_eq!(detect_format(prefixed), Format::KvLog);
        assert_eq!(kv(Format::Auto, prefixed), kv(Format::KvLog, plain));
        assert_eq!(kv(Format::KvLog, plain), kv(Format::Auto, plain));
        // A vector of maps one per line reads too; what follows a map may only close the vector.
        let vector = format!("[{}]", plain.trim_end());
        assert_eq!(kv(Format::KvLog, &vector), kv(Format::KvLog, plain));
        assert!(error(Format::KvLog, &format!("{plain}{{:process 2, :type :invoke, :f :get, :key \"1\"}} junk\n"))
            .starts_with("h.txt:5: expected exactly one op map"));
        assert!(
            error(Format::KvLog, &format!("{plain}process 2 invokes get\n")).starts_with("h.txt:5: expected an op map")
        );
    }

    #[test]
    fn kv_log_errors_name_file_and_line() {
        let text = "{:process 0, :type :invoke, :f :get, :key \"1\", :value nil}\n{:process 1, :type :invoke, :f :incr, :key \"1\", :value nil}\n";
        assert!(error(Format::KvLog, text).starts_with("h.txt:2: unknown :f :incr for the kv model"));
        let text = "{:process 0, :type :invoke, :f :get, :value nil}\n";
        assert!(error(Format::KvLog, text).starts_with("h.txt:1: key-value operation without :key"));
        let text = "{:process 0, :type :invoke, :f :put, :key \"1\", :value [1]}\n";
        assert!(error(Format::KvLog, text).starts_with("h.txt:1: a put's :value must be a single value"));
    }

    #[test]
    fn kv_log_is_detected_and_starts_empty() {
        let text = "{:process 0, :type :invoke, :f :append, :key \"0\", :value \"x\"}\n{:process 0, :type :ok, :f :append, :key \"0\", :value \"x\"}\n";
        let parsed = parse_text("h.txt", text, Format::Auto, None).expect("valid");
        assert_eq!((parsed.format, parsed.model), (Format::KvLog, ModelKind::Kv));
        let History::Kv(history) = parsed.history else { panic!("kv history expected") };
        assert_eq!(history.initial_value.as_deref(), Some(""));
    }

    #[test]
    fn jsonl_errors_name_file_and_line() {
        let invoke = r#"{"seq":1,"at_us":10,"node":7,"incarnation":0,"kind":"op_invoke","op":3,"client":1,"key":"k","partition":4,"f":"put","value":"v"}"#;
        let other = r#"{"seq":2,"at_us":11,"kind":"node_crash","node":3}"#;
        assert!(error(Format::Jsonl, &format!("{invoke}\n{other}\nnot json\n")).starts_with("h.txt:3: not JSON"));
        let complete = r#"{"seq":3,"at_us":20,"kind":"op_complete","op":3,"client":1,"key":"k","f":"put","value":"v","outcome":"maybe","result":null}"#;
        assert!(error(Format::Jsonl, &format!("{invoke}\n{other}\n{complete}\n"))
            .starts_with("h.txt:3: unknown outcome \"maybe\""));
        let complete =
            r#"{"seq":3,"at_us":20,"kind":"op_complete","op":4,"client":1,"key":"k","f":"put","outcome":"ok"}"#;
        assert!(error(Format::Jsonl, &format!("{invoke}\n{complete}\n"))
            .starts_with("h.txt:2: op 4 completes but was never invoked"));
        let bad_cas = r#"{"at_us":1,"kind":"op_invoke","op":1,"client":1,"key":"k","f":"cas","value":"x"}"#;
        assert!(error(Format::Jsonl, &format!("\n{bad_cas}\n"))
            .starts_with("h.txt:2: a cas's value must be [expected, new]"));
        let no_key = r#"{"at_us":1,"kind":"op_invoke","op":1,"client":1,"f":"get","value":null}"#;
        assert!(error(Format::Jsonl, no_key).starts_with("h.txt:1: missing or non-string \"key\""));
    }

    #[test]
    fn jsonl_reads_migsim_semantics() {
        let lines = [
            r#"{"seq":1,"at_us":10,"kind":"op_invoke","op":1,"client":1,"key":"k","f":"cas","value":[null,"a"]}"#,
            r#"{"seq":2,"at_us":11,"kind":"op_invoke","op":2,"client":2,"key":"k","f":"put","value":"b"}"#,
            r#"{"seq":3,"at_us":12,"kind":"op_complete","op":2,"client":2,"key":"k","f":"put","value":"b","outcome":"fail","result":null}"#,
            r#"{"seq":4,"at_us":20,"kind":"op_complete","op":1,"client":1,"key":"k","f":"cas","value":[null,"a"],"outcome":"ok","result":false}"#,
            r#"{"seq":5,"at_us":21,"kind":"op_invoke","op":3,"client":1,"key":"k","f":"get","value":null}"#,
        ];
        let history = kv(Format::Auto, &lines.join("\n"));
        assert_eq!(history.operations.len(), 2);
        assert_eq!(
            history.operations[0].function,
            KvFunction::Cas { expected: None, new: "a".into(), result: Observed::Value(false) }
        );
        assert_eq!((history.operations[0].call_us, history.operations[0].return_us), (10, Some(20)));
        assert_eq!(history.operations[1].return_us, None);
    }

    #[test]
    fn model_and_format_names_are_checked() {
        assert!("edn".parse::<Format>().is_ok());
        assert!("xml".parse::<Format>().unwrap_err().contains("unknown format 'xml'"));
        assert!("queue".parse::<ModelKind>().unwrap_err().contains("unknown model 'queue'"));
        let text = "INFO  jepsen.util - 2\t:invoke\t:cas\t[3 0]\n";
        let error = parse_text("h.log", text, Format::EtcdLog, Some(ModelKind::Mutex)).unwrap_err();
        assert_eq!(error.to_string(), "h.log: the mutex model does not fit an etcd log (use cas-register)");
    }
}
