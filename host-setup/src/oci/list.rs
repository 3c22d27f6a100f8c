//! `hsrun list [--format table|json] [-q]`: every container of `--root` (each
//! `ROOT/ID/oci.json`), as runc lists them: a table `ID PID STATUS BUNDLE CREATED
//! OWNER`, the JSON array of runc's container state, or only the IDs.

use serde_json::{json, Value};
use std::os::unix::fs::MetadataExt;

use super::cli::{opt, parse, Global};
use super::state::{State, Status};
use crate::error::{Result, SysContext};
use crate::state::Paths;

/// The containers under `--root` (ROOT/containers/ID/oci.json), sorted by ID;
/// a missing root is none. host-setup's own containers there have no oci.json.
pub fn all(paths: &Paths) -> Result<Vec<State>> {
    let dir = paths.containers();
    let rd = match std::fs::read_dir(&dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
        r => r.sys(|| format!("read dir {}", dir.display()))?,
    };
    let mut out: Vec<State> = rd
        .flatten()
        .filter(|e| e.path().join("oci.json").is_file())
        .filter_map(|e| State::load(paths, &e.file_name().to_string_lossy()).ok())
        .collect();
    out.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(out)
}

/// The user name of `uid` from /etc/passwd (a static binary has no NSS), else `#uid`.
fn owner(uid: u32) -> String {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    passwd
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.get(2)?.parse::<u32>().ok()? == uid).then(|| f[0].to_string())
        })
        .unwrap_or_else(|| format!("#{uid}"))
}

/// runc's containerState for one container.
fn entry(paths: &Paths, c: &State) -> Value {
    let status = c.status(paths);
    let config: Value =
        std::fs::read_to_string(&c.config).ok().and_then(|t| serde_json::from_str(&t).ok()).unwrap_or(Value::Null);
    let rootfs = config["root"]["path"].as_str().map(|p| c.bundle.join(p)).unwrap_or_default();
    let uid = std::fs::metadata(paths.container(&c.id)).map(|m| m.uid()).unwrap_or(0);
    json!({
        "ociVersion": c.oci_version,
        "id": c.id,
        "pid": if status == Status::Stopped { 0 } else { c.pid },
        "status": status.word(),
        "bundle": c.bundle,
        "rootfs": rootfs,
        "created": c.created,
        "annotations": c.annotations,
        "owner": owner(uid),
    })
}

/// Columns padded like Go's tabwriter (minwidth 12, padding 1).
fn table(rows: &[Vec<String>]) -> String {
    let cols = rows.first().map_or(0, Vec::len);
    let width: Vec<usize> = (0..cols).map(|i| rows.iter().map(|r| r[i].len()).max().unwrap_or(0).max(11) + 1).collect();
    let mut out = String::new();
    for r in rows {
        let line: Vec<String> = r
            .iter()
            .enumerate()
            .map(|(i, v)| if i + 1 == cols { v.clone() } else { format!("{v:<w$}", w = width[i]) })
            .collect();
        out.push_str(line.concat().trim_end());
        out.push('\n');
    }
    out
}

pub fn main(g: &Global, args: &[String]) -> Result<i32> {
    let p = parse("list", args, &[opt(&["format", "f"], true), opt(&["quiet", "q"], false)], None)?;
    if let Some(a) = p.args.first() {
        return Err(crate::usage!("list: takes no arguments (got {a:?})"));
    }
    let paths = g.paths();
    let all = all(&paths)?;
    if p.flag("quiet") {
        for c in &all {
            println!("{}", c.id);
        }
        return Ok(0);
    }
    match p.value("format").unwrap_or("table") {
        "json" => {
            let v: Vec<Value> = all.iter().map(|c| entry(&paths, c)).collect();
            println!("{}", serde_json::to_string(&v).map_err(|e| crate::failed!("list: {e}"))?);
        }
        "table" => {
            let mut rows = vec![["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"].map(String::from).to_vec()];
            for e in all.iter().map(|c| entry(&paths, c)) {
                let s = |k: &str| e[k].as_str().map(String::from).unwrap_or_else(|| e[k].to_string());
                rows.push(vec![s("id"), s("pid"), s("status"), s("bundle"), s("created"), s("owner")]);
            }
            print!("{}", table(&rows));
        }
        f => return Err(crate::usage!("list: --format {f:?}: use table or json")),
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_pads_like_tabwriter() {
        let rows = vec![vec!["ID".to_string(), "PID".into()], vec!["a-long-container-id".into(), "42".into()]];
        assert_eq!(table(&rows), "ID                  PID\na-long-container-id 42\n");
        assert_eq!(owner(0), "root");
    }
}
