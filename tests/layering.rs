//! The architecture's layering, checked on every build (ARCHITECTURE.md's invariants): which
//! top-level modules each layer may name. It reads every `crate::` path in `src/`, outside
//! comments, so an import the rules forbid fails `cargo test` with the file and line.

use std::path::{Path, PathBuf};

/// For each layer (a file or directory under `src/`), the top-level modules it must never name.
const FORBIDDEN: &[(&str, &[&str])] = &[
    ("vocabulary.rs", &["world", "sut", "checker", "workload", "scenario", "nemesis", "runner", "cli", "trace"]),
    ("trace.rs", &["world", "sut", "checker", "workload", "scenario", "nemesis", "runner", "cli"]),
    ("trace", &["world", "sut", "checker", "workload", "scenario", "nemesis", "runner", "cli"]),
    ("world", &["sut", "checker", "workload", "scenario", "nemesis", "runner", "cli"]),
    ("checker", &["world", "sut", "workload", "scenario", "nemesis", "runner", "cli"]),
    ("sut", &["checker", "workload", "scenario", "nemesis", "runner", "cli"]),
    ("workload", &["checker", "scenario", "nemesis", "runner", "cli"]),
    ("nemesis", &["sut", "checker", "workload", "scenario", "runner", "cli"]),
];

/// What `sut/` may take from `world/`: its public face, never its internals.
const SUT_WORLD_INTERNALS: &[&str] = &["world::sim", "world::net", "world::disk", "world::fault", "world::state"];

fn rust_files(path: &Path, files: &mut Vec<PathBuf>) {
    if path.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path).unwrap().map(|entry| entry.unwrap().path()).collect();
        entries.sort();
        for entry in entries {
            rust_files(&entry, files);
        }
    } else if path.extension().is_some_and(|extension| extension == "rs") {
        files.push(path.to_path_buf());
    }
}

/// Every `crate::NAME` path in the file's code (comments removed), with its line.
fn crate_paths(text: &str) -> Vec<(usize, String)> {
    let mut paths = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            let after = &rest[at + "crate::".len()..];
            let path: String =
                after.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':').collect();
            paths.push((index + 1, path));
            rest = &after[1..];
        }
    }
    paths
}

#[test]
fn layers_name_only_the_modules_their_rules_allow() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut broken = Vec::new();
    for (layer, forbidden) in FORBIDDEN {
        let mut files = Vec::new();
        rust_files(&src.join(layer), &mut files);
        assert!(!files.is_empty() || *layer == "trace", "layer {layer} has no files: the rules are stale");
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            for (line, path) in crate_paths(&text) {
                let module = path.split("::").next().unwrap_or("");
                if forbidden.contains(&module) {
                    broken.push(format!("{}:{line}: {layer} names crate::{path}", file.display()));
                }
                if *layer == "sut" && SUT_WORLD_INTERNALS.iter().any(|internal| path.starts_with(internal)) {
                    broken.push(format!("{}:{line}: sut names world internals: crate::{path}", file.display()));
                }
            }
        }
    }
    assert!(broken.is_empty(), "layering broken:\n{}", broken.join("\n"));
}

#[test]
fn the_scanner_sees_paths_and_skips_comments() {
    let paths = crate_paths("use crate::world::{Sim, NodeId}; // crate::sut\n    let x = crate::checker::foo();\n");
    assert_eq!(paths, vec![(1, "world::".to_string()), (2, "checker::foo".to_string())]);
}
