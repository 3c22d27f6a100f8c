//! Every integration suite is either run by the cgroup v2 VM or excluded from it with
//! a reason: each `[[test]]` of tests/Cargo.toml is in exactly one of tests/vm/run's
//! two lists (`VM_SUITES_DEFAULT`, `VM_SUITES_EXCLUDED`), and nothing else is in them.
//! A new suite that nobody put in either fails here. Reads files only; no root needed.

use std::collections::BTreeSet;
use std::path::Path;

fn read(rel: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
}

/// The `[[test]]` names of tests/Cargo.toml.
fn declared(cargo_toml: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut in_test = false;
    for line in cargo_toml.lines().map(str::trim) {
        if line.starts_with('[') {
            in_test = line == "[[test]]";
        } else if let (true, Some(v)) = (in_test, line.strip_prefix("name = ")) {
            names.push(v.trim_matches('"').to_string());
        }
    }
    names
}

/// The lines of the shell variable `NAME="` ... `"` in tests/vm/run (one entry a line).
fn shell_list(script: &str, name: &str) -> Vec<String> {
    let start = format!("{name}=\"");
    let mut lines = script.lines().skip_while(|l| *l != start);
    assert!(lines.next().is_some(), "tests/vm/run has no line {start}");
    let body: Vec<String> = lines.take_while(|l| *l != "\"").map(str::to_string).collect();
    assert!(!body.is_empty(), "tests/vm/run: {name} is empty");
    body
}

/// A VM_SUITES entry's suite: NAME[:FILTER][!SKIP,...][*N] (then an optional # comment).
fn suite_of(entry: &str) -> &str {
    entry.split_whitespace().next().unwrap_or("").split([':', '!', '*']).next().unwrap()
}

#[test]
fn declared_reads_the_test_names() {
    let toml =
        "[package]\nname = \"lab-tests\"\n\n[[test]]\nname = \"net\"\npath = \"net.rs\"\n\n[[test]]\nname = \"pid1\"\n";
    assert_eq!(declared(toml), ["net", "pid1"]);
}

#[test]
fn every_suite_runs_in_the_v2_vm_or_is_excluded_with_a_reason() {
    let tests = declared(&read("Cargo.toml"));
    assert!(tests.len() > 30, "only {} [[test]] entries read from tests/Cargo.toml", tests.len());
    let script = read("vm/run");
    let run: BTreeSet<String> = shell_list(&script, "VM_SUITES_DEFAULT")
        .iter()
        .map(|e| suite_of(e).to_string())
        .filter(|s| !s.is_empty())
        .collect();
    let mut excluded = BTreeSet::new();
    for line in shell_list(&script, "VM_SUITES_EXCLUDED") {
        let (name, why) = line.split_once(": ").unwrap_or_else(|| panic!("excluded {line:?}: NAME: REASON expected"));
        assert!(why.trim().len() >= 20, "excluded suite {name}: give the reason the VM cannot run it ({why:?})");
        assert!(excluded.insert(name.to_string()), "{name} is excluded twice");
    }
    let mut errors = Vec::new();
    for t in &tests {
        match (run.contains(t), excluded.contains(t)) {
            (true, true) => errors.push(format!("{t} is both run in the VM and excluded")),
            (false, false) => errors.push(format!(
                "{t} is neither in VM_SUITES_DEFAULT nor in VM_SUITES_EXCLUDED (with the reason) in tests/vm/run"
            )),
            _ => {}
        }
    }
    for name in run.iter().chain(&excluded) {
        if !tests.contains(name) {
            errors.push(format!("tests/vm/run names {name}, which tests/Cargo.toml has no [[test]] for"));
        }
    }
    assert!(errors.is_empty(), "{}", errors.join("\n"));
}

#[test]
fn no_empty_vm_suites_runs_nothing_silently() {
    // tests/run's old-kernel VM asks for no suite by name; an empty VM_SUITES= is refused.
    let run = read("run");
    assert!(run.contains("VM_SUITES=none"), "tests/run's old-kernel VM must say VM_SUITES=none");
    assert!(!run.contains("VM_SUITES= "), "tests/run exports an empty VM_SUITES");
    let script = read("vm/run");
    assert!(script.contains("VM_SUITES is empty"), "tests/vm/run must refuse an empty VM_SUITES");
}
