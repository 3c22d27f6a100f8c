//! The documentation holds together: every relative link in README.md and docs/*.md
//! points at a file or directory of the repository, and a `#anchor` at a heading of
//! the target (GitHub's slug rules); README.md stays a front door of at most 250
//! lines. Pure file reading: no root, no kernel.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};

/// README's length limit (issue 22: the details live in docs/).
const README_MAX_LINES: usize = 250;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ has a parent").to_path_buf()
}

/// README.md and every docs/*.md.
fn doc_files() -> Vec<PathBuf> {
    let root = repo();
    let mut files = vec![root.join("README.md")];
    let mut docs: Vec<PathBuf> = fs::read_dir(root.join("docs"))
        .expect("read docs/")
        .map(|e| e.expect("docs/ entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    docs.sort();
    files.extend(docs);
    files
}

/// The lines of `text` outside fenced code blocks, with their 1-based numbers.
fn prose_lines(text: &str) -> Vec<(usize, &str)> {
    let mut fence: Option<&str> = None;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let t = line.trim_start();
        let marker = if t.starts_with("```") {
            Some("```")
        } else if t.starts_with("~~~") {
            Some("~~~")
        } else {
            None
        };
        match (fence, marker) {
            (None, Some(m)) => fence = Some(m),
            (Some(f), Some(m)) if f == m => fence = None,
            (None, None) => out.push((i + 1, line)),
            _ => {}
        }
    }
    out
}

/// `line` without its code spans (`...`): a link inside one is not a link.
fn without_code_spans(line: &str) -> String {
    let mut out = String::new();
    let mut rest = line;
    while let Some(start) = rest.find('`') {
        out.push_str(&rest[..start]);
        let ticks = rest[start..].chars().take_while(|&c| c == '`').count();
        let after = &rest[start + ticks..];
        match after.find(&"`".repeat(ticks)) {
            Some(end) => rest = &after[end + ticks..],
            None => {
                out.push_str(&rest[start..]);
                return out;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The targets of the inline links `[text](target)` and reference definitions
/// `[label]: target` on one line of prose.
fn link_targets(line: &str) -> Vec<String> {
    let line = without_code_spans(line);
    let mut targets = Vec::new();
    let t = line.trim_start();
    if t.starts_with('[') {
        if let Some(close) = t.find("]:") {
            if let Some(target) = t[close + 2..].split_whitespace().next() {
                targets.push(target.trim_matches(|c| c == '<' || c == '>').to_string());
            }
        }
    }
    let mut rest = line.as_str();
    while let Some(pos) = rest.find("](") {
        let after = &rest[pos + 2..];
        if let Some(bracketed) = after.strip_prefix('<') {
            let end = bracketed.find('>').unwrap_or(bracketed.len());
            targets.push(bracketed[..end].to_string());
            rest = &bracketed[end..];
            continue;
        }
        // The target ends at the `)` that closes the one opened here (a target may
        // hold balanced parentheses), or at a space before a title.
        let mut depth = 0;
        let mut end = after.len();
        for (i, c) in after.char_indices() {
            match c {
                '(' => depth += 1,
                ')' if depth == 0 => {
                    end = i;
                    break;
                }
                ')' => depth -= 1,
                _ => {}
            }
        }
        let target = after[..end].split_whitespace().next().unwrap_or("");
        targets.push(target.to_string());
        rest = &after[end..];
    }
    targets
}

/// GitHub's anchor for a heading: the rendered text (code spans keep their
/// content, links their text, emphasis marks go) lower-cased; letters, digits,
/// `-` and `_` kept, spaces become `-`, everything else dropped.
fn slug(heading: &str) -> String {
    let mut text = String::new();
    let mut rest = heading;
    // [text](target) -> text
    while let Some(open) = rest.find('[') {
        let Some(mid) = rest[open..].find("](") else { break };
        let Some(close) = rest[open + mid..].find(')') else { break };
        text.push_str(&rest[..open]);
        text.push_str(&rest[open + 1..open + mid]);
        rest = &rest[open + mid + close + 1..];
    }
    text.push_str(rest);
    text.to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// Every anchor a Markdown file offers: its ATX headings' slugs (a repeated one
/// gets `-1`, `-2`, ... as on GitHub) and `<a name="...">`/`id="..."` targets.
fn anchors(text: &str) -> HashSet<String> {
    let mut seen: HashSet<String> = HashSet::new();
    for (_, line) in prose_lines(text) {
        let t = line.trim_start();
        let hashes = t.chars().take_while(|&c| c == '#').count();
        if (1..=6).contains(&hashes) && t[hashes..].starts_with(' ') {
            let base = slug(t[hashes..].trim().trim_end_matches('#').trim());
            let mut s = base.clone();
            let mut n = 0;
            while seen.contains(&s) {
                n += 1;
                s = format!("{base}-{n}");
            }
            seen.insert(s);
        }
        for key in ["name=\"", "id=\""] {
            let mut rest = t;
            while let Some(p) = rest.find(key) {
                let after = &rest[p + key.len()..];
                if let Some(end) = after.find('"') {
                    seen.insert(after[..end].to_string());
                }
                rest = after;
            }
        }
    }
    seen
}

/// The broken links of one file, as "file:line: target: why".
fn broken_links(file: &Path) -> Vec<String> {
    let root = repo();
    let text = fs::read_to_string(file).unwrap_or_else(|e| panic!("read {}: {e}", file.display()));
    let name = file.strip_prefix(&root).unwrap_or(file).display().to_string();
    let dir = file.parent().expect("a file has a directory");
    let mut broken = Vec::new();
    for (n, line) in prose_lines(&text) {
        for target in link_targets(line) {
            let is_external = target.contains("://") || target.starts_with("mailto:");
            if target.is_empty() || is_external {
                continue;
            }
            let (path, anchor) = match target.split_once('#') {
                Some((p, a)) => (p, Some(a)),
                None => (target.as_str(), None),
            };
            let dest = if path.is_empty() { file.to_path_buf() } else { dir.join(path) };
            if !dest.exists() {
                broken.push(format!("{name}:{n}: {target}: no such file"));
                continue;
            }
            // A link must stay inside the repository (GitHub resolves nothing else).
            match dest.canonicalize() {
                Ok(d) if d.starts_with(root.canonicalize().expect("repo root")) => {}
                _ => broken.push(format!("{name}:{n}: {target}: outside the repository")),
            }
            let Some(anchor) = anchor else { continue };
            if dest.extension().is_none_or(|x| x != "md") {
                broken.push(format!("{name}:{n}: {target}: an anchor into a file that is not Markdown"));
                continue;
            }
            let dest_text = fs::read_to_string(&dest).expect("read link target");
            if !anchors(&dest_text).contains(anchor) {
                broken.push(format!("{name}:{n}: {target}: no heading with the anchor #{anchor}"));
            }
        }
    }
    broken
}

#[test]
fn every_relative_link_in_readme_and_docs_resolves() {
    let files = doc_files();
    assert!(files.len() > 1, "docs/ has no .md page");
    let mut checked = 0;
    let mut broken = Vec::new();
    for f in &files {
        let text = fs::read_to_string(f).expect("read doc");
        checked += prose_lines(&text).iter().map(|(_, l)| link_targets(l).len()).sum::<usize>();
        broken.extend(broken_links(f));
    }
    assert!(checked > 50, "only {checked} links found: is the link parser broken?");
    assert!(broken.is_empty(), "{} broken links:\n{}", broken.len(), broken.join("\n"));
}

#[test]
fn readme_is_a_front_door() {
    let text = fs::read_to_string(repo().join("README.md")).expect("read README.md");
    let lines = text.lines().count();
    assert!(
        lines <= README_MAX_LINES,
        "README.md has {lines} lines, at most {README_MAX_LINES}: move the details into a page of docs/"
    );
}

/// The commands of README's "Two commands" block: the first word of each line.
fn readme_commands(readme: &str) -> Vec<String> {
    let section = readme.split("\n## Two commands").nth(1).expect("README has a \"## Two commands\" section");
    let block = section.split("```").nth(1).expect("a code block in \"Two commands\"");
    block.lines().skip(1).filter_map(|l| l.split_whitespace().next()).map(String::from).collect()
}

#[test]
fn readmes_two_commands_are_what_ci_runs() {
    let root = repo();
    let readme = fs::read_to_string(root.join("README.md")).expect("read README.md");
    let commands = readme_commands(&readme);
    assert_eq!(commands, ["vagrant/lab.sh", "tests/run"], "README's two commands changed: keep .ci/run in step");
    for c in &commands {
        let mode = fs::metadata(root.join(c)).unwrap_or_else(|e| panic!("{c}: {e}")).permissions();
        assert!(std::os::unix::fs::PermissionsExt::mode(&mode) & 0o111 != 0, "{c} is not executable");
    }
    // CI runs the test command itself, as a line of its own, and the lab the way
    // Vagrant does (vagrant/provision.sh runs vagrant/lab.sh up and check).
    let ci = fs::read_to_string(root.join(".ci/run")).expect("read .ci/run");
    assert!(ci.lines().any(|l| l.trim() == "tests/run"), ".ci/run no longer runs tests/run, README's test command");
    assert!(ci.contains("vagrant/provision.sh"), ".ci/run no longer runs vagrant/provision.sh");
    let provision = fs::read_to_string(root.join("vagrant/provision.sh")).expect("read provision.sh");
    assert!(
        provision.lines().any(|l| l.trim() == "vagrant/lab.sh up"),
        "provision.sh no longer runs vagrant/lab.sh up"
    );
}

#[test]
fn the_link_parser_and_slugs_follow_github() {
    assert_eq!(slug("A disk limit (`--disk`)"), "a-disk-limit---disk");
    assert_eq!(
        slug("The OCI validation suite: hsrun beside runc and crun"),
        "the-oci-validation-suite-hsrun-beside-runc-and-crun"
    );
    assert_eq!(slug("Proving it: `verify` and `status --json`"), "proving-it-verify-and-status---json");
    assert_eq!(slug("init as a drop-in PID 1"), "init-as-a-drop-in-pid-1");
    assert_eq!(slug("See [the docs](docs/x.md) now"), "see-the-docs-now");
    assert_eq!(slug("hsrun's verbs besides create, start"), "hsruns-verbs-besides-create-start");
    let a = anchors("# Title\n## Same\n```\n## not a heading\n```\n## Same\n<a name=\"here\"></a>\n");
    let want: HashSet<String> = ["title", "same", "same-1", "here"].map(String::from).into();
    assert_eq!(a, want);
    assert_eq!(
        link_targets("see [a](docs/a.md#x), `[b](not.md)` and [c](<d e.md>) [f](g.md \"title\") [h](x_(y).md)"),
        vec!["docs/a.md#x", "d e.md", "g.md", "x_(y).md"]
    );
    assert_eq!(link_targets("[ref]: docs/r.md"), vec!["docs/r.md"]);
}
