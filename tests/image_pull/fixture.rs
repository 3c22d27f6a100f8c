//! The parts image_pull.rs runs against: OCI layouts built here (tar + sha256sum),
//! a real registry (Debian's docker-registry, distribution 2.8) started with a
//! config written here, skopeo pushing to it, and a TLS CA made with openssl.

use std::fs;
use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use lab_tests::TempDir;

pub fn sh(cmd: &str) -> String {
    let o = Command::new("sh").arg("-c").arg(cmd).output().expect("sh");
    assert!(o.status.success(), "{cmd}: {}", lab_tests::text(&o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

pub fn sha256_file(p: &Path) -> String {
    let out = sh(&format!("sha256sum '{}'", p.display()));
    format!("sha256:{}", out.split_whitespace().next().unwrap())
}

/// An OCI image layout directory (blobs/sha256/, index.json, oci-layout).
pub struct Layout {
    pub dir: PathBuf,
    refs: Vec<serde_json::Value>,
}

#[derive(Clone, Debug)]
pub struct Desc {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
}

impl Desc {
    fn json(&self) -> serde_json::Value {
        serde_json::json!({"mediaType": self.media_type, "digest": self.digest, "size": self.size})
    }
}

impl Layout {
    pub fn new(dir: PathBuf) -> Layout {
        fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
        fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
        Layout { dir, refs: vec![] }
    }

    /// Moves `file` into blobs/ under its digest.
    fn add_file(&self, file: &Path, media_type: &str) -> Desc {
        let digest = sha256_file(file);
        let size = fs::metadata(file).unwrap().len();
        fs::rename(file, self.dir.join("blobs/sha256").join(&digest[7..])).unwrap();
        Desc { media_type: media_type.into(), digest, size }
    }

    pub fn add_bytes(&self, bytes: &[u8], media_type: &str) -> Desc {
        let tmp = self.dir.join("tmp-blob");
        fs::write(&tmp, bytes).unwrap();
        self.add_file(&tmp, media_type)
    }

    /// A layer of the tree `src`: gzip'd (or plain tar); returns it and its diff ID.
    pub fn layer(&self, src: &Path, gzip: bool) -> (Desc, String) {
        let tar = self.dir.join("tmp-layer.tar");
        sh(&format!("tar --numeric-owner -C '{}' -cf '{}' .", src.display(), tar.display()));
        let diff_id = sha256_file(&tar);
        if !gzip {
            return (self.add_file(&tar, "application/vnd.oci.image.layer.v1.tar"), diff_id);
        }
        sh(&format!("gzip -n -1 '{}'", tar.display()));
        (self.add_file(&self.dir.join("tmp-layer.tar.gz"), "application/vnd.oci.image.layer.v1.tar+gzip"), diff_id)
    }

    /// An image (config + manifest) of these layers, for linux/`arch`.
    pub fn image(&self, arch: &str, layers: &[(Desc, String)]) -> Desc {
        let config = serde_json::json!({
            "architecture": arch, "os": "linux",
            "config": {"Cmd": ["/bin/busybox", "sh"]},
            "rootfs": {"type": "layers", "diff_ids": layers.iter().map(|l| l.1.clone()).collect::<Vec<_>>()},
        });
        let c = self.add_bytes(config.to_string().as_bytes(), "application/vnd.oci.image.config.v1+json");
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": c.json(),
            "layers": layers.iter().map(|l| l.0.json()).collect::<Vec<_>>(),
        });
        self.add_bytes(manifest.to_string().as_bytes(), "application/vnd.oci.image.manifest.v1+json")
    }

    /// An image index over (manifest, arch) pairs.
    pub fn index(&self, manifests: &[(Desc, &str)]) -> Desc {
        let ms: Vec<serde_json::Value> = manifests
            .iter()
            .map(|(d, arch)| {
                let mut j = d.json();
                j["platform"] = serde_json::json!({"os": "linux", "architecture": arch});
                j
            })
            .collect();
        let index = serde_json::json!({
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": ms,
        });
        self.add_bytes(index.to_string().as_bytes(), "application/vnd.oci.image.index.v1+json")
    }

    /// Names `d` `tag` in index.json (what `oci:DIR:tag` finds).
    pub fn tag(&mut self, d: &Desc, tag: &str) {
        let mut j = d.json();
        j["annotations"] = serde_json::json!({"org.opencontainers.image.ref.name": tag});
        self.refs.push(j);
        let index = serde_json::json!({"schemaVersion": 2, "manifests": self.refs});
        fs::write(self.dir.join("index.json"), index.to_string()).unwrap();
    }
}

/// busybox-static as /bin/busybox, a symlink, a file and a hard link.
pub fn base_tree(dir: &Path) {
    fs::create_dir_all(dir.join("bin")).unwrap();
    fs::create_dir_all(dir.join("etc")).unwrap();
    fs::copy("/bin/busybox", dir.join("bin/busybox")).unwrap();
    std::os::unix::fs::symlink("busybox", dir.join("bin/sh")).unwrap();
    fs::write(dir.join("etc/hello.txt"), "hello from the image\n").unwrap();
    fs::hard_link(dir.join("etc/hello.txt"), dir.join("etc/hello-link.txt")).unwrap();
}

/// A registry's TLS material: a CA and a certificate for 127.0.0.1 it signed
/// (rustls refuses a self-signed CA certificate used as the server's own).
pub struct Tls {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

pub fn make_tls(dir: &Path) -> Tls {
    let d = dir.display();
    sh(&format!(
        "cd '{d}' && openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -subj /CN=test-ca 2>/dev/null && \
         openssl req -newkey rsa:2048 -nodes -keyout srv.key -out srv.csr -subj /CN=127.0.0.1 2>/dev/null && \
         printf 'subjectAltName=IP:127.0.0.1\\nbasicConstraints=CA:FALSE\\n' > ext && \
         openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out srv.pem -days 2 -extfile ext 2>/dev/null"
    ));
    Tls { ca: dir.join("ca.pem"), cert: dir.join("srv.pem"), key: dir.join("srv.key") }
}

/// docker-registry on 127.0.0.1:port, storage and log in `dir`; stopped (by
/// the pid of the child started here) on drop.
pub struct Registry {
    child: Child,
    pub port: u16,
    pub log: PathBuf,
}

impl Registry {
    /// `auth`: extra YAML for the `auth:` section; `tls`: serve HTTPS.
    pub fn start(dir: &TempDir, tls: Option<&Tls>, auth: Option<&str>) -> Registry {
        let port = free_port();
        let mut cfg = format!(
            "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: false\n\
             storage:\n  filesystem:\n    rootdirectory: {}\n  maintenance:\n    uploadpurging:\n      enabled: false\n\
             http:\n  addr: 127.0.0.1:{port}\n",
            dir.s("storage")
        );
        if let Some(t) = tls {
            cfg += &format!("  tls:\n    certificate: {}\n    key: {}\n", t.cert.display(), t.key.display());
        }
        if let Some(a) = auth {
            cfg += &format!("auth:\n{a}");
        }
        fs::write(dir.path("config.yml"), cfg).unwrap();
        let log = dir.path("registry.log");
        let child = Command::new("docker-registry")
            .args(["serve", &dir.s("config.yml")])
            .stdin(Stdio::null())
            .stdout(fs::File::create(dir.path("registry.out")).unwrap())
            .stderr(fs::File::create(&log).unwrap())
            .spawn()
            .expect("start docker-registry");
        let r = Registry { child, port, log };
        let t0 = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(t0.elapsed() < Duration::from_secs(20), "registry did not listen: {}", r.log_text());
            std::thread::sleep(Duration::from_millis(50));
        }
        r
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn log_text(&self) -> String {
        let mut s = String::new();
        let _ = fs::File::open(&self.log).and_then(|mut f| f.read_to_string(&mut s));
        s
    }

    /// How many `GET /v2/REPO/blobs/DIGEST` host-setup sent, as the registry's
    /// log lines ("response completed ... http.request.uri=...") show them.
    /// The registry writes a request's line after the response is sent: waits
    /// until the log has not grown for 300 ms first.
    pub fn blob_gets(&self, repo: &str, digest: &str) -> usize {
        let mut last = (u64::MAX, Instant::now());
        loop {
            let len = fs::metadata(&self.log).map(|m| m.len()).unwrap_or(0);
            if len != last.0 {
                last = (len, Instant::now());
            } else if last.1.elapsed() > Duration::from_millis(300) {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let uri = format!("http.request.uri=\"/v2/{repo}/blobs/{digest}");
        self.log_text()
            .lines()
            .filter(|l| {
                l.contains("http.request.method=GET") && l.contains("useragent=host-setup/") && l.contains(&uri)
            })
            .count()
    }

    /// Every blob GET host-setup sent for `repo`.
    pub fn all_blob_gets(&self, repo: &str) -> usize {
        self.blob_gets(repo, "")
    }

    /// `skopeo copy [--all] oci:LAYOUT:tag docker://ADDR/name:tag`.
    pub fn push(&self, layout: &Path, tag: &str, dest: &str, creds: Option<&str>) {
        let mut c = Command::new("skopeo");
        c.args(["copy", "--all", "--quiet", "--dest-tls-verify=false"]);
        if let Some(cr) = creds {
            c.arg(format!("--dest-creds={cr}"));
        }
        c.arg(format!("oci:{}:{tag}", layout.display())).arg(format!("docker://{}/{dest}", self.addr()));
        let o = c.output().expect("skopeo");
        assert!(o.status.success(), "skopeo copy: {}", lab_tests::text(&o));
    }
}

impl Registry {
    /// The digest of the manifest `dest` names, as the registry has it (skopeo
    /// may rewrite a manifest as it pushes it).
    pub fn digest(&self, dest: &str, creds: Option<&str>) -> String {
        let mut c = Command::new("skopeo");
        c.args(["inspect", "--tls-verify=false", "--format", "{{.Digest}}"]);
        if let Some(cr) = creds {
            c.arg(format!("--creds={cr}"));
        }
        let o = c.arg(format!("docker://{}/{dest}", self.addr())).output().expect("skopeo");
        assert!(o.status.success(), "skopeo inspect: {}", lab_tests::text(&o));
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        // Our own child, by its pid.
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
        let _ = self.child.wait();
    }
}
