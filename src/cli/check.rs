//! `migsim check FILE...`: reads history files, checks each for linearizability, prints one
//! verdict per file (ok / illegal / unknown) with the explanation of illegal ones and the time
//! taken, and optionally draws each violation as an SVG in `--explain-dir`.
//!
//! Exit codes: 0 all ok, 1 some file illegal, 2 bad input (nothing is checked, no file is
//! written), 3 some file unknown and none illegal.
//!
//! Owns argument handling and output. Must never contain checking logic: everything it knows
//! about histories comes from `checker::linearizability`.

use super::output::say;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::checker::linearizability::formats::{read_file, Format, ModelKind, ParsedHistory};
use crate::checker::linearizability::{render_svg, CheckOptions, TimeUnit, Verdict};

pub const EXIT_OK: i32 = 0;
pub const EXIT_ILLEGAL: i32 = 1;
pub const EXIT_BAD_INPUT: i32 = 2;
pub const EXIT_UNKNOWN: i32 = 3;

#[derive(clap::Args, Debug, Clone)]
pub struct CheckArgs {
    /// History files: Jepsen/Knossos EDN, Jepsen etcd logs, Porcupine kv logs, migsim JSON Lines.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// auto, edn, etcd-log, kv-log or jsonl.
    #[arg(long, default_value = "auto")]
    pub format: String,
    /// register, cas-register, kv, multi-register or mutex (default: from the format and content).
    #[arg(long)]
    pub model: Option<String>,
    /// Write an SVG picture of each violation into this directory.
    #[arg(long)]
    pub explain_dir: Option<PathBuf>,
    /// Stop at the first violation (within a file, and skip the remaining files).
    #[arg(long)]
    pub stop_at_first: bool,
    /// Time budget per file, e.g. 10s, 500ms, 2m; past it the verdict is unknown. Off by
    /// default: with it, a verdict can depend on the host's speed and load, while the default
    /// bounds (states, memory) give the same verdict everywhere.
    #[arg(long)]
    pub timeout: Option<String>,
    /// Most search configurations remembered per key; past it the verdict is unknown.
    #[arg(long)]
    pub max_states: Option<u64>,
    /// Most memory (MiB) the search's memo table may use per key (default 1024).
    #[arg(long)]
    pub max_memory_mib: Option<u64>,
    /// Worker threads for keys (default: one per core).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Skip the unique-value fast path and always search.
    #[arg(long)]
    pub no_fast_path: bool,
}

/// Parses `10s`, `250ms`, `2m`, `1.5s` or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, scale) = if let Some(number) = text.strip_suffix("ms") {
        (number, 0.001)
    } else if let Some(number) = text.strip_suffix('s') {
        (number, 1.0)
    } else if let Some(number) = text.strip_suffix('m') {
        (number, 60.0)
    } else {
        (text, 1.0)
    };
    match number.trim().parse::<f64>() {
        Ok(value) if value.is_finite() && value >= 0.0 => Ok(Duration::from_secs_f64(value * scale)),
        Ok(_) | Err(_) => Err(format!("bad --timeout '{text}' (expected e.g. 10s, 500ms, 2m)")),
    }
}

fn options_from(arguments: &CheckArgs) -> Result<CheckOptions, String> {
    let mut options = CheckOptions {
        stop_at_first_violation: arguments.stop_at_first,
        fast_path: !arguments.no_fast_path,
        max_states_per_key: arguments.max_states,
        ..CheckOptions::default()
    };
    if let Some(timeout) = &arguments.timeout {
        options.time_limit = Some(parse_duration(timeout)?);
    }
    if let Some(mebibytes) = arguments.max_memory_mib {
        options.max_memory_bytes_per_key = Some(mebibytes.saturating_mul(1 << 20));
    }
    if let Some(threads) = arguments.threads {
        options.threads = threads;
    }
    Ok(options)
}

