use super::*;
use crate::spec::Options;

fn spec(name: &str, f: impl FnOnce(&mut Options)) -> Spec {
    let mut o = Options { net: Some("none".into()), ..Options::default() };
    f(&mut o);
    Spec::new(name, &o).unwrap()
}

fn json(s: &Spec, extra: &Extra) -> serde_json::Value {
    let text = to_json(&config(s, extra, Path::new("rootfs")).unwrap()).unwrap();
    serde_json::from_str(&text).unwrap()
}

#[test]
fn a_contained_container_says_what_init_does() {
    let s = spec("green", |o| o.command = vec!["sleep".into(), "9".into()]);
    let ids = IdMap { uid: 1_000_000_000, gid: 1_000_065_536, count: 65536 };
    let c = json(&s, &Extra { ids: Some(ids), v1: true, ..Extra::default() });
    assert_eq!(c["ociVersion"], OCI_VERSION);
    assert_eq!(c["root"]["path"], "rootfs");
    assert_eq!(c["hostname"], "GREEN");
    assert_eq!(c["process"]["args"], serde_json::json!(["sleep", "9"]));
    assert_eq!(c["process"]["env"][0], format!("PATH={}", crate::contract::CONTAINER_PATH));
    assert_eq!(c["process"]["noNewPrivileges"], true);
    let bounding = c["process"]["capabilities"]["bounding"].as_array().unwrap();
    assert_eq!(bounding.len(), init::caps::DEFAULT.len());
    assert_eq!(bounding[0], "CAP_AUDIT_WRITE", "sorted");
    assert_eq!(c["process"]["capabilities"]["inheritable"], serde_json::json!([]));
    let l = &c["linux"];
    assert_eq!(l["uidMappings"], serde_json::json!([{"containerID": 0, "hostID": 1_000_000_000u32, "size": 65536}]));
    assert_eq!(l["gidMappings"][0]["hostID"], 1_000_065_536u32);
    let ns: Vec<&str> = l["namespaces"].as_array().unwrap().iter().map(|n| n["type"].as_str().unwrap()).collect();
    assert_eq!(ns, ["pid", "ipc", "uts", "mount", "network", "cgroup", "user"]);
    assert!(l["namespaces"].as_array().unwrap().iter().all(|n| n["path"].is_null()), "all new");
    let r = &l["resources"];
    assert_eq!((r["cpu"]["quota"].as_i64(), r["cpu"]["period"].as_u64()), (Some(40_000), Some(100_000)));
    assert_eq!(r["memory"]["limit"], r["memory"]["swap"], "swap off");
    assert_eq!(r["memory"]["swappiness"], 0);
    assert_eq!(r["pids"]["limit"], 512);
    assert_eq!(r["devices"][0], serde_json::json!({"allow": false, "access": "rwm"}), "deny all first");
    assert_eq!(r["devices"].as_array().unwrap().len(), 1 + devices::ALLOWED.len());
    assert_eq!(l["maskedPaths"][1], "/proc/kcore");
    let dests: Vec<&str> = c["mounts"].as_array().unwrap().iter().map(|m| m["destination"].as_str().unwrap()).collect();
    assert_eq!(dests, ["/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys"]);
    assert_eq!(c["mounts"][2]["options"][2], "newinstance");
    assert_eq!(l["seccomp"]["defaultAction"], "SCMP_ACT_ERRNO");
}

#[test]
fn a_privileged_container_has_everything_and_no_command_is_the_shell() {
    let s = spec("red", |o| o.privileged = true);
    let c = json(&s, &Extra::default());
    assert_eq!(c["process"]["args"], serde_json::json!([NO_COMMAND]));
    assert_eq!(c["process"]["noNewPrivileges"], false);
    assert_eq!(c["process"]["capabilities"]["bounding"].as_array().unwrap().len(), init::caps::NAMES.len());
    let l = &c["linux"];
    assert!(l["seccomp"].is_null() && l["uidMappings"].is_null(), "{l}");
    assert_eq!((&l["maskedPaths"], &l["readonlyPaths"]), (&serde_json::json!([]), &serde_json::json!([])));
    assert!(l["resources"]["pids"].is_null() && l["resources"]["memory"]["swappiness"].is_null());
    assert_eq!(l["resources"]["devices"], serde_json::json!([{"allow": true, "access": "rwm"}]));
    assert_eq!(c["mounts"].as_array().unwrap().len(), 1, "init mounts only /proc");
    let over = Extra { command: vec!["id".into()], ..Extra::default() };
    assert_eq!(json(&s, &over)["process"]["args"], serde_json::json!(["id"]), "-- CMD wins");
}

#[test]
fn docker_default_profile_in_oci_form() {
    let p = seccomp::default_profile(seccomp::Arch::X86_64);
    let v = serde_json::to_value(seccomp_of(&p).unwrap()).unwrap();
    assert_eq!(v["architectures"], serde_json::json!(["SCMP_ARCH_X86_64"]));
    assert!(v["defaultErrnoRet"].is_null(), "EPERM is the default's errno");
    let calls = v["syscalls"].as_array().unwrap();
    let allowed: Vec<&str> = calls[0]["names"].as_array().unwrap().iter().map(|n| n.as_str().unwrap()).collect();
    assert!(allowed.contains(&"read") && allowed.contains(&"execve"));
    for denied in seccomp::DENIED.iter().chain(&["clone", "clone3", "socket"]) {
        assert!(!allowed.contains(denied), "{denied} is not allowed unconditionally");
    }
    let one = |name: &str| calls.iter().filter(|c| c["names"] == serde_json::json!([name])).collect::<Vec<_>>();
    assert_eq!(one("clone3")[0]["errnoRet"], libc::ENOSYS);
    let clone = &one("clone")[0]["args"][0];
    assert_eq!(clone["op"], "SCMP_CMP_MASKED_EQ");
    assert_eq!((clone["value"].as_u64(), clone["valueTwo"].as_u64()), (Some(0x7e02_0000), Some(0)));
    assert_eq!(one("socket").len(), 3);
    assert_eq!(one("personality").len(), 5);
}
