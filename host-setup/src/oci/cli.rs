//! runc's command line, as engines pass it (containerd's go-runc, conmon, Docker
//! through containerd): global options, then the verb, its options and its
//! arguments. Parsed by hand the way urfave/cli reads it: `--flag value`,
//! `--flag=value`, `-flag value`, short names (`-b`), bools (`--detach`,
//! `--detach=true`); options may come before or after the container id.
//!
//! Adding a verb: one file with `pub fn main(g: &Global, args: &[String]) ->
//! Result<i32>` and one arm in `verb`.

use std::path::PathBuf;

use super::log::Log;
use crate::error::Result;
use crate::state::Paths;

/// The options before the verb.
#[derive(Debug, Clone)]
pub struct Global {
    pub root: PathBuf,
    pub log: Log,
    pub debug: bool,
    pub systemd_cgroup: bool,
}

impl Global {
    pub fn paths(&self) -> Paths {
        Paths::new(&self.root)
    }
}

pub type Verb = fn(&Global, &[String]) -> Result<i32>;

/// The verbs: one arm each.
fn verb(name: &str) -> Option<Verb> {
    Some(match name {
        "create" => super::create::main,
        "run" => super::create::run_main,
        "start" => super::start::main,
        "state" => super::start::state_main,
        "kill" => super::kill::main,
        "delete" => super::delete::main,
        "exec" => super::exec::main,
        "ps" => super::ps::main,
        "list" => super::list::main,
        "pause" => super::pause::pause,
        "resume" => super::pause::resume,
        "update" => super::update::main,
        "features" => super::features::main,
        _ => return None,
    })
}

/// One option a verb takes: its names (without dashes) and whether it takes a value.
pub struct Opt {
    pub names: &'static [&'static str],
    pub value: bool,
}

pub const fn opt(names: &'static [&'static str], value: bool) -> Opt {
    Opt { names, value }
}

/// What a verb's command line said.
#[derive(Debug, Default)]
pub struct Parsed {
    /// (first name of the option, value; "true" for a bool).
    pub opts: Vec<(&'static str, String)>,
    pub args: Vec<String>,
}

impl Parsed {
    pub fn value(&self, name: &str) -> Option<&str> {
        self.opts.iter().rev().find(|(n, _)| *n == name).map(|(_, v)| v.as_str())
    }
    pub fn values(&self, name: &str) -> Vec<&str> {
        self.opts.iter().filter(|(n, _)| *n == name).map(|(_, v)| v.as_str()).collect()
    }
    pub fn flag(&self, name: &str) -> bool {
        self.value(name).is_some_and(|v| v != "false")
    }
    /// The one argument `verb` needs: the container id.
    pub fn id(&self, verb: &str) -> Result<&str> {
        match self.args.first() {
            Some(id) => {
                super::config::check_id(id)?;
                Ok(id)
            }
            None => Err(crate::usage!("{verb}: the container id is missing: hsrun {verb} [options] ID")),
        }
    }
}

/// Parse `args` against `known`. After `stop_after` arguments (exec's ID), the
/// rest is arguments as they are (the command and its own options).
pub fn parse(verb: &str, args: &[String], known: &[Opt], stop_after: Option<usize>) -> Result<Parsed> {
    let mut p = Parsed::default();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if stop_after.is_some_and(|n| p.args.len() >= n) {
            p.args.push(a.clone());
            p.args.extend(it.by_ref().cloned());
            break;
        }
        if a == "--" {
            p.args.extend(it.by_ref().cloned());
            break;
        }
        let Some(body) = a.strip_prefix("--").or_else(|| a.strip_prefix('-')).filter(|b| !b.is_empty()) else {
            p.args.push(a.clone());
            continue;
        };
        let (name, inline) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (body, None),
        };
        let Some(o) = known.iter().find(|o| o.names.contains(&name)) else {
            return Err(crate::usage!("{verb}: unknown option {a}"));
        };
        let value = match (o.value, inline) {
            (_, Some(v)) => v,
            (true, None) => it.next().cloned().ok_or_else(|| crate::usage!("{verb}: option {a} needs a value"))?,
            (false, None) => "true".into(),
        };
        p.opts.push((o.names[0], value));
    }
    Ok(p)
}

const GLOBAL: [Opt; 9] = [
    opt(&["root"], true),
    opt(&["log"], true),
    opt(&["log-format"], true),
    opt(&["debug"], false),
    opt(&["systemd-cgroup"], false),
    opt(&["criu"], true),
    opt(&["rootless"], true),
    opt(&["help", "h"], false),
    opt(&["version", "v"], false),
];

pub const HELP: &str = "hsrun: an OCI runtime (runc's command line) over host-setup's engine

usage: hsrun [global options] COMMAND [options] ID [args]

