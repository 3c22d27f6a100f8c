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

impl Source {
    /// Opens and reads the host file at `real` (a path with no symlinks left).
    pub(super) fn open(real: PathBuf) -> Result<Source> {
        let file = File::open(&real).sys(|| format!("open {}", real.display()))?;
        let meta = file.metadata().sys(|| format!("stat {}", real.display()))?;
        if !meta.is_file() {
            return Err(crate::failed!("{}: not a regular file", real.display()));
        }
        let mut head = [0u8; 128];
        let n = read_at_most(&file, &mut head, 0).sys(|| format!("read {}", real.display()))?;
        let head = &head[..n];
        let (elf, shebang) = if head.starts_with(b"\x7fELF") {
            (Some(parse_elf(&file, &real, meta.len())?), None)
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
/// file instead of every byte of libc.
fn parse_elf(file: &File, path: &Path, len: u64) -> Result<ElfInfo> {
    use goblin::container::Ctx;
    use goblin::elf::dynamic::{Dynamic, DF_1_NODEFLIB, DT_RPATH, DT_RUNPATH};
    use goblin::elf::program_header::{ProgramHeader, PT_DYNAMIC, PT_INTERP};
    use goblin::strtab::Strtab;

    let bad = |what: &str| crate::failed!("parse ELF {}: {what}", path.display());
    let goblin_err = |e: goblin::error::Error| crate::failed!("parse ELF {}: {e}", path.display());
    // A piece of the file; sizes are bounded so a corrupt file cannot make us allocate much.
    let read = |offset: u64, size: u64, what: &str| -> Result<Vec<u8>> {
        if size > 16 << 20 || !matches!(offset.checked_add(size), Some(end) if end <= len) {
            return Err(bad(&format!("{what} lies outside the file")));
        }
        let mut buf = vec![0u8; size as usize];
        std::os::unix::fs::FileExt::read_exact_at(file, &mut buf, offset)
            .sys(|| format!("read {} ({what})", path.display()))?;
        Ok(buf)
    };

    let head = read(0, len.min(64), "the ELF header")?;
    let header = goblin::elf::Elf::parse_header(&head).map_err(goblin_err)?;
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
    let strtab_bytes = read(dynamic.info.strtab as u64, dynamic.info.strsz as u64, "DT_STRTAB")?;
    let strtab = Strtab::parse(&strtab_bytes, 0, strtab_bytes.len(), 0).map_err(goblin_err)?;
    let string = |offset: u64| -> Result<String> {
        strtab.get_at(offset as usize).map(String::from).ok_or_else(|| bad("a dynamic entry points outside DT_STRTAB"))
    };
    for lib in dynamic.get_libraries(&strtab) {
        info.needed.push(lib.to_string());
    }
    for d in &dynamic.dyns {
        let list = match d.d_tag {
            DT_RPATH => &mut info.rpath,
            DT_RUNPATH => &mut info.runpath,
            _ => continue,
        };
        list.extend(string(d.d_val)?.split(':').filter(|s| !s.is_empty()).map(String::from));
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
