//! host-setup: bring up the tutorial's containers from system calls.
//!
//!   host-setup red && host-setup blue     two containers that ping each other
//!   host-setup exec red ping -c 3 11.11.11.3
//!   host-setup run red -- stress -c 1     a foreground container, removed afterwards
//!   host-setup status
//!   host-setup down red
//!
//! Exit codes: 0 success; 1 a step failed; 2 bad command line or value;
//! 3 the host cannot do it (not root, missing feature, name in use);
//! run/exec: the command's own status (128+N for signal N; 125 if entering failed,
//! 126 cannot execute, 127 not found).
#![deny(unsafe_code)]

use std::path::PathBuf;
use std::time::Duration;

use argh::FromArgs;

mod cli_export;
mod cli_image;
mod cli_network;
mod cli_up;
use cli_image::ImageCmd;
use cli_network::NetworkCmd;
use cli_up::{RunCmd, UpCmd};

use host_setup::ctx::Bins;
use host_setup::error::Result;
use host_setup::shorthand::with_implicit_up;
use host_setup::spec;
use host_setup::state::{self, Paths};
use host_setup::{commands, exec, status, status_json, sys};

#[derive(FromArgs)]
/// Linux containers without Docker: namespaces, cgroups, overlayfs, veth and
/// pivot_root, done step by step. `host-setup NAME` is short for `host-setup up NAME`.
#[argh(
    note = "RUST_LOG=debug traces every step. Examples: host-setup red && host-setup blue; host-setup exec red ping -c 3 11.11.11.3; host-setup down red blue",
    error_code(1, "a step failed (the message names the step, the path and the errno)"),
    error_code(2, "a bad command line or value; nothing was changed"),
    error_code(
        3,
        "the host cannot do it (not root, a missing controller or binary, a name in use); nothing was changed"
    ),
    error_code(130, "interrupted (128+N for signal N); what the setup had made is removed")
)]
struct Cli {
    /// where layers, journals and container dirs live (default /var/lib/host-setup, or $HOST_SETUP_STATE_DIR)
    #[argh(option)]
    state_dir: Option<PathBuf>,
    /// the project's own cgroup directory the containers go under (default host-setup, or $HOST_SETUP_CGROUP_PARENT)
    #[argh(option)]
    cgroup_parent: Option<String>,
    #[argh(subcommand)]
    cmd: Cmd,
}

#[derive(FromArgs)]
#[argh(subcommand)]
enum Cmd {
    Up(UpCmd),
    Run(RunCmd),
    Exec(ExecCmd),
    Down(DownCmd),
    Status(StatusCmd),
    Logs(LogsCmd),
    Verify(VerifyCmd),
    Network(NetworkCmd),
    Export(cli_export::ExportCmd),
    Image(ImageCmd),
}

#[derive(FromArgs)]
#[argh(subcommand, name = "exec")]
/// Run a command inside a running container (its namespaces, root and cgroups); a shell by default.
struct ExecCmd {
    /// container name
    #[argh(positional)]
    name: String,
    /// the command and its arguments
    #[argh(positional, greedy)]
    command: Vec<String>,
}

#[derive(FromArgs)]
#[argh(subcommand, name = "down")]
/// Stop a container (SIGTERM, then SIGKILL after the grace period) and remove all of it.
struct DownCmd {
    /// container names
    #[argh(positional)]
    names: Vec<String>,
    /// seconds between SIGTERM and SIGKILL (default 10)
    #[argh(option, default = "10")]
    timeout: u64,
}

#[derive(FromArgs)]
#[argh(subcommand, name = "status")]
/// Show the containers: state, init pid, address and link, limits and usage, layers.
struct StatusCmd {
    /// container names (default: all)
    #[argh(positional)]
    names: Vec<String>,
    /// the same as JSON, with the kernel's live limits, usage and OOM kills
    #[argh(switch)]
    json: bool,
}

