//! `host-setup up|run NAME [options] [-- CMD...]`: the command line (argh) of a container's
//! description, turned into spec::Options and RunOptions for commands::up.

use std::path::PathBuf;

use argh::FromArgs;

use host_setup::commands;
use host_setup::ctx::Mode;
use host_setup::error::Result;
use host_setup::shorthand::check_shorthand;
use host_setup::spec;
use host_setup::state::Paths;

/// The options that say what a container is; shared by `up` and `run`.
macro_rules! container_cmd {
    ($ty:ident, $name:literal, $doc:literal) => {
        #[derive(FromArgs)]
        #[argh(subcommand, name = $name)]
        #[doc = $doc]
        pub struct $ty {
            /// container name: red and blue carry the tutorial's defaults; others need options
            #[argh(positional)]
            pub name: String,
            /// address with prefix length (red: 11.11.11.2/24, blue: 11.11.11.3/24)
            #[argh(option)]
            pub address: Option<String>,
            /// the container at the other end of the veth pair (red: blue, blue: red)
            #[argh(option)]
            pub peer: Option<String>,
            /// interface name inside (red: veth0, blue: veth1, others: eth0)
            #[argh(option)]
            pub iface: Option<String>,
            /// CPU share in percent of one CPU (default 40)
            #[argh(option)]
            pub cpu: Option<String>,
            /// memory limit: bytes or with K, M, G (default 200M); swap is off
            #[argh(option)]
            pub memory: Option<String>,
            /// the most the container may write: bytes or with K, M, G; its upper dir is a tmpfs of that size, which counts against --memory (default: no limit of its own)
            #[argh(option)]
            pub disk: Option<String>,
            /// most processes at once (default 512; none with --privileged)
            #[argh(option)]
            pub pids: Option<String>,
            /// hostname inside (default: the name in upper case)
            #[argh(option)]
            pub hostname: Option<String>,
            /// an extra image layer directory on top of tools and myroot (repeatable, topmost first)
            #[argh(option)]
            pub layer: Vec<String>,
            /// the init binary to use (default: init next to host-setup)
            #[argh(option)]
            pub init: Option<PathBuf>,
            /// forward signals to the main process's whole process group (init -g)
            #[argh(switch)]
            pub pgroup: bool,
            /// the tutorial's way: exec the command as PID 1 instead of init supervising it (it then ignores SIGTERM and leaves zombies)
            #[argh(switch)]
            pub exec_as_pid1: bool,
            /// the tutorial's full root: all capabilities, unmasked /proc, the host's devices, no device or pids limits
            #[argh(switch)]
            pub privileged: bool,
            /// the system call filter: default (Docker's default profile), unconfined, or a profile file in Docker's JSON format (unconfined with --privileged)
            #[argh(option)]
            pub seccomp: Option<String>,
            /// a user namespace: root inside is an unprivileged range of host ids (the default except for red, blue and --privileged)
            #[argh(switch)]
            pub userns: bool,
            /// no user namespace: root inside is root on the host (red and blue's default)
            #[argh(switch)]
            pub no_userns: bool,
            /// the network: pair (the tutorial's veth pair: red, blue, --address), none (only loopback), or a bridge network's name (hs0 is made on first use)
            #[argh(option)]
            pub net: Option<String>,
            /// publish a port on a network: HOSTPORT:PORT[/tcp|/udp] (repeatable)
            #[argh(option, short = 'p')]
            pub publish: Vec<String>,
            /// rotate the main process's log at this size (default 10M; see host-setup logs)
            #[argh(option)]
            pub log_max_size: Option<String>,
            /// how many log files to keep, the current one included (default 3)
            #[argh(option)]
            pub log_max_files: Option<String>,
            /// run an image (see host-setup image ls): its layers instead of tools and myroot, its Entrypoint, Cmd, Env, WorkingDir and User as defaults
            #[argh(option)]
            pub image: Option<String>,
            /// an environment variable: K=V, or K for the host's value (repeatable)
            #[argh(option, short = 'e')]
            pub env: Vec<String>,
            /// a file of K=V lines (# comments) for the environment (repeatable)
            #[argh(option)]
            pub env_file: Vec<PathBuf>,
            /// the main process's working directory (absolute)
            #[argh(option, short = 'w')]
            pub workdir: Option<String>,
            /// the main process's user: UID[:GID] or a NAME[:GROUP] of the image's /etc/passwd and /etc/group
            #[argh(option, short = 'u')]
            pub user: Option<String>,
            /// replace the image's Entrypoint (and clear its Cmd); '' for none
            #[argh(option)]
            pub entrypoint: Option<String>,
            /// a host directory inside: HOSTDIR:DIR[:ro] (idmapped under a user namespace: files keep their host owners)
            #[argh(option, short = 'v')]
            pub volume: Vec<String>,
            /// a tmpfs inside: DIR[:size=64m,mode=1777,...] (nosuid, nodev, noexec unless told)
            #[argh(option)]
            pub tmpfs: Vec<String>,
            /// a read-only root (the upper dir unused); /tmp and /run are tmpfs
            #[argh(switch)]
            pub read_only: bool,
            /// print the steps as the tutorial's shell commands and change nothing
            #[argh(switch)]
            pub explain: bool,
            /// the command to run inside, after `--`
            #[argh(positional, greedy)]
            pub command: Vec<String>,
        }

        impl $ty {
            pub fn run_options(&self) -> spec::runopts::RunOptions {
                spec::runopts::RunOptions {
                    image: self.image.clone(),
                    env: self.env.clone(),
                    env_file: self.env_file.clone(),
                    workdir: self.workdir.clone(),
                    user: self.user.clone(),
                    entrypoint: self.entrypoint.clone(),
                    volumes: self.volume.clone(),
                    tmpfs: self.tmpfs.clone(),
                    read_only: self.read_only,
                }
            }

            pub fn options(&self) -> host_setup::error::Result<spec::Options> {
                Ok(spec::Options {
                    address: self.address.clone(),
                    peer: self.peer.clone(),
                    iface: self.iface.clone(),
                    cpu: self.cpu.clone(),
                    memory: self.memory.clone(),
                    pids: self.pids.clone(),
                    hostname: self.hostname.clone(),
                    layers: self.layer.clone(),
                    command: self.command.clone(),
                    privileged: self.privileged,
                    seccomp: self.seccomp.clone(),
                    userns: match (self.userns, self.no_userns) {
                        (true, false) => Some(true),
                        (false, true) => Some(false),
                        (false, false) => None,
                        (true, true) => return Err(host_setup::usage!("--userns and --no-userns exclude each other")),
                    },
                    net: self.net.clone(),
                    publish: self.publish.clone(),
                    disk: self.disk.clone(),
                    log_max_size: self.log_max_size.clone(),
                    log_max_files: self.log_max_files.clone(),
                    pid1: match (self.exec_as_pid1, self.pgroup) {
                        (true, _) => spec::Pid1::Exec,
                        (false, true) => spec::Pid1::SuperviseGroup,
                        (false, false) => spec::Pid1::Supervise,
                    },
                })
            }
        }
    };
}

