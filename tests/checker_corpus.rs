//! linearizability: every history of the corpus (Jepsen, Porcupine, Knossos) gets the verdict its
//! own project's checker asserts, as listed in tests/histories/EXPECTED.tsv.

use std::path::{Path, PathBuf};

use migsim::checker::linearizability::formats::{read_file, Format, ModelKind};
use migsim::checker::linearizability::{CheckOptions, Verdict};

/// The corpus in the repository (`tests/histories`), or another one named by `MIGSIM_HISTORIES`
/// (with its own `EXPECTED.tsv`). Missing is a failure, not a skip: a corpus test that silently
/// checks nothing would pass forever.
fn histories_directory() -> PathBuf {
    let directory = match std::env::var_os("MIGSIM_HISTORIES") {
        Some(directory) => PathBuf::from(directory),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/histories"),
    };
    assert!(
        directory.join("EXPECTED.tsv").is_file(),
        "linearizability corpus: {} has no EXPECTED.tsv",
        directory.display()
    );
    directory
}

struct Expectation {
    file: String,
    model: ModelKind,
    legal: bool,
}

fn expectations(directory: &Path) -> Vec<Expectation> {
    let table = std::fs::read_to_string(directory.join("EXPECTED.tsv")).expect("EXPECTED.tsv is readable");
    let mut rows = Vec::new();
    for (index, line) in table.lines().enumerate().skip(1) {
        if line.trim().is_empty() {
            continue;
        }
        let columns: Vec<&str> = line.split('\t').collect();
        assert!(columns.len() >= 3, "EXPECTED.tsv line {}: expected file, model, verdict", index + 1);
        let description = columns[1];
        let model = if description.starts_with("kv(") {
            ModelKind::Kv
        } else if description.starts_with("multi-register") {
            ModelKind::MultiRegister
        } else if description.starts_with("mutex") {
            ModelKind::Mutex
        } else if description.contains("cas-register") {
            ModelKind::CasRegister
        } else {
            panic!("EXPECTED.tsv line {}: unknown model {description}", index + 1)
        };
        let legal = match columns[2] {
            "ok" => true,
            "illegal" => false,
            other => panic!("EXPECTED.tsv line {}: unknown verdict {other}", index + 1),
        };
        rows.push(Expectation { file: columns[0].to_owned(), model, legal });
    }
    rows
}

fn verdict_name(verdict: &Verdict) -> String {
    match verdict {
        Verdict::Ok => "ok".to_owned(),
        Verdict::Illegal(_) => "illegal".to_owned(),
        Verdict::Unknown { reason } => format!("unknown ({reason})"),
    }
}

#[test]
fn linearizability_corpus_matches_expected_verdicts() {
    let directory = histories_directory();
    let rows = expectations(&directory);
    assert!(rows.len() >= 60, "EXPECTED.tsv lists only {} files", rows.len());
    let mut mismatches = Vec::new();
    for row in &rows {
        let path = directory.join(&row.file);
        let parsed = match read_file(&path, Format::Auto, None) {
            Ok(parsed) => parsed,
            Err(error) => {
                mismatches.push(format!("{}: cannot parse: {error}", row.file));
                continue;
            }
        };
        if parsed.model != row.model {
            mismatches.push(format!("{}: detected model {:?}, expected {:?}", row.file, parsed.model, row.model));
        }
        let expected = if row.legal { "ok" } else { "illegal" };
        for fast_path in [true, false] {
            let options = CheckOptions { fast_path, ..CheckOptions::default() };
            let verdict = parsed.history.check(&options).verdict;
            let actual = verdict_name(&verdict);
            if actual != expected {
                mismatches.push(format!("{}: expected {expected}, got {actual} (fast path {fast_path})", row.file));
            }
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} of {} corpus files mismatch:\n{}",
        mismatches.len(),
        rows.len(),
        mismatches.join("\n")
    );
}

#[test]
fn linearizability_corpus_lists_every_history_file() {
    let directory = histories_directory();
    let listed: Vec<String> = expectations(&directory).into_iter().map(|row| row.file).collect();
    let mut unlisted = Vec::new();
    let mut pending = vec![directory.clone()];
    while let Some(folder) = pending.pop() {
        for entry in std::fs::read_dir(&folder).expect("readable corpus directory") {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                pending.push(path);
                continue;
            }
            let relative =
                path.strip_prefix(&directory).expect("inside the corpus").to_string_lossy().replace('\\', "/");
            let is_history = relative.ends_with(".edn") || relative.ends_with(".log") || relative.ends_with(".txt");
            if is_history && !listed.contains(&relative) {
                unlisted.push(relative);
            }
        }
    }
    assert!(unlisted.is_empty(), "history files missing from EXPECTED.tsv: {unlisted:?}");
}

#[test]
fn linearizability_corpus_reports_do_not_depend_on_threads() {
    let directory = histories_directory();
    for file in ["porcupine/kv/c10-bad.txt", "porcupine/kv/c01-bad.txt"] {
        let parsed = read_file(&directory.join(file), Format::Auto, None).expect("parses");
        let reports: Vec<String> = [1, 2, 4]
            .iter()
            .flat_map(|threads| {
                [false, true].map(|stop_at_first_violation| {
                    let options =
                        CheckOptions { threads: *threads, stop_at_first_violation, ..CheckOptions::default() };
                    let verdict = parsed.history.check(&options).verdict;
                    // With stop-at-first the other illegal keys are not listed; compare the rest.
                    match verdict {
                        Verdict::Illegal(mut violation) => {
                            violation.other_illegal_keys.clear();
                            violation.to_string()
                        }
                        other => verdict_name(&other),
                    }
                })
            })
            .collect();
        assert!(
            reports.windows(2).all(|pair| pair[0] == pair[1]),
            "{file}: reports differ:\n{}",
            reports.join("\n---\n")
        );
    }
}