#[derive(FromArgs)]
#[argh(subcommand, name = "logs")]
/// Print a background container's log (its main process's stdout and stderr), oldest first.
struct LogsCmd {
    /// container name
    #[argh(positional)]
    name: String,
    /// keep printing what it writes until the container has exited
    #[argh(switch, short = 'f')]
    follow: bool,
    /// only the last N lines
    #[argh(option)]
    tail: Option<usize>,
}

#[derive(FromArgs)]
#[argh(subcommand, name = "verify")]
/// Prove each mechanism on running containers by its effect (namespaces, hostname, limits, ping, capabilities, chroot escape, CPU share, memory boundary, swap); one line per check, exit 1 naming the failed ones.
struct VerifyCmd {
    /// container names (default: all running)
    #[argh(positional)]
    names: Vec<String>,
    /// run only this check (repeatable): namespaces, hostname, limits, ping, caps, escape, cpu, memory, swap, cleanup
    #[argh(option)]
    check: Vec<String>,
}

fn main() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"))
        .format_timestamp(None)
        .format_target(false)
        .init();
    sys::ensure_std_fds();
    // Ours, not the caller's: what we make has explicit modes (state/perms.rs).
    state::perms::set_umask();
    let argv: Vec<String> = std::env::args().collect();
    let (args, shorthand) = with_implicit_up(argv[1..].to_vec());
    let strs: Vec<&str> = args.iter().map(String::as_str).collect();
    let cli = match Cli::from_args(&["host-setup"], &strs) {
        Ok(c) => c,
        Err(early) => {
            if early.status.is_ok() {
                println!("{}", early.output);
                std::process::exit(0);
            }
            // argh's messages, in our style: lower-case, no trailing period.
            let msg = early.output.trim_end().trim_end_matches('.');
            let mut c = msg.chars();
            let msg: String = c.next().map(|f| f.to_lowercase().chain(c).collect()).unwrap_or_default();
            eprintln!("host-setup: {msg} (see host-setup --help)");
            std::process::exit(2);
        }
    };
    let code = match run(cli, shorthand) {
        Ok(code) => code,
        Err(e) => {
            if e.needs_printing() {
                eprintln!("host-setup: {e}");
            }
            e.exit_code()
        }
    };
    std::process::exit(code);
}

fn run(cli: Cli, shorthand: Option<(String, bool)>) -> Result<i32> {
    let state_dir = cli
        .state_dir
        .or_else(|| std::env::var_os("HOST_SETUP_STATE_DIR").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(state::DEFAULT_STATE_DIR));
    let parent = cli
        .cgroup_parent
        .or_else(|| std::env::var("HOST_SETUP_CGROUP_PARENT").ok())
        .unwrap_or_else(|| state::DEFAULT_CGROUP_PARENT.to_string());
    host_setup::cgroup::validate_parent(&parent)?;
    let state_dir = absolute_state_dir(state_dir)?;
    let paths = Paths::new(state_dir);
    let root = || -> Result<()> {
        if nix::unistd::geteuid().is_root() {
            return Ok(());
        }
        Err(host_setup::precondition!(
            "host-setup must run as root (namespaces, mounts and cgroups need it): try sudo host-setup ..."
        ))
    };
    match cli.cmd {
        Cmd::Up(c) => cli_up::up(&paths, &parent, c, shorthand, &root),
        Cmd::Run(c) => cli_up::run(&paths, &parent, c, &root),
        Cmd::Exec(c) => {
            spec::validate_name(&c.name)?;
            root()?;
            exec::exec(&paths, &c.name, &c.command, &Bins::locate(None)?.init)
        }
        Cmd::Down(c) => {
            if c.names.is_empty() {
                return Err(host_setup::usage!("down needs a container name, e.g. host-setup down red"));
            }
            for n in &c.names {
                spec::validate_name(n)?;
            }
            root()?;
            commands::down_all(&paths, &c.names, Duration::from_secs(c.timeout))?;
            Ok(0)
        }
        Cmd::Status(c) => {
            for n in &c.names {
                spec::validate_name(n)?;
            }
            let text = if c.json { status_json::report(&paths, &c.names)? } else { status::report(&paths, &c.names)? };
            print!("{text}");
            Ok(0)
        }
        Cmd::Logs(c) => {
            spec::validate_name(&c.name)?;
            root()?;
            host_setup::logs::show(&paths, &c.name, c.follow, c.tail)?;
            Ok(0)
        }
        Cmd::Network(n) => cli_network::run(&paths, n, &root),
        Cmd::Export(c) => cli_export::run(&paths, c, &root),
        Cmd::Image(i) => cli_image::run(&paths, i, &root),
        Cmd::Verify(c) => {
            for n in &c.names {
                spec::validate_name(n)?;
            }
            root()?;
            host_setup::verify::verify(&paths, &c.names, &c.check)
        }
    }
}