container_cmd!(
    UpCmd,
    "up",
    "Set a container up and start it in the background (init waits as PID 1, or runs the command after --); returns once it runs."
);
container_cmd!(
    RunCmd,
    "run",
    "Set a container up, run the command after -- in the foreground (a shell by default), and remove everything when it ends; exits with its status."
);

/// Runs `up`; `shorthand` is the word `host-setup NAME` was given as (and whether options
/// followed it), `root` fails unless host-setup runs as root.
pub fn up(
    paths: &Paths,
    parent: &str,
    c: UpCmd,
    shorthand: Option<(String, bool)>,
    root: &dyn Fn() -> Result<()>,
) -> Result<i32> {
    if let Some((word, with_options)) = shorthand {
        // A bad name says so; a reserved word is taken for a command.
        if !spec::RESERVED.contains(&word.as_str()) {
            spec::validate_name(&word)?;
        }
        check_shorthand(&word, with_options, paths)?;
    }
    let spec = spec::runopts::build(&c.name, &c.options()?, &c.run_options(), paths, false)?;
    root()?;
    commands::up(paths, parent, &spec, c.init.clone(), c.explain, Mode::Background)
}

/// Runs `run`: `up` in the foreground, removed when its command ends.
pub fn run(paths: &Paths, parent: &str, c: RunCmd, root: &dyn Fn() -> Result<()>) -> Result<i32> {
    let spec = spec::runopts::build(&c.name, &c.options()?, &c.run_options(), paths, true)?;
    root()?;
    commands::up(paths, parent, &spec, c.init.clone(), c.explain, Mode::Foreground)
}
