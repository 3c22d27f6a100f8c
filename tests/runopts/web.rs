//! `--image` with `--net hs0 -p 8080:80`: the image's busybox httpd, as the
//! image's user 1000, answers from the outside. host-setup runs "as the host"
//! in a test netns (tests/network.rs's way), whose uplink leads to a second test
//! netns standing for the outside; the real host's network is never touched.

use std::process::Command;
use std::time::{Duration, Instant};

use lab_tests::{stdout, text, TempDir};

use super::{has, hs_in, lab_with_image, IMAGE};

const HOST_ADDR: &str = "192.168.232.2";
const OUT_ADDR: &str = "192.168.232.1";

fn ok(args: &[&str]) {
    let o = Command::new(args[0]).args(&args[1..]).output().unwrap();
    assert!(o.status.success(), "{args:?}: {}", text(&o));
}

/// The two test namespaces, deleted on drop, after the container and the
/// network are taken down in the stand-in host (never from the real host's netns).
struct Netns<'a>(Vec<String>, &'a lab_tests::Lab, String);

impl Drop for Netns<'_> {
    fn drop(&mut self) {
        let _ = hs_in(self.1, &self.0[0], &["down", "--timeout", "1", &self.2]);
        let _ = hs_in(self.1, &self.0[0], &["network", "rm", "hs0"]);
        for ns in &self.0 {
            let _ = Command::new("ip").args(["netns", "delete", ns]).output();
        }
    }
}

#[test]
fn an_image_serves_a_published_port_on_a_bridge_network() {
    let t = TempDir::new("runopts-web");
    let lab = lab_with_image(&t);
    let tag = lab.tag().to_string();
    let (host, out) = (format!("RH{tag}"), format!("RO{tag}"));
    let n = lab.name("w");
    let _guard = Netns(vec![host.clone(), out.clone()], &lab, n.clone());
    for ns in [&host, &out] {
        ok(&["ip", "netns", "add", ns]);
        ok(&["ip", "-n", ns, "link", "set", "lo", "up"]);
    }
    let (up, peer) = (format!("ru{tag}"), format!("ro{tag}"));
    ok(&["ip", "link", "add", &up, "netns", &host, "type", "veth", "peer", "name", &peer, "netns", &out]);
    ok(&["ip", "-n", &host, "addr", "add", &format!("{HOST_ADDR}/24"), "dev", &up]);
    ok(&["ip", "-n", &host, "link", "set", &up, "up"]);
    ok(&["ip", "-n", &out, "addr", "add", &format!("{OUT_ADDR}/24"), "dev", &peer]);
    ok(&["ip", "-n", &out, "link", "set", &peer, "up"]);
    ok(&["ip", "-n", &host, "route", "add", "default", "via", OUT_ADDR]);

    let args =
        ["up", &n, "--image", IMAGE, "--net", "hs0", "-p", "8080:80", "--", "httpd", "-f", "-p", "80", "-h", "/www"];
    let o = hs_in(&lab, &host, &args);
    assert!(o.status.success(), "{}", text(&o));
    let url = format!("http://{HOST_ADDR}:8080/");
    let get = || {
        Command::new("nsenter")
            .arg(format!("--net=/run/netns/{out}"))
            .args(["timeout", "5", "busybox", "wget", "-qO-", &url])
            .output()
            .unwrap()
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut page = stdout(&get());
    while page != "hello from an image\n" && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
        page = stdout(&get());
    }
    let st = stdout(&hs_in(&lab, &host, &["status", &n]));
    assert_eq!(page, "hello from an image\n", "from the outside:\n{st}");
    has(&st, "ports 8080->80/tcp");
    has(&st, "exposed ports 80/tcp");
    has(&st, "user      1000:1000");
    for a in [&["down", n.as_str()][..], &["network", "rm", "hs0"]] {
        let o = hs_in(&lab, &host, a);
        assert!(o.status.success(), "{a:?}: {}", text(&o));
    }
    assert_eq!(lab.leftovers(&[&n]), Vec::<String>::new());
}
