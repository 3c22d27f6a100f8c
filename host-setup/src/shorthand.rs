//! `host-setup NAME` is short for `host-setup up NAME` — but only where that is
//! surely meant: a mistyped or unknown command must not start a container.

use crate::error::Result;
use crate::spec;
use crate::state::Paths;

/// The sub-commands (argh's names).
pub const SUBCOMMANDS: [&str; 10] =
    ["up", "run", "exec", "down", "status", "logs", "verify", "network", "export", "image"];

/// `host-setup red ...` means `host-setup up red ...`: insert "up" before the first
/// word that is not a global option or a sub-command. Returns the new argv and,
/// if "up" was inserted, the word taken for a container name and whether options
/// followed it.
pub fn with_implicit_up(args: Vec<String>) -> (Vec<String>, Option<(String, bool)>) {
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        if a == "--state-dir" || a == "--cgroup-parent" {
            i += 2;
            continue;
        }
        if a.starts_with('-') || SUBCOMMANDS.contains(&a.as_str()) || a == "help" {
            return (args, None);
        }
        let with_options = args[i + 1..].iter().any(|a| a.starts_with('-'));
        let word = a.clone();
        let mut out = args;
        out.insert(i, "up".into());
        return (out, Some((word, with_options)));
    }
    (args, None)
}

/// The shorthand without the trap: a bare word starts a container only if it
/// surely names one — red, blue, a container that exists, or any name given with
/// options. Anything else is most likely a mistyped or unknown command.
pub fn check_shorthand(word: &str, with_options: bool, paths: &Paths) -> Result<()> {
    if with_options || word == "red" || word == "blue" || paths.journal(word).exists() {
        return Ok(());
    }
    let guess = SUBCOMMANDS.iter().chain(["help"].iter()).min_by_key(|c| edit_distance(word, c)).copied();
    let hint = match guess {
        Some(g) if edit_distance(word, g) <= 2 => format!("; did you mean {g:?}?"),
        _ => ";".to_string(),
    };
    if spec::RESERVED.contains(&word) {
        return Err(crate::usage!("unknown command {word:?}{} (see host-setup --help)", hint.trim_end_matches(';')));
    }
    Err(crate::usage!("unknown command {word:?}{hint} to start a new container with that name: host-setup up {word}"))
}

/// Levenshtein distance, for "did you mean".
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn implicit_up() {
        let up = |s: &str| with_implicit_up(v(s));
        assert_eq!(up("red"), (v("up red"), Some(("red".into(), false))));
        assert_eq!(
            up("--state-dir /x red --cpu 50"),
            (v("--state-dir /x up red --cpu 50"), Some(("red".into(), true)))
        );
        assert_eq!(up("exec red ls"), (v("exec red ls"), None));
        assert_eq!(up("--help"), (v("--help"), None));
        assert_eq!(up("status"), (v("status"), None));
        assert_eq!(up("verify red"), (v("verify red"), None));
        assert_eq!(up("network rm x"), (v("network rm x"), None));
    }

    #[test]
    fn a_bare_unknown_word_is_not_taken_for_a_new_container() {
        let paths = Paths::new("/nonexistent/state");
        for ok in [("red", false), ("blue", false), ("green", true)] {
            assert!(check_shorthand(ok.0, ok.1, &paths).is_ok(), "{ok:?}");
        }
        let e = check_shorthand("stauts", false, &paths).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert_eq!(
            e.to_string(),
            "unknown command \"stauts\"; did you mean \"status\"? to start a new container with that name: host-setup up stauts"
        );
        let e = check_shorthand("version", false, &paths).unwrap_err().to_string();
        assert_eq!(e, "unknown command \"version\" (see host-setup --help)");
        let e = check_shorthand("mybox", false, &paths).unwrap_err().to_string();
        assert_eq!(e, "unknown command \"mybox\"; to start a new container with that name: host-setup up mybox");
        assert_eq!(edit_distance("dwon", "down"), 2);
        assert_eq!(edit_distance("", "up"), 2);
    }
}
