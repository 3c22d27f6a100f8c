//! A dockerd (and a containerd) of the test's own, for tests/clients.rs and
//! tests/oci_engines.rs: sockets, state, data, pid file and config under a
//! scratch directory (engine_host.rs), no iptables, no bridge, no IP forwarding.
#![allow(dead_code)]

use std::fs;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::engine_host::Scratch;
use lab_tests::{bin, wait_for};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// Debian's docker.io CLI; a `docker` earlier in PATH may be another one.
pub const DOCKER: &str = "/usr/bin/docker";

/// Fails with the package to install when a program the test runs is missing.
pub fn need(tools: &[(&str, &str)]) {
    let path = std::env::var("PATH").unwrap_or_default();
    for (tool, pkg) in tools {
        let found = tool.starts_with('/') && Path::new(tool).exists()
            || path.split(':').any(|d| Path::new(d).join(tool).exists());
        assert!(found, "{tool} is missing: apt-get install -y {pkg} (.ci/run installs it)");
    }
}

/// A containerd and a dockerd of the test's own: sockets, state, data and pid
/// file under the scratch directory; no iptables, no bridge, no IP forwarding
/// (the host's network stays as it is); our init as `init-path`.
pub struct Docker {
    pub s: Scratch,
    containerd: Child,
    dockerd: Child,
}

pub fn spawn_logged(cmd: &mut Command, log: &Path) -> Child {
    let f = fs::File::create(log).unwrap();
    cmd.stdin(Stdio::null()).stdout(f.try_clone().unwrap()).stderr(f);
    cmd.spawn().unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"))
}

/// SIGTERM, up to 20 s to exit, then SIGKILL; the child is reaped.
pub fn end(child: &mut Child, what: &str) {
    if let Ok(None) = child.try_wait() {
        let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(20);
        while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        if let Ok(None) = child.try_wait() {
            eprintln!("{what} ({}) ignored SIGTERM for 20 s: SIGKILL", child.id());
            let _ = child.kill();
        }
    }
    let _ = child.wait();
}

impl Docker {
    pub fn start() -> Docker {
        Docker::start_with(&[])
    }

    /// With `runtimes`: (name, path) pairs for daemon.json's "runtimes" (an OCI
    /// runtime binary that `docker run --runtime NAME` uses instead of runc).
    pub fn start_with(runtimes: &[(&str, &Path)]) -> Docker {
        need(&[(DOCKER, "docker.io"), ("dockerd", "docker.io"), ("containerd", "containerd"), ("runc", "runc")]);
        let s = Scratch::new(
            "docker",
            "docker",
            &["/run/docker", "/run/docker/plugins", "/run/containerd", "/run/containerd/s"],
        );
        // "@" stands for the scratch directory.
        let containerd_conf = "version = 2\nroot = \"@/containerd/root\"\nstate = \"@/containerd/state\"\n\
             disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n[grpc]\n  address = \"@/containerd.sock\"\n\
             [ttrpc]\n  address = \"@/containerd.sock.ttrpc\"\n\
             [plugins.\"io.containerd.internal.v1.opt\"]\n  path = \"@/containerd/opt\"\n";
        fs::write(s.path("containerd.toml"), containerd_conf.replace('@', s.tmp.0.to_str().unwrap())).unwrap();
        let daemon_json = r#"{"data-root": "@/data", "exec-root": "@/exec", "pidfile": "@/docker.pid",
  "hosts": ["unix://@/docker.sock"], "containerd": "@/containerd.sock", "deprecated-key-path": "@/key.json",
  "iptables": false, "ip6tables": false, "ip-forward": false, "ip-masq": false, "bridge": "none",
  "default-ulimits": {"nofile": {"Name": "nofile", "Hard": 20000, "Soft": 20000}}, "init-path": "INIT"}"#;
        let mut daemon_json =
            daemon_json.replace('@', s.tmp.0.to_str().unwrap()).replace("INIT", bin("init").to_str().unwrap());
        if !runtimes.is_empty() {
            let rts: serde_json::Map<String, serde_json::Value> =
                runtimes.iter().map(|(name, path)| (name.to_string(), serde_json::json!({ "path": path }))).collect();
            daemon_json.pop(); // the closing brace
            daemon_json.push_str(&format!(", \"runtimes\": {}}}", serde_json::Value::Object(rts)));
        }
        fs::write(s.path("daemon.json"), daemon_json).unwrap();

        let containerd = spawn_logged(
            Command::new("containerd").args(["--config", &s.s("containerd.toml")]),
            &s.path("containerd.log"),
        );
        let dockerd =
            spawn_logged(Command::new("dockerd").args(["--config-file", &s.s("daemon.json")]), &s.path("dockerd.log"));
        let mut d = Docker { s, containerd, dockerd };
        let log = d.s.path("dockerd.log");
        wait_for("dockerd to answer on its socket", || {
            if let Ok(Some(st)) = d.dockerd.try_wait() {
                panic!("dockerd exited ({st}) before it answered:\n{}", fs::read_to_string(&log).unwrap_or_default());
            }
            d.cli(&["version"]).stdin(Stdio::null()).output().is_ok_and(|o| o.status.success()).then_some(())
        });
        let pidfile = fs::read_to_string(d.s.path("docker.pid")).unwrap_or_default();
        assert_eq!(pidfile.trim(), d.dockerd.id().to_string(), "dockerd's pid file is not our dockerd's");
        d
    }

    pub fn cli(&self, args: &[&str]) -> Command {
        let mut c = Command::new(DOCKER);
        c.env("DOCKER_HOST", format!("unix://{}", self.s.s("docker.sock")))
            .env("DOCKER_CONFIG", self.s.path("cli"))
            .args(args);
        c
    }

    /// Removes every container, then ends dockerd and containerd.
    pub fn stop(&mut self) {
        if let Ok(None) = self.dockerd.try_wait() {
            let ids = self.cli(&["ps", "--all", "--quiet"]).stdin(Stdio::null()).output();
            let ids = ids.map(|o| lab_tests::stdout(&o)).unwrap_or_default();
            for id in ids.split_whitespace() {
                let _ = self.cli(&["rm", "--force", id]).stdin(Stdio::null()).output();
            }
        }
        end(&mut self.dockerd, "dockerd");
        end(&mut self.containerd, "containerd");
    }
}

impl Drop for Docker {
    fn drop(&mut self) {
        self.stop();
    }
}