/// Runs the command; prints to stdout (errors to stderr) and returns the exit code.
pub fn run(arguments: &CheckArgs) -> i32 {
    let format = match arguments.format.parse::<Format>() {
        Ok(format) => format,
        Err(message) => return bad_input(&format!("--format: {message}")),
    };
    let model = match arguments.model.as_deref().map(str::parse::<ModelKind>).transpose() {
        Ok(model) => model,
        Err(message) => return bad_input(&format!("--model: {message}")),
    };
    let options = match options_from(arguments) {
        Ok(options) => options,
        Err(message) => return bad_input(&message),
    };
    // Read everything before checking anything: bad input must not leave partial output.
    let mut histories: Vec<(&Path, ParsedHistory)> = Vec::with_capacity(arguments.files.len());
    let mut errors = Vec::new();
    for path in &arguments.files {
        match read_file(path, format, model) {
            Ok(history) => histories.push((path, history)),
            Err(error) => errors.push(error.to_string()),
        }
    }
    if !errors.is_empty() {
        for error in &errors {
            eprintln!("error: {error}");
        }
        return EXIT_BAD_INPUT;
    }
    if let Some(directory) = &arguments.explain_dir {
        if let Err(error) = std::fs::create_dir_all(directory) {
            return bad_input(&format!("{}: cannot create directory: {error}", directory.display()));
        }
    }

    let mut any_illegal = false;
    let mut any_unknown = false;
    let mut pictures: Vec<(PathBuf, String)> = Vec::new();
    let total = Instant::now();
    for (index, (path, parsed)) in histories.iter().enumerate() {
        // Jepsen's and Porcupine's logs order events by position; migsim's count microseconds.
        let time_unit = match parsed.format {
            Format::Edn | Format::EtcdLog | Format::KvLog => TimeUnit::EventPosition,
            Format::Jsonl | Format::Auto => TimeUnit::Microseconds,
        };
        let options = CheckOptions { time_unit, ..options.clone() };
        let started = Instant::now();
        let report = parsed.history.check(&options);
        let elapsed = started.elapsed();
        let summary = format!(
            "format {}, model {}, {} ops, {} {}, {:.3} ms",
            parsed.format.name(),
            parsed.model.name(),
            report.operations,
            report.keys,
            if report.keys == 1 { "key" } else { "keys" },
            elapsed.as_secs_f64() * 1e3
        );
        match &report.verdict {
            Verdict::Ok => say!("{}: ok ({summary})", path.display()),
            Verdict::Unknown { reason } => {
                any_unknown = true;
                say!("{}: unknown: {reason} ({summary})", path.display());
            }
            Verdict::Illegal(violation) => {
                any_illegal = true;
                say!("{}: illegal ({summary})", path.display());
                for line in violation.to_string().lines() {
                    say!("  {line}");
                }
                match parsed.format {
                    Format::Edn | Format::EtcdLog | Format::KvLog => {
                        say!("  (op ids are the lines of the invocations; events are counted from 0)")
                    }
                    Format::Jsonl | Format::Auto => {}
                }
                if let Some(directory) = &arguments.explain_dir {
                    let title = match &violation.key {
                        Some(key) => format!("{}: key {key:?} is not linearizable", path.display()),
                        None => format!("{}: not linearizable", path.display()),
                    };
                    let name = picture_name(index, path, violation.key.as_deref());
                    pictures.push((directory.join(name), render_svg(violation, &title)));
                }
                if arguments.stop_at_first {
                    break;
                }
            }
        }
    }
    for (target, svg) in &pictures {
        match write_atomically(target, svg) {
            Ok(()) => say!("explanation written to {}", target.display()),
            Err(error) => {
                eprintln!("error: {}: cannot write: {error}", target.display());
                return EXIT_BAD_INPUT;
            }
        }
    }
    if histories.len() > 1 {
        say!("{} files checked in {:.3} ms", histories.len(), total.elapsed().as_secs_f64() * 1e3);
    }
    if any_illegal {
        EXIT_ILLEGAL
    } else if any_unknown {
        EXIT_UNKNOWN
    } else {
        EXIT_OK
    }
}

fn bad_input(message: &str) -> i32 {
    eprintln!("error: {message}");
    EXIT_BAD_INPUT
}

/// `<index>-<file name>[-<key>].svg`, with anything unusual in the key replaced by `_`.
fn picture_name(index: usize, path: &Path, key: Option<&str>) -> String {
    let file = path.file_name().map_or_else(|| "history".to_owned(), |name| name.to_string_lossy().into_owned());
    let clean = |text: &str| -> String {
        text.chars()
            .map(
                |character| {
                    if character.is_ascii_alphanumeric() || "-_.".contains(character) {
                        character
                    } else {
                        '_'
                    }
                },
            )
            .collect()
    };
    match key {
        Some(key) => format!("{index:02}-{}-{}.svg", clean(&file), clean(key)),
        None => format!("{index:02}-{}.svg", clean(&file)),
    }
}

