//! `hsrun pause ID` / `hsrun resume ID`: the cgroup freezer, as runc does it.
//!
//! v1: `echo FROZEN > freezer.state` in the freezer hierarchy; the kernel answers
//! FREEZING until every task has stopped (a task in an uninterruptible sleep holds
//! it there), so read back until FROZEN, writing FROZEN again now and then (each
//! write retries the stragglers). `THAWED` undoes it.
//! v2: `echo 1 > cgroup.freeze` (a core file of every non-root cgroup, no
//! controller to enable); done when cgroup.events says `frozen 1`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::cli::{parse, Global};
use super::state::{State, Status};
use crate::cgroup::keyed_u64;
use crate::error::{Result, SysContext};

/// How long a freeze or a thaw may take before it is given up (and undone).
const SETTLE: Duration = Duration::from_secs(10);

/// The container's freezer: which file, in which version.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Freezer {
    V1(PathBuf),
    V2(PathBuf),
}

fn freezer(dirs: &[PathBuf]) -> Option<Freezer> {
    if let Some(d) = dirs.iter().find(|d| d.join("freezer.state").exists()) {
        return Some(Freezer::V1(d.clone()));
    }
    dirs.iter().find(|d| d.join("cgroup.freeze").exists()).map(|d| Freezer::V2(d.clone()))
}

fn write(path: &Path, value: &str) -> Result<()> {
    log::debug!("echo {value} > {}", path.display());
    std::fs::write(path, value).sys(|| format!("write {value} to {}", path.display()))
}

/// Freeze (`true`) or thaw the container's cgroup and wait until the kernel says it is.
pub fn set(dirs: &[PathBuf], freeze: bool) -> Result<()> {
    let f = freezer(dirs).ok_or_else(|| {
        crate::precondition!(
            "no freezer among the container's cgroups {dirs:?}: v1 needs the freezer hierarchy \
             (mount -t cgroup -o freezer cgroup /sys/fs/cgroup/freezer), v2 a non-root cgroup"
        )
    })?;
    let (file, value, settled): (PathBuf, &str, Box<dyn Fn() -> Option<bool>>) = match &f {
        Freezer::V1(d) => {
            let state = d.join("freezer.state");
            let want = if freeze { "FROZEN" } else { "THAWED" };
            let s = state.clone();
            (state, want, Box::new(move || Some(std::fs::read_to_string(&s).ok()?.trim() == want)))
        }
        Freezer::V2(d) => {
            let events = d.join("cgroup.events");
            let want = u64::from(freeze);
            (
                d.join("cgroup.freeze"),
                if freeze { "1" } else { "0" },
                Box::new(move || Some(keyed_u64(&events, "frozen")? == want)),
            )
        }
    };
    write(&file, value)?;
    let deadline = Instant::now() + SETTLE;
    let mut nap = Duration::from_micros(200);
    let mut rewritten = Instant::now();
    loop {
        match settled() {
            Some(true) => return Ok(()),
            None => return Err(crate::failed!("read back {}: the cgroup is gone", file.display())),
            Some(false) => {}
        }
        if Instant::now() >= deadline {
            if freeze {
                // Half frozen is worse than not frozen: thaw what did stop.
                let _ = write(&file, if matches!(f, Freezer::V1(_)) { "THAWED" } else { "0" });
            }
            return Err(crate::failed!(
                "{} {}: the cgroup did not settle in {} s (a task in uninterruptible sleep?)",
                if freeze { "freeze" } else { "thaw" },
                file.display(),
                SETTLE.as_secs()
            ));
        }
        // v1: FREEZING retries only on a new write (runc writes again every ~10 ms).
        if matches!(f, Freezer::V1(_)) && freeze && rewritten.elapsed() > Duration::from_millis(10) {
            write(&file, value)?;
            rewritten = Instant::now();
        }
        std::thread::sleep(nap);
        nap = (nap * 2).min(Duration::from_millis(10));
    }
}

/// The container of `hsrun VERB ID`.
fn load(g: &Global, verb: &str, args: &[String]) -> Result<State> {
    let p = parse(verb, args, &[], None)?;
    State::load(&g.paths(), p.id(verb)?)
}

/// `hsrun pause ID`: a running (or created) container only.
pub fn pause(g: &Global, args: &[String]) -> Result<i32> {
    let st = load(g, "pause", args)?;
    match st.status(&g.paths()) {
        Status::Running | Status::Created => {}
        s => return Err(crate::failed!("pause {}: the container is {}, not running", st.id, s.word())),
    }
    set(&st.cgroup_dirs, true)?;
    Ok(0)
}

/// `hsrun resume ID`: a paused container only.
pub fn resume(g: &Global, args: &[String]) -> Result<i32> {
    let st = load(g, "resume", args)?;
    match st.status(&g.paths()) {
        Status::Paused => {}
        s => return Err(crate::failed!("resume {}: the container is {}, not paused", st.id, s.word())),
    }
    set(&st.cgroup_dirs, false)?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_freezer() {
        let d = std::env::temp_dir().join(format!("freezer-unit-{}", std::process::id()));
        let (v1, v2, mem) = (d.join("freezer"), d.join("unified"), d.join("memory"));
        for x in [&v1, &v2, &mem] {
            std::fs::create_dir_all(x).unwrap();
        }
        std::fs::write(v1.join("freezer.state"), "FREEZING\n").unwrap();
        std::fs::write(v2.join("cgroup.freeze"), "0\n").unwrap();
        std::fs::write(v2.join("cgroup.events"), "populated 1\nfrozen 1\n").unwrap();
        assert_eq!(freezer(&[mem.clone(), v1.clone()]), Some(Freezer::V1(v1.clone())));
        assert_eq!(freezer(std::slice::from_ref(&v2)), Some(Freezer::V2(v2.clone())));
        assert_eq!(freezer(std::slice::from_ref(&mem)), None);
        assert!(set(&[mem], true).unwrap_err().to_string().contains("no freezer"));
        std::fs::remove_dir_all(&d).unwrap();
    }
}
