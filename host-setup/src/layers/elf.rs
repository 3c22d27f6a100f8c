//! Reading a host file once: its metadata, and for an ELF object what ld.so needs
//! (PT_INTERP, DT_NEEDED, DT_RPATH/DT_RUNPATH, DT_SONAME), parsed with goblin.

use std::fs::{self, File};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use crate::error::{Result, SysContext};

/// One host file, opened once: the fingerprint's stat, the parsing and the copy
/// all see the same inode, even if the host replaces the path meanwhile.
#[derive(Debug)]
pub(super) struct Source {
    pub real: PathBuf,
    pub file: File,
    pub meta: fs::Metadata,
    pub elf: Option<ElfInfo>,
    /// The `#!` line of a script.
    pub shebang: Option<String>,
}

/// How much of each file is read at once when it is opened.
const HEAD: usize = 4096;

impl Source {
    /// Opens and reads the host file at `real` (a path with no symlinks left).
    pub(super) fn open(real: PathBuf) -> Result<Source> {
        let file = File::open(&real).sys(|| format!("open {}", real.display()))?;
        let meta = file.metadata().sys(|| format!("stat {}", real.display()))?;
        if !meta.is_file() {
            return Err(crate::failed!("{}: not a regular file", real.display()));
        }
        // One read for the magic, and for an ELF file usually its header, program
        // headers and PT_INTERP too.
        let mut head = [0u8; HEAD];
        let n = read_at_most(&file, &mut head, 0).sys(|| format!("read {}", real.display()))?;
        let head = &head[..n];
        let (elf, shebang) = if head.starts_with(b"\x7fELF") {
            (Some(parse_elf(&file, &real, meta.len(), head)?), None)
        } else if let Some(rest) = head.strip_prefix(b"#!") {
            let line = rest.split(|&b| b == b'\n').next().unwrap_or_default();
            (None, Some(String::from_utf8_lossy(line).trim().to_string()))
        } else {
            (None, None)
        };
        Ok(Source { real, file, meta, elf, shebang })
    }
}

/// What ld.so needs to know about an ELF object.
#[derive(Debug, Default)]
pub(super) struct ElfInfo {
    /// EI_CLASS, EI_DATA and e_machine: ld.so skips libraries of another kind.
    pub kind: (u8, u8, u16),
    pub interp: Option<String>,
    pub needed: Vec<String>,
    pub rpath: Vec<String>,
    pub runpath: Vec<String>,
    pub soname: Option<String>,
    pub nodeflib: bool,
}

/// Reads what ld.so needs from an ELF file with goblin: the header, the program
/// headers, PT_INTERP, the PT_DYNAMIC entries and their string table. Only those
/// parts are read (pread), not the whole file: a cache hit reads a few KiB per
/// file instead of every byte of libc. `head`: the file's first bytes, already read.
fn parse_elf(file: &File, path: &Path, len: u64, head: &[u8]) -> Result<ElfInfo> {
    use goblin::container::Ctx;
    use goblin::elf::dynamic::{Dynamic, DF_1_NODEFLIB, DT_NEEDED, DT_RPATH, DT_RUNPATH};
    use goblin::elf::program_header::{ProgramHeader, PT_DYNAMIC, PT_INTERP};

    let bad = |what: &str| crate::failed!("parse ELF {}: {what}", path.display());
    let goblin_err = |e: goblin::error::Error| crate::failed!("parse ELF {}: {e}", path.display());
    // A piece of the file; sizes are bounded so a corrupt file cannot make us allocate much.
    let read = |offset: u64, size: u64, what: &str| -> Result<Vec<u8>> {
        if size > 16 << 20 || !matches!(offset.checked_add(size), Some(end) if end <= len) {
            return Err(bad(&format!("{what} lies outside the file")));
        }
        if let Some(bytes) = head.get(offset as usize..(offset + size) as usize) {
            return Ok(bytes.to_vec());
        }
        let mut buf = vec![0u8; size as usize];
        std::os::unix::fs::FileExt::read_exact_at(file, &mut buf, offset)
            .sys(|| format!("read {} ({what})", path.display()))?;
        Ok(buf)
    };

    let ehdr = read(0, len.min(64), "the ELF header")?;
    let header = goblin::elf::Elf::parse_header(&ehdr).map_err(goblin_err)?;
    let ctx = Ctx::new(header.container().map_err(goblin_err)?, header.endianness().map_err(goblin_err)?);
    let phnum = usize::from(header.e_phnum);
    let phdr_bytes = read(header.e_phoff, u64::from(header.e_phentsize) * phnum as u64, "the program headers")?;
    let mut phdrs = ProgramHeader::parse(&phdr_bytes, 0, phnum, ctx).map_err(goblin_err)?;

    let mut info = ElfInfo { kind: (header.e_ident[4], header.e_ident[5], header.e_machine), ..Default::default() };
    if let Some(ph) = phdrs.iter().find(|p| p.p_type == PT_INTERP) {
        let raw = read(ph.p_offset, ph.p_filesz, "PT_INTERP")?;
        let raw = raw.split(|&b| b == 0).next().unwrap_or_default();
        info.interp = Some(String::from_utf8(raw.to_vec()).map_err(|_| bad("PT_INTERP is not UTF-8"))?);
    }
    let Some(dyn_ph) = phdrs.iter_mut().find(|p| p.p_type == PT_DYNAMIC) else {
        return Ok(info); // static: nothing to load
    };
    let dyn_bytes = read(dyn_ph.p_offset, dyn_ph.p_filesz, "PT_DYNAMIC")?;
    // goblin finds the entries at p_offset of the bytes it is given: we give it the
    // segment alone. The other headers still map DT_STRTAB to its file offset.
    dyn_ph.p_offset = 0;
    let Some(dynamic) = Dynamic::parse(&dyn_bytes, &phdrs, ctx).map_err(goblin_err)? else {
        return Ok(info);
    };
    let strtab = read(dynamic.info.strtab as u64, dynamic.info.strsz as u64, "DT_STRTAB")?;
    // Only the strings the entries point at are decoded (goblin's Strtab::parse
    // checks every symbol name in the table: most of a cache check's CPU time).
    let string = |offset: u64| -> Result<String> {
        let bytes = usize::try_from(offset)
            .ok()
            .and_then(|o| strtab.get(o..))
            .ok_or_else(|| bad("a dynamic entry points outside DT_STRTAB"))?;
        let s = bytes.split(|&b| b == 0).next().unwrap_or_default();
        String::from_utf8(s.to_vec()).map_err(|_| bad("a string in DT_STRTAB is not UTF-8"))
    };
    for d in &dynamic.dyns {
        match d.d_tag {
            DT_NEEDED => info.needed.push(string(d.d_val)?),
            DT_RPATH => info.rpath.extend(string(d.d_val)?.split(':').filter(|s| !s.is_empty()).map(String::from)),
            DT_RUNPATH => info.runpath.extend(string(d.d_val)?.split(':').filter(|s| !s.is_empty()).map(String::from)),
            _ => {}
        }
    }
    if dynamic.info.soname != 0 {
        info.soname = Some(string(dynamic.info.soname as u64)?);
    }
    info.nodeflib = dynamic.info.flags_1 & DF_1_NODEFLIB != 0;
    Ok(info)
}

