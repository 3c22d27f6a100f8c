//! docs/networking.md's web example end to end: busybox's httpd in a `--layer`, published as
//! `-p 8080:80` on the default network, in the stand-in host of network_common.rs
//! (lab_tests::standin), never in the real host's network.

use std::process::{Command, Output};
use std::time::Duration;

use lab_tests::standin::HOST_ADDR;
use lab_tests::{stdout, text};

mod network_common;
use network_common::{lock, World, WAIT};

/// docs/networking.md's web server: a layer with busybox (busybox-static) and `httpd`, a script
/// running busybox's httpd on port 80 with /www, and a page there. Removed on drop.
struct WebLayer(std::path::PathBuf);

const PAGE: &str = "hello from a container\n";

impl WebLayer {
    fn new(w: &World) -> WebLayer {
        let dir = w.lab.state_dir.with_extension("web");
        std::fs::create_dir_all(dir.join("bin")).unwrap();
        std::fs::create_dir_all(dir.join("www")).unwrap();
        std::fs::copy("/bin/busybox", dir.join("bin/busybox"))
            .expect("busybox-static is installed (apt-get install busybox-static)");
        std::fs::write(dir.join("bin/httpd"), "#!/bin/sh\nexec busybox httpd -f -p 80 -h /www\n").unwrap();
        let exec = std::os::unix::fs::PermissionsExt::from_mode(0o755);
        std::fs::set_permissions(dir.join("bin/httpd"), exec).unwrap();
        std::fs::write(dir.join("www/index.html"), PAGE).unwrap();
        WebLayer(dir)
    }
    fn arg(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for WebLayer {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `PROGRAM ARGS` run in netns NS (`nsenter --net=`, as a user would on that host).
fn in_netns(ns: &str, args: &[&str]) -> Output {
    Command::new("nsenter").arg(format!("--net=/run/netns/{ns}")).args(args).output().unwrap()
}

/// docs/networking.md's web example, `host-setup web --net hs0 -p 8080:80 -- httpd` with the
/// httpd layer (and `extra` options): it answers on port 80 inside, on 8080 from the
/// outside, from the host's own address and from its 127.0.0.1; `down` leaves nothing.
fn web_example(extra: &[&str]) {
    let _serial = lock();
    let w = World::new();
    let (forwarding, localnet) = (w.forwarding(), w.conf("route_localnet"));
    let layer = WebLayer::new(&w);
    let web = w.name("web");
    let mut args = vec![web.as_str(), "--net", "hs0", "-p", "8080:80", "--layer", layer.arg()];
    args.extend_from_slice(extra);
    let explain = [&args[..], &["--explain", "--", "httpd"]].concat();
    args.extend(["--", "httpd"]);

    let explain: Vec<String> = w.ok_stdout(&explain).lines().map(String::from).collect();
    let has =
        |want: &str| assert!(explain.iter().any(|l| l == want), "{want:?} not in --explain:\n{}", explain.join("\n"));
    has(&format!("ip netns exec {} sysctl -w net.ipv4.ip_unprivileged_port_start=0", web.to_uppercase()));
    has("sysctl -w net.ipv4.conf.hs0.route_localnet=1    # was 0");
    has(r#"nft 'add rule ip host-setup-hs0 postrouting ip saddr 127.0.0.0/8 oifname "hs0" masquerade'"#);

    w.ok(&args);
    let (_, addr) = w.members("hs0")[0].clone();
    // Inside, on port 80 (a port below 1024, bound by the container's root): httpd is
    // up once it answers; a failed bind ends the container and every try with it.
    // (No `wget -T`: busybox-static 1.35's wget segfaults with it, here and on the host.)
    let inside = || w.run(&["exec", &web, "--", "busybox", "wget", "-qO-", "http://127.0.0.1/"]);
    let deadline = std::time::Instant::now() + WAIT;
    let mut o = inside();
    while stdout(&o) != PAGE && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        o = inside();
    }
    assert_eq!(stdout(&o), PAGE, "port 80 inside {web}: {}\n{}", text(&o), w.ok_stdout(&["status", &web]));

    let wget = |ns: &str, url: &str| in_netns(ns, &["timeout", "10", "busybox", "wget", "-qO-", url]);
    let host_port = format!("http://{HOST_ADDR}:8080/");
    for (what, o) in [
        ("from the outside", wget(&w.out, &host_port)),
        ("from the host's own address", wget(&w.host, &host_port)),
        ("from the host's 127.0.0.1", wget(&w.host, "http://127.0.0.1:8080/")),
        ("curl localhost:8080 on the host", in_netns(&w.host, &["curl", "-sS", "--max-time", "10", "localhost:8080"])),
    ] {
        assert_eq!(stdout(&o), PAGE, "{what}: {}", text(&o));
    }
    let on = |key: &str| w.conf(key).into_iter().filter(|(_, v)| v == "1").map(|(i, _)| i).collect::<Vec<_>>();
    assert_eq!(on("route_localnet"), ["hs0"], "route_localnet on the bridge only");
    let journal = std::fs::read_to_string(w.lab.state_dir.join("networks/hs0/journal")).unwrap();
    assert!(
        journal.lines().any(|l| l.contains("\"net/ipv4/conf/hs0/route_localnet\"") && l.contains("\"old\":\"0\"")),
        "the old value is journalled before the write, like forwarding's:\n{journal}"
    );

    let st = w.ok_stdout(&["status", &web]);
    assert!(st.contains("sysctls   net.ipv4.ip_unprivileged_port_start=0, net.ipv4.ping_group_range="), "{st}");
    assert!(st.contains(&format!("{addr}/16 on eth0, ports 8080->80/tcp")), "{st}");
    let json: serde_json::Value = serde_json::from_str(&w.ok_stdout(&["status", "--json", &web])).unwrap();
    assert_eq!(json["containers"][0]["sysctls"]["net.ipv4.ip_unprivileged_port_start"], "0", "{json}");

    w.ok(&["down", &web]);
    assert!(stdout(&wget(&w.out, &host_port)).is_empty(), "the port is gone with down");
    assert_eq!(w.leftovers(), Vec::<String>::new());
    assert_eq!((w.forwarding(), w.conf("route_localnet")), (forwarding, localnet), "every switch as it was");
}

#[test]
fn web_example_answers_inside_outside_and_on_localhost_with_a_user_namespace() {
    web_example(&[]);
}

#[test]
fn web_example_answers_inside_outside_and_on_localhost_without_a_user_namespace() {
    web_example(&["--no-userns"]);
}
