//! The container's transient unit, through systemd's Manager API as runc's
//! systemd driver does it: StartTransientUnit("hsrun-ID.scope", "replace",
//! [PIDs, Delegate, Slice, Description, the limits systemd knows], []), then the
//! job's JobRemoved signal. The limits go to systemd too, not only to the cgroup
//! files: systemd rewrites a unit's files from its own properties whenever it
//! realizes the cgroup again (a daemon-reload), and keeps the controllers they
//! need enabled in the slices above. StopUnit on delete.

use std::time::Duration;

use super::bus::Bus;
use super::message::Message;
use super::unit_path::Unit;
use super::wire::Value;
use crate::error::Result;
use crate::spec::Resources;

const PATH: &str = "/org/freedesktop/systemd1";
const MANAGER: &str = "org.freedesktop.systemd1.Manager";
/// The job waits for systemd's event loop; under qemu TCG that can be seconds.
const JOB_TIMEOUT: Duration = Duration::from_secs(60);

fn prop(name: &str, v: Value) -> Value {
    Value::Struct(vec![Value::str(name), Value::Variant(Box::new(v))])
}

/// "0-2,7" -> systemd's CPU (or NUMA node) mask: byte i bit j is number 8i+j.
pub fn cpu_mask(list: &str) -> Option<Vec<u8>> {
    let mut mask = vec![];
    for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        let (a, b): (usize, usize) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
        if a > b || b >= 8192 {
            return None;
        }
        for n in a..=b {
            if mask.len() <= n / 8 {
                mask.resize(n / 8 + 1, 0);
            }
            mask[n / 8] |= 1 << (n % 8);
        }
    }
    Some(mask)
}

/// The resource properties systemd has for what `r` asks (cgroup v2 names;
/// -1 and 0 pids are "infinity", u64::MAX on the wire). The rest is cgroup files only.
pub fn resource_props(r: &Resources) -> Vec<Value> {
    let inf = |v: i64| if v < 0 { u64::MAX } else { v as u64 };
    let mut out = vec![];
    if let Some(m) = r.memory {
        out.push(prop("MemoryMax", Value::U64(inf(m))));
    }
    if let (Some(s), Some(m)) = (r.memory_swap, r.memory) {
        let swap = if s < 0 || m < 0 { u64::MAX } else { (s - m).max(0) as u64 };
        out.push(prop("MemorySwapMax", Value::U64(swap)));
    }
    if let Some(l) = r.memory_reservation {
        out.push(prop("MemoryLow", Value::U64(inf(l))));
    }
    if let Some(s) = r.cpu_shares {
        // runc's shares (2-262144) -> weight (1-10000), as cgroup/explicit.rs writes it.
        out.push(prop("CPUWeight", Value::U64(1 + (s.clamp(2, 262_144) - 2) * 9999 / 262_142)));
    }
    if let Some(q) = r.cpu_quota.filter(|q| *q > 0) {
        let period = r.cpu_period.unwrap_or(100_000).max(1);
        // systemd keeps it as a whole percent of a CPU: round up to 10 ms per second
        // (runc's), the exact quota is cpu.max's, written after.
        let per_sec = (q as u64 * 1_000_000 / period).div_ceil(10_000) * 10_000;
        out.push(prop("CPUQuotaPerSecUSec", Value::U64(per_sec)));
        out.push(prop("CPUQuotaPeriodUSec", Value::U64(period)));
    }
    if let Some(p) = r.pids {
        out.push(prop("TasksMax", Value::U64(if p > 0 { p as u64 } else { u64::MAX })));
    }
    let mask = |v: Vec<u8>| Value::Array("y".into(), v.into_iter().map(Value::Byte).collect());
    if let Some(m) = r.cpus.as_deref().and_then(cpu_mask) {
        out.push(prop("AllowedCPUs", mask(m)));
    }
    if let Some(m) = r.mems.as_deref().and_then(cpu_mask) {
        out.push(prop("AllowedMemoryNodes", mask(m)));
    }
    out
}

/// All the properties of the unit: a scope gets `pid` and is delegated (its
/// subtree is ours); a slice holds no pid (the caller writes cgroup.procs).
pub fn properties(u: &Unit, id: &str, pid: u32, r: &Resources) -> Vec<Value> {
    let mut out = vec![prop("Description", Value::str(format!("hsrun container {id}")))];
    if u.is_slice() {
        out.push(prop("Wants", Value::Array("s".into(), vec![Value::str(&u.slice)])));
    } else {
        out.push(prop("Slice", Value::str(&u.slice)));
        out.push(prop("PIDs", Value::Array("u".into(), vec![Value::U32(pid)])));
        out.push(prop("Delegate", Value::Bool(true)));
        // As runc: no implicit ordering against shutdown.target and friends.
        out.push(prop("DefaultDependencies", Value::Bool(false)));
    }
    out.push(prop("MemoryAccounting", Value::Bool(true)));
    out.push(prop("CPUAccounting", Value::Bool(true)));
    out.push(prop("TasksAccounting", Value::Bool(true)));
    out.extend(resource_props(r));
    out
}