/// pread until `buf` is full or the file ends; the number of bytes read.
fn read_at_most(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
    use std::os::unix::fs::FileExt;
    let mut n = 0;
    while n < buf.len() {
        match file.read_at(&mut buf[n..], offset + n as u64) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What each piece of the file was read from must not matter: the first
    /// bytes read at open, or pread.
    fn parsed_both_ways(path: &str) -> ElfInfo {
        let src = Source::open(fs::canonicalize(path).unwrap()).unwrap();
        let info = src.elf.expect("an ELF file");
        let without_head = parse_elf(&src.file, &src.real, src.meta.len(), &[]).unwrap();
        assert_eq!(format!("{info:?}"), format!("{without_head:?}"), "{path}");
        info
    }

    #[test]
    fn what_ld_so_needs_from_the_hosts_sh_and_its_loader() {
        let sh = parsed_both_ways("/bin/sh");
        let x86_64 = (2, 1, goblin::elf::header::EM_X86_64); // ELFCLASS64, ELFDATA2LSB
        assert_eq!(sh.kind, x86_64);
        assert!(sh.needed.contains(&"libc.so.6".to_string()), "{sh:?}");
        assert_eq!(sh.soname, None);
        let interp = sh.interp.expect("/bin/sh is dynamic");
        let ld_so = parsed_both_ways(&interp);
        assert_eq!(ld_so.kind, x86_64);
        assert!(ld_so.interp.is_none() && ld_so.needed.is_empty(), "{ld_so:?}");
        assert!(ld_so.soname.is_some_and(|s| s.starts_with("ld-linux")));
    }

    #[test]
    fn scripts_and_other_files() {
        let t = std::env::temp_dir().join(format!("layers-unit-{}-elf", std::process::id()));
        fs::create_dir_all(&t).unwrap();
        fs::write(t.join("script"), "#!/bin/sh -e\necho hi\n").unwrap();
        fs::write(t.join("short-elf"), b"\x7fELF\x02\x01").unwrap();
        let script = Source::open(t.join("script")).unwrap();
        let short = Source::open(t.join("short-elf")).unwrap_err().to_string();
        let dir = Source::open(t.clone()).unwrap_err().to_string();
        fs::remove_dir_all(&t).unwrap();
        assert_eq!((script.shebang.as_deref(), script.elf.is_none()), (Some("/bin/sh -e"), true));
        assert!(short.starts_with(&format!("parse ELF {}/short-elf: ", t.display())), "{short}");
        assert_eq!(dir, format!("{}: not a regular file", t.display()));
    }
}
