//! `--log FILE` and `--log-format text|json`: what went wrong, where the engine
//! looks for it. containerd shows the last `error` line of the json log:
//! `{"level":"error","msg":"...","time":"2026-12-07T09:00:00Z"}` (runc's, logrus).

use std::io::Write;
use std::path::PathBuf;

#[derive(Debug, Clone, Default)]
pub struct Log {
    pub file: Option<PathBuf>,
    pub json: bool,
}

/// Seconds since the epoch as RFC 3339 UTC (Howard Hinnant's civil-from-days).
pub fn rfc3339(secs: u64) -> String {
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem / 60 % 60, rem % 60)
}

pub fn now() -> String {
    rfc3339(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs()))
}

impl Log {
    /// One line at `level` into the log file, if there is one (best effort: a log
    /// that cannot be written must not hide the error itself, which goes to stderr).
    pub fn line(&self, level: &str, msg: &str) {
        let Some(path) = &self.file else { return };
        let text = if self.json {
            let v = serde_json::json!({ "level": level, "msg": msg, "time": now() });
            format!("{v}\n")
        } else {
            format!("time=\"{}\" level={level} msg={:?}\n", now(), msg)
        };
        if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(path) {
            let _ = f.write_all(text.as_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn times() {
        assert_eq!(super::rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::rfc3339(1_796_634_000), "2026-12-07T09:00:00Z");
        assert_eq!(super::rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    }
}