/// Start `unit` with `props` and wait until its job is done.
pub fn start(u: &Unit, props: Vec<Value>) -> Result<()> {
    let what = format!("StartTransientUnit {}", u.name);
    let mut bus = Bus::connect()?;
    let body = vec![
        Value::str(&u.name),
        Value::str("replace"),
        Value::Array("(sv)".into(), props),
        Value::Array("(sa(sv))".into(), vec![]),
    ];
    let reply = bus.call(Message::call(PATH, MANAGER, "StartTransientUnit", body), &what)?;
    wait_job(&mut bus, &reply, &what)
}

/// JobRemoved(id, job, unit, result) of the job `reply` names: "done" is success.
fn wait_job(bus: &mut Bus, reply: &Message, what: &str) -> Result<()> {
    let job = reply.body.first().and_then(Value::as_str).unwrap_or_default().to_string();
    let m = bus.wait_signal("JobRemoved", JOB_TIMEOUT, |m| m.body.get(1).and_then(Value::as_str) == Some(&job))?;
    match m.body.get(3).and_then(Value::as_str) {
        Some("done") => Ok(()),
        r => Err(crate::failed!("systemd: {what}: job {job} ended {:?} (journalctl -u for why)", r.unwrap_or("?"))),
    }
}

/// StopUnit and wait for it; a unit that is not there (a scope goes by itself
/// once its last process ends) is fine. Then its failed state is reset, so
/// nothing of it stays loaded.
pub fn stop(name: &str) -> Result<()> {
    let what = format!("StopUnit {name}");
    let mut bus = Bus::connect()?;
    let call = Message::call(PATH, MANAGER, "StopUnit", vec![Value::str(name), Value::str("replace")]);
    match bus.call(call, &what) {
        Ok(reply) => wait_job(&mut bus, &reply, &what)?,
        Err(e) if e.to_string().contains("NoSuchUnit") => log::debug!("{name}: already gone"),
        Err(e) => return Err(e),
    }
    let reset = Message::call(PATH, MANAGER, "ResetFailedUnit", vec![Value::str(name)]);
    match bus.call(reset, &format!("ResetFailedUnit {name}")) {
        Err(e) if !e.to_string().contains("NoSuchUnit") => Err(e),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(props: &[Value]) -> Vec<String> {
        props
            .iter()
            .map(|p| match p {
                Value::Struct(f) => format!("{}={}", f[0].as_str().unwrap(), f[1].sig()),
                _ => panic!("{p:?}"),
            })
            .collect()
    }

    #[test]
    fn cpu_masks() {
        assert_eq!(cpu_mask("0-2,7").unwrap(), [0b1000_0111]);
        assert_eq!(cpu_mask("9").unwrap(), [0, 0b10]);
        assert_eq!(cpu_mask("").unwrap(), Vec::<u8>::new());
        assert_eq!(cpu_mask("3-1"), None);
        assert_eq!(cpu_mask("x"), None);
    }

    #[test]
    fn resources_as_systemd_properties() {
        let r = Resources {
            memory: Some(64 << 20),
            memory_swap: Some(64 << 20),
            cpu_shares: Some(1024),
            cpu_quota: Some(25_000),
            cpu_period: Some(50_000),
            pids: Some(-1),
            cpus: Some("0".into()),
            ..Default::default()
        };
        let p = resource_props(&r);
        let find = |n: &str| {
            p.iter().find_map(|v| match v {
                Value::Struct(f) if f[0].as_str() == Some(n) => Some(f[1].clone()),
                _ => None,
            })
        };
        let u64_of = |n: &str| match find(n) {
            Some(Value::Variant(v)) => match *v {
                Value::U64(x) => x,
                other => panic!("{n}: {other:?}"),
            },
            other => panic!("{n}: {other:?}"),
        };
        assert_eq!(u64_of("MemoryMax"), 64 << 20);
        assert_eq!(u64_of("MemorySwapMax"), 0, "memory+swap = memory: no swap");
        assert_eq!(u64_of("CPUWeight"), 39, "runc's conversion of 1024 shares");
        assert_eq!(u64_of("CPUQuotaPerSecUSec"), 500_000, "25 ms per 50 ms = half a CPU");
        assert_eq!(u64_of("TasksMax"), u64::MAX);
        assert_eq!(find("AllowedCPUs").unwrap().sig(), "v");
        assert!(find("MemoryLow").is_none());
    }

    #[test]
    fn a_scope_gets_the_pid_and_is_delegated() {
        let scope = super::super::unit_path::parse(Some("system.slice:hsrun:c1"), "c1").unwrap();
        let n = names(&properties(&scope, "c1", 42, &Resources::default()));
        assert_eq!(
            n[..5],
            ["Description=v", "Slice=v", "PIDs=v", "Delegate=v", "DefaultDependencies=v"].map(String::from)
        );
        let slice = super::super::unit_path::parse(Some(":x:a-b.slice"), "c1").unwrap();
        let n = names(&properties(&slice, "c1", 42, &Resources::default()));
        assert!(!n.iter().any(|p| p.starts_with("PIDs") || p.starts_with("Delegate")), "{n:?}");
    }
}