/// The state dir goes into overlay options and journals: absolute, and free of
/// the characters those use as separators.
fn absolute_state_dir(dir: PathBuf) -> Result<PathBuf> {
    let abs = if dir.is_absolute() {
        dir
    } else {
        std::env::current_dir().map_err(|e| host_setup::failed!("getcwd: {e}"))?.join(dir)
    };
    let s = abs.to_string_lossy();
    if s.contains([':', ',', '\\']) || s.chars().any(char::is_whitespace) {
        return Err(host_setup::usage!(
            "--state-dir {s}: overlayfs cannot take a path with ':', ',', '\\' or white space"
        ));
    }
    Ok(abs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use cli_network::NetSub;

    fn v(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    fn parse(s: &str) -> std::result::Result<Cli, argh::EarlyExit> {
        let args = with_implicit_up(v(s)).0;
        let strs: Vec<&str> = args.iter().map(String::as_str).collect();
        Cli::from_args(&["host-setup"], &strs)
    }

    #[test]
    fn options_and_commands() {
        let Ok(Cli { cmd: Cmd::Up(u), .. }) = parse("green --address 10.0.0.2/24 --layer /a --layer /b -- sleep 10")
        else {
            panic!("parse")
        };
        assert_eq!(u.name, "green");
        assert_eq!(u.layer, v("/a /b"));
        assert_eq!(u.command, v("sleep 10"));
        let Ok(Cli { cmd: Cmd::Exec(e), .. }) = parse("exec red ps -ef") else { panic!("parse") };
        assert_eq!(e.command, v("ps -ef"));
        let Ok(Cli { cmd: Cmd::Run(r), .. }) = parse("run red --cpu 10 -- stress -c 1") else { panic!("parse") };
        assert_eq!((r.cpu.as_deref(), r.command.clone()), (Some("10"), v("stress -c 1")));
        assert!(parse("down").is_ok_and(|c| matches!(c.cmd, Cmd::Down(ref d) if d.names.is_empty())));
        assert!(parse("up red --bogus").is_err());
        assert!(parse("status --json red").is_ok_and(|c| matches!(c.cmd, Cmd::Status(ref s) if s.json)));
        let Ok(Cli { cmd: Cmd::Up(u), .. }) = parse("web --net hs0 -p 8080:80 -p 53:53/udp") else { panic!("parse") };
        assert_eq!((u.net.as_deref(), u.publish.clone()), (Some("hs0"), v("8080:80 53:53/udp")));
        let Ok(Cli { cmd: Cmd::Network(n), .. }) = parse("network create web --subnet 10.80.0.0/16") else {
            panic!("parse")
        };
        assert!(matches!(n.cmd, NetSub::Create(ref c) if c.subnet.as_deref() == Some("10.80.0.0/16")));
        assert!(parse("network ls").is_ok_and(|c| matches!(c.cmd, Cmd::Network(NetworkCmd { cmd: NetSub::Ls(_) }))));
        assert!(parse("verify").is_ok_and(|c| matches!(c.cmd, Cmd::Verify(ref v) if v.names.is_empty())));
    }
}
