//! The store's blob rules on a scratch state dir: verified before named, a
//! refused blob leaves nothing, a leftover partial is replaced, and two puts of
//! one digest at once read the content once.

use std::io::{self, Read};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use super::digest::Digest;
use super::store::Store;
use crate::state::Paths;

struct Scratch(std::path::PathBuf);

impl Scratch {
    fn new(tag: &str) -> Scratch {
        let p = std::env::temp_dir().join(format!("hs-store-unit-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        Scratch(p)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn entries(store: &Store) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(store.dir().join("blobs/sha256"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn blobs_are_verified_before_they_are_named() {
    let s = Scratch::new("verify");
    let store = Store::open(&Paths::new(&s.0)).unwrap();
    let d = Digest::of(b"content");
    let e = store.put_blob(&d, None, &mut &b"other"[..]).unwrap_err().to_string();
    assert!(e.contains("digest mismatch") && e.contains("refused"), "{e}");
    let e = store.put_blob(&d, Some(3), &mut &b"content"[..]).unwrap_err().to_string();
    assert!(e.contains("larger than the limit of 3 bytes"), "{e}");
    let e = store.put_blob(&d, Some(99), &mut &b"content"[..]).unwrap_err().to_string();
    assert!(e.contains("7 bytes where the manifest states 99"), "{e}");
    assert!(entries(&store).is_empty(), "{:?}", entries(&store));
    // A partial left by an interrupted run is written over.
    std::fs::write(store.dir().join("blobs/sha256").join(format!(".partial-{}", d.hex())), b"garbage from before")
        .unwrap();
    let p = store.put_blob(&d, Some(7), &mut &b"content"[..]).unwrap();
    assert_eq!(std::fs::read(p).unwrap(), b"content");
    assert_eq!(entries(&store), vec![d.hex().to_string()]);
    assert!(store.has_blob(&d));
}

/// A reader that counts its reads and is slow, so two puts overlap.
struct Slow<'a> {
    data: &'a [u8],
    reads: &'a AtomicUsize,
}

impl Read for Slow<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(20));
        let n = buf.len().min(self.data.len()).min(4);
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

#[test]
fn two_puts_of_one_digest_read_it_once() {
    let s = Scratch::new("twice");
    let paths = Paths::new(&s.0);
    let data = b"the same layer, pulled twice at once";
    let d = Digest::of(data);
    let (ra, rb) = (AtomicUsize::new(0), AtomicUsize::new(0));
    std::thread::scope(|sc| {
        for reads in [&ra, &rb] {
            let (paths, d) = (&paths, &d);
            // Each thread opens its own store: its own fds, its own flocks.
            sc.spawn(move || {
                let store = Store::open(paths).unwrap();
                store.put_blob(d, Some(data.len() as u64), &mut Slow { data, reads }).unwrap();
            });
        }
    });
    let (a, b) = (ra.load(Ordering::SeqCst), rb.load(Ordering::SeqCst));
    assert!((a == 0) != (b == 0), "both read the blob (reads: {a} and {b})");
    let store = Store::open(&paths).unwrap();
    assert_eq!(entries(&store), vec![d.hex().to_string()]);
}
