//! A progress bar per layer while a pull downloads it, on stderr when stderr
//! is a terminal; nothing at all otherwise (logs and pipes stay clean).

use std::io::{IsTerminal, Read, Write};
use std::time::{Duration, Instant};

const WIDTH: usize = 30;
const EVERY: Duration = Duration::from_millis(100);

/// Counts what passes through `inner` and redraws one line for it.
pub struct Progress<R> {
    inner: R,
    label: String,
    total: u64,
    done: u64,
    shown: bool,
    last: Option<Instant>,
    ended: bool,
}

impl<R: Read> Progress<R> {
    /// `label`: e.g. the layer's short digest. Draws only on a terminal.
    pub fn new(inner: R, label: String, total: u64) -> Progress<R> {
        Progress { inner, label, total, done: 0, shown: std::io::stderr().is_terminal(), last: None, ended: false }
    }

    fn draw(&mut self, end: bool) {
        if !self.shown {
            return;
        }
        let now = Instant::now();
        if !end && self.last.is_some_and(|t| now.duration_since(t) < EVERY) {
            return;
        }
        self.last = Some(now);
        let _ =
            write!(std::io::stderr(), "\r{}{}", line(&self.label, self.done, self.total), if end { "\n" } else { "" });
    }
}

impl<R> Drop for Progress<R> {
    fn drop(&mut self) {
        // A bar that was drawn but not finished (an error): end its line.
        if self.shown && self.last.is_some() && !self.ended {
            let _ = writeln!(std::io::stderr());
        }
    }
}

impl<R: Read> Read for Progress<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.done += n as u64;
        if !self.ended {
            self.ended = n == 0 || self.done >= self.total;
            self.draw(self.ended);
        }
        Ok(n)
    }
}

/// `sha256:0a1b2c3d4e5f  [=========>          ]  12.3 MiB / 40.0 MiB`
pub fn line(label: &str, done: u64, total: u64) -> String {
    let frac = if total == 0 { 1.0 } else { (done as f64 / total as f64).min(1.0) };
    let filled = (frac * WIDTH as f64) as usize;
    let bar: String = (0..WIDTH)
        .map(|i| match i.cmp(&filled) {
            std::cmp::Ordering::Less => '=',
            std::cmp::Ordering::Equal if filled < WIDTH => '>',
            _ => ' ',
        })
        .collect();
    format!("{label}  [{bar}]  {} / {}", mib(done), mib(total))
}

fn mib(n: u64) -> String {
    format!("{:.1} MiB", n as f64 / (1 << 20) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bar() {
        assert_eq!(line("l", 0, 100), format!("l  [>{}]  0.0 MiB / 0.0 MiB", " ".repeat(WIDTH - 1)));
        assert_eq!(line("l", 100, 100), format!("l  [{}]  0.0 MiB / 0.0 MiB", "=".repeat(WIDTH)));
        let half = line("sha256:ab", 20 << 20, 40 << 20);
        assert!(half.contains(&format!("[{}>", "=".repeat(WIDTH / 2))), "{half}");
        assert!(half.ends_with("20.0 MiB / 40.0 MiB"), "{half}");
    }

    #[test]
    fn passes_bytes_through() {
        let mut out = Vec::new();
        Progress::new(&b"hello"[..], "x".into(), 5).read_to_end(&mut out).unwrap();
        assert_eq!(out, b"hello");
    }
}
