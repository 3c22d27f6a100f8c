//! `sha256:HEX`: the only digest algorithm the store takes (the OCI spec's
//! registered ones are sha256 and sha512; every registry and `docker save` uses
//! sha256). The hex is checked to be exactly 64 lower-case digits, so a digest
//! can be used as a file name: it can never hold `/` or `..`.

use std::fmt;
use std::io::{self, Read};
use std::str::FromStr;

use sha2::{Digest as _, Sha256};

use crate::error::{Error, Result};

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    hex: String,
}

impl Digest {
    pub fn parse(s: &str) -> Result<Digest> {
        let hex = s
            .strip_prefix("sha256:")
            .ok_or_else(|| crate::failed!("digest {s:?}: only sha256:HEX digests are supported"))?;
        Digest::from_hex(hex).map_err(|_| crate::failed!("digest {s:?}: not 64 lower-case hex digits"))
    }

    pub fn from_hex(hex: &str) -> Result<Digest> {
        if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
            return Err(crate::failed!("digest hex {hex:?}: not 64 lower-case hex digits"));
        }
        Ok(Digest { hex: hex.to_string() })
    }

    /// The 64 hex digits: the blob's and the layer dir's file name.
    pub fn hex(&self) -> &str {
        &self.hex
    }

    /// The digest of bytes in memory.
    pub fn of(bytes: &[u8]) -> Digest {
        Digest { hex: to_hex(&Sha256::digest(bytes)) }
    }

    /// From an oci-spec descriptor's digest (refusing sha512 and others).
    pub fn from_oci(d: &oci_spec::image::Digest) -> Result<Digest> {
        Digest::parse(d.as_ref())
    }

    pub fn to_oci(&self) -> oci_spec::image::Digest {
        // A valid sha256:HEX always parses.
        oci_spec::image::Digest::from_str(&self.to_string()).expect("sha256 digest")
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex)
    }
}

impl FromStr for Digest {
    type Err = Error;
    fn from_str(s: &str) -> Result<Digest> {
        Digest::parse(s)
    }
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A reader that hashes and counts what passes through it, and fails once more
/// than `limit` bytes came (a stated size, or a decompression bomb's).
pub struct Hashing<R> {
    inner: R,
    hasher: Sha256,
    pub count: u64,
    limit: u64,
}

impl<R: Read> Hashing<R> {
    pub fn new(inner: R, limit: u64) -> Hashing<R> {
        Hashing { inner, hasher: Sha256::new(), count: 0, limit }
    }

    pub fn finish(self) -> (Digest, u64) {
        (Digest { hex: to_hex(&self.hasher.finalize()) }, self.count)
    }

    /// Reads what is left (a tar's trailing blocks), so the digest covers all of it.
    pub fn drain(&mut self) -> io::Result<()> {
        io::copy(self, &mut io::sink()).map(|_| ())
    }
}

/// The error a `Hashing` reader gives past its limit (recognised by `is_over_limit`).
pub const OVER: &str = "over the size limit";

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count += n as u64;
        if self.count > self.limit {
            return Err(io::Error::other(OVER));
        }
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// Whether an io error came from a `Hashing` reader's limit.
pub fn is_over_limit(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::Other && e.to_string() == OVER
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_print() {
        let h = "a".repeat(64);
        let d = Digest::parse(&format!("sha256:{h}")).unwrap();
        assert_eq!(d.to_string(), format!("sha256:{h}"));
        assert_eq!(d.hex(), h);
        assert!(Digest::parse(&format!("sha512:{h}")).is_err());
        assert!(Digest::parse(&format!("sha256:{}", "A".repeat(64))).is_err());
        assert!(Digest::parse("sha256:../../etc").is_err());
        assert!(Digest::parse(&format!("sha256:{}", "a".repeat(63))).is_err());
        assert_eq!(Digest::from_oci(&d.to_oci()).unwrap(), d);
    }

    #[test]
    fn hashes_and_limits() {
        // sha256("abc")
        let abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(Digest::of(b"abc").hex(), abc);
        let mut r = Hashing::new(&b"abc"[..], 3);
        r.drain().unwrap();
        assert_eq!(r.finish().0.hex(), abc);
        let mut r = Hashing::new(&b"abcd"[..], 3);
        assert!(is_over_limit(&r.drain().unwrap_err()));
    }
}