global options:
  --root DIR            state directory (default /run/hsrun): host-setup's --state-dir
  --log FILE            append errors (and with --debug, more) to FILE
  --log-format FORMAT   text or json (runc's: {\"level\",\"msg\",\"time\"})
  --debug               debug logging
  --systemd-cgroup      cgroupsPath as slice:prefix:name: a systemd transient scope (cgroup v2)
  --version, --help

commands:
  create ID --bundle DIR [--pid-file F] [--console-socket S] [--no-pivot] [--no-new-keyring]
  start ID            release a created container
  run ID --bundle DIR [--detach] [--pid-file F] ...   create + start (+ wait, + delete)
  state ID            the runtime-spec state as JSON
  kill ID [SIGNAL] [--all]
  delete ID [--force]
  exec ID CMD [ARGS...] | exec --process FILE ID   [--detach --pid-file F --tty --console-socket S
                        --cwd DIR --env K=V --user UID[:GID] --cap CAP --no-new-privs]
  ps [--format table|json] ID [PS_ARGS...]
  list [--format table|json] [--quiet]
  pause ID, resume ID   the cgroup freezer
  update ID --resources FILE|-   or --memory, --memory-swap, --cpu-quota, --cpu-period, --cpu-share,
                        --cpuset-cpus, --cpuset-mems, --pids-limit
  features            the runtime-spec features document
";

/// hsrun's whole life: parse, run the verb, report an error runc's way (stderr,
/// and the log), exit 1 on any failure.
pub fn main(argv: Vec<String>) -> i32 {
    crate::sys::ensure_std_fds();
    let mut g = Global { root: super::DEFAULT_ROOT.into(), log: Log::default(), debug: false, systemd_cgroup: false };
    let mut i = 0;
    let args = &argv[1.min(argv.len())..];
    // Global options end at the first word that is not one.
    let mut globals = vec![];
    while i < args.len() && args[i].starts_with('-') {
        globals.push(args[i].clone());
        let name = args[i].trim_start_matches('-');
        if !name.contains('=') && GLOBAL.iter().any(|o| o.value && o.names.contains(&name)) {
            i += 1;
            if i < args.len() {
                globals.push(args[i].clone());
            }
        }
        i += 1;
    }
    let p = match parse("hsrun", &globals, &GLOBAL, None) {
        Ok(p) => p,
        Err(e) => return fail(&g, &e),
    };
    if let Some(r) = p.value("root") {
        g.root = r.into();
    }
    g.log.file = p.value("log").map(PathBuf::from);
    g.log.json = p.value("log-format") == Some("json");
    g.debug = p.flag("debug");
    g.systemd_cgroup = p.flag("systemd-cgroup");
    let level = if g.debug { "debug" } else { "warn" };
    let _ = env_logger::Builder::new().parse_filters(&std::env::var("RUST_LOG").unwrap_or(level.into())).try_init();
    if p.flag("version") {
        println!("hsrun version {}\nspec: {}", env!("CARGO_PKG_VERSION"), super::config::OCI_VERSION);
        return 0;
    }
    let Some(name) = args.get(i) else {
        print!("{HELP}");
        return if p.flag("help") { 0 } else { 1 };
    };
    if p.flag("help") || name == "help" {
        print!("{HELP}");
        return 0;
    }
    if g.systemd_cgroup && !crate::systemd::booted() {
        let why = format!("this host does not run systemd (no {}): drop --systemd-cgroup", crate::systemd::BOOTED);
        return fail(&g, &crate::usage!("--systemd-cgroup: {why}"));
    }
    let Some(run) = verb(name) else {
        return fail(&g, &crate::usage!("unknown command {name:?}: see hsrun --help"));
    };
    g.log.line("debug", &argv.join(" "));
    match run(&g, &args[i + 1..]) {
        Ok(code) => code,
        Err(e) => fail(&g, &e),
    }
}

fn fail(g: &Global, e: &crate::error::Error) -> i32 {
    let msg = e.to_string();
    eprintln!("hsrun: {msg}");
    g.log.line("error", &msg);
    1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn runc_spellings() {
        let known = [opt(&["bundle", "b"], true), opt(&["detach", "d"], false), opt(&["pid-file"], true)];
        for args in [
            v(&["--bundle", "/b", "--pid-file=/p", "-d", "x"]),
            v(&["x", "-b", "/b", "-pid-file", "/p", "--detach"]),
            v(&["-bundle=/b", "x", "--pid-file", "/p", "--detach=true"]),
        ] {
            let p = parse("run", &args, &known, None).unwrap();
            assert_eq!(p.value("bundle"), Some("/b"), "{args:?}");
            assert_eq!(p.value("pid-file"), Some("/p"));
            assert!(p.flag("detach"));
            assert_eq!(p.id("run").unwrap(), "x");
        }
        let p = parse("exec", &v(&["x", "ls", "-l"]), &known, Some(1)).unwrap();
        assert_eq!(p.args, ["x", "ls", "-l"]);
        assert!(parse("run", &v(&["--nope"]), &known, None).is_err());
        assert!(parse("run", &v(&["--bundle"]), &known, None).is_err());
        assert!(parse("run", &v(&[]), &known, None).unwrap().id("run").is_err());
    }
}
