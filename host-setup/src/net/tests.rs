//! Unit tests of the names, the veth ends, the errors and their undo (no root).

use std::cell::Cell;

use super::*;

fn red() -> VethEnd {
    VethEnd::new("RED", "veth0", Ipv4Addr::new(11, 11, 11, 2), 24)
}
fn blue() -> VethEnd {
    VethEnd::new("BLUE", "veth1", Ipv4Addr::new(11, 11, 11, 3), 24)
}

#[test]
fn names_are_checked_before_anything_is_touched() {
    for bad in ["", ".", "..", "a/b", "a b", "RED\n", &"x".repeat(256)] {
        let e = check_netns_name(bad).unwrap_err();
        assert_eq!(e.exit_code(), 2, "{bad:?}");
        assert!(e.to_string().starts_with("invalid netns name"), "{e}");
    }
    check_netns_name("RED").unwrap();
    check_netns_name("NT123A.x-y_z").unwrap();
    for bad in ["", ".", "..", "a/b", "a:b", "a b", "veth-is-too-long"] {
        assert_eq!(check_ifname(bad).unwrap_err().exit_code(), 2, "{bad:?}");
    }
    check_ifname("veth0").unwrap();
    check_ifname("exactly15chars_").unwrap();
    assert!(!netns_exists("a/../b"));
}

#[test]
fn veth_ends_are_checked_and_named_in_errors() {
    assert_eq!(red().to_string(), "veth0 (netns RED)");
    let mut bad = red();
    bad.prefix_len = 33;
    let e = create_veth_pair(&bad, &blue()).unwrap_err();
    assert_eq!(e.to_string(), "invalid prefix length /33 for 11.11.11.2: at most 32");
    let e = create_veth_pair(&red(), &red()).unwrap_err();
    assert_eq!(e.to_string(), "both ends of the veth pair are veth0 (netns RED)");
    assert_eq!(e.exit_code(), 2);
}

#[test]
fn or_undo_undoes_only_on_failure_and_keeps_the_first_error() {
    let undone = Cell::new(0);
    let undo = || {
        undone.set(undone.get() + 1);
        Ok(true)
    };
    assert_eq!(or_undo(|| Ok(5), undo, "undo").unwrap(), 5);
    assert_eq!(undone.get(), 0);

    let step = || Err::<(), _>(Error::sys("set veth0 (netns RED) up", Errno::ENOMEM));
    let e = or_undo(step, undo, "undo").unwrap_err();
    assert_eq!(undone.get(), 1);
    assert_eq!(e.to_string(), "set veth0 (netns RED) up: ENOMEM: out of memory");

    let failing_undo = || Err(Error::sys("delete link veth0 (netns RED)", Errno::EBUSY));
    let e = or_undo(step, failing_undo, "delete the new veth pair again (veth0 (netns RED))").unwrap_err();
    assert_eq!(e.errno(), Some(Errno::ENOMEM));
    assert_eq!(
        e.to_string(),
        "set veth0 (netns RED) up: ENOMEM: out of memory; and then could not delete the new veth pair again \
         (veth0 (netns RED)): delete link veth0 (netns RED): EBUSY: device or resource busy"
    );
}

#[test]
fn hint_keeps_the_kernels_text() {
    let e = netlink::ack_error("create veth pair a (netns X) <-> b (netns Y)", -libc::EEXIST, Some("boom".into()));
    let e = e.hint("a name is taken");
    assert_eq!(
        e.to_string(),
        "create veth pair a (netns X) <-> b (netns Y): EEXIST: file exists; kernel says: boom; a name is taken"
    );
}

#[test]
fn netns_path_is_under_run_netns() {
    assert_eq!(netns_path("RED"), PathBuf::from("/run/netns/RED"));
}