/// Writes to a temporary name, then renames, so a reader never sees half a picture.
fn write_atomically(target: &Path, contents: &str) -> std::io::Result<()> {
    let temporary = target.with_extension("svg.partial");
    std::fs::write(&temporary, contents)?;
    std::fs::rename(&temporary, target)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh scratch directory under the target directory, unique per test.
    fn scratch(name: &str) -> PathBuf {
        let directory = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/check-tests").join(name);
        let _ = std::fs::remove_dir_all(&directory);
        std::fs::create_dir_all(&directory).expect("scratch directory");
        directory
    }

    fn arguments(files: Vec<PathBuf>) -> CheckArgs {
        CheckArgs {
            files,
            format: "auto".to_owned(),
            model: None,
            explain_dir: None,
            stop_at_first: false,
            timeout: None,
            max_states: None,
            max_memory_mib: None,
            threads: None,
            no_fast_path: false,
        }
    }

    const INVOKE: &str = r#"{"seq":1,"at_us":10,"node":7,"incarnation":0,"kind":"op_invoke","op":1,"client":1,"key":"k","partition":4,"f":"put","value":"a"}"#;
    const COMPLETE: &str = r#"{"seq":2,"at_us":20,"node":7,"incarnation":0,"kind":"op_complete","op":1,"client":1,"key":"k","partition":4,"f":"put","value":"a","outcome":"ok","result":null}"#;
    const READ_INVOKE: &str =
        r#"{"seq":3,"at_us":30,"kind":"op_invoke","op":2,"client":2,"key":"k","f":"get","value":null}"#;

    fn read_complete(result: &str) -> String {
        format!(
            r#"{{"seq":4,"at_us":40,"kind":"op_complete","op":2,"client":2,"key":"k","f":"get","value":null,"outcome":"ok","result":{result}}}"#
        )
    }

    #[test]
    fn exit_codes_follow_the_verdicts() {
        let directory = scratch("exit-codes");
        let good = directory.join("good.jsonl");
        std::fs::write(&good, [INVOKE, COMPLETE, READ_INVOKE, &read_complete("\"a\"")].join("\n")).expect("write");
        let bad = directory.join("bad.jsonl");
        std::fs::write(&bad, [INVOKE, COMPLETE, READ_INVOKE, &read_complete("null")].join("\n")).expect("write");
        assert_eq!(run(&arguments(vec![good.clone()])), EXIT_OK);
        let mut with_pictures = arguments(vec![good.clone(), bad.clone()]);
        let pictures = directory.join("pictures");
        with_pictures.explain_dir = Some(pictures.clone());
        assert_eq!(run(&with_pictures), EXIT_ILLEGAL);
        let written: Vec<_> = std::fs::read_dir(&pictures).expect("pictures written").collect();
        assert_eq!(written.len(), 1);
        let mut bounded = arguments(vec![bad]);
        bounded.no_fast_path = true;
        bounded.timeout = Some("0s".to_owned());
        // A zero budget may still finish a two-operation history before the first check.
        assert!(matches!(run(&bounded), EXIT_ILLEGAL | EXIT_UNKNOWN));
    }

    #[test]
    fn bad_input_writes_nothing() {
        let directory = scratch("bad-input");
        let good = directory.join("good.jsonl");
        std::fs::write(&good, [INVOKE, COMPLETE].join("\n")).expect("write");
        let broken = directory.join("broken.jsonl");
        std::fs::write(&broken, format!("{INVOKE}\n{{\"kind\": oops\n")).expect("write");
        let pictures = directory.join("pictures");
        let mut arguments = arguments(vec![good.clone(), broken]);
        arguments.explain_dir = Some(pictures.clone());
        assert_eq!(run(&arguments), EXIT_BAD_INPUT);
        assert!(!pictures.exists());
        let mut unknown_format = self::arguments(vec![good.clone()]);
        unknown_format.format = "xml".to_owned();
        assert_eq!(run(&unknown_format), EXIT_BAD_INPUT);
        let mut unknown_model = self::arguments(vec![good.clone()]);
        unknown_model.model = Some("queue".to_owned());
        assert_eq!(run(&unknown_model), EXIT_BAD_INPUT);
        let mut bad_timeout = self::arguments(vec![good]);
        bad_timeout.timeout = Some("soon".to_owned());
        assert_eq!(run(&bad_timeout), EXIT_BAD_INPUT);
        assert_eq!(run(&self::arguments(vec![directory.join("missing.edn")])), EXIT_BAD_INPUT);
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert!(parse_duration("-1s").is_err());
    }
}
