//! Finds the program interpreter (`PT_INTERP`, the dynamic loader) an ELF executable names.
//! The kernel opens that file for execution at every exec of the program, and Landlock checks
//! its execute right like the program's own, so an allowed command's loader must be allowed too.

use std::io::{Read, Seek, SeekFrom};

const PT_INTERP: u32 = 3;
/// Longer than any real loader path; bounds what a hostile file can make us read.
const MAX_INTERP: u64 = 4096;
const MAX_PHNUM: u16 = 512;

#[derive(Debug, thiserror::Error)]
pub enum ElfError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("malformed ELF file: {0}")]
    Malformed(&'static str),
}

/// The interpreter path of an ELF executable; `None` for a static executable or a file that
/// is not a 64-bit little-endian ELF (a `#!` script, whose interpreter must be allowed by name).
pub fn interpreter(file: &mut (impl Read + Seek)) -> Result<Option<String>, ElfError> {
    let mut ehdr = [0u8; 64];
    let n = read_up_to(file, &mut ehdr)?;
    if n < 64 || &ehdr[..4] != b"\x7fELF" || ehdr[4] != 2 || ehdr[5] != 1 {
        return Ok(None);
    }
    let phoff = u64::from_le_bytes(field(&ehdr, 0x20));
    let phentsize = u16::from_le_bytes(field(&ehdr, 0x36));
    let phnum = u16::from_le_bytes(field(&ehdr, 0x38));
    if phnum > MAX_PHNUM {
        return Err(ElfError::Malformed("too many program headers"));
    }
    if phnum > 0 && phentsize < 56 {
        return Err(ElfError::Malformed("program header entries are too small"));
    }
    for i in 0..u64::from(phnum) {
        let at = i.checked_mul(u64::from(phentsize)).and_then(|o| o.checked_add(phoff));
        let at = at.ok_or(ElfError::Malformed("program header offset overflows"))?;
        let mut phdr = [0u8; 56];
        file.seek(SeekFrom::Start(at))?;
        if read_up_to(file, &mut phdr)? < 56 {
            return Err(ElfError::Malformed("program headers run past the end of the file"));
        }
        if u32::from_le_bytes(field(&phdr, 0)) != PT_INTERP {
            continue;
        }
        let offset = u64::from_le_bytes(field(&phdr, 8));
        let size = u64::from_le_bytes(field(&phdr, 32));
        if size == 0 || size > MAX_INTERP {
            return Err(ElfError::Malformed("PT_INTERP has an implausible size"));
        }
        let mut name = vec![0u8; size as usize];
        file.seek(SeekFrom::Start(offset))?;
        if read_up_to(file, &mut name)? < name.len() {
            return Err(ElfError::Malformed("PT_INTERP runs past the end of the file"));
        }
        // The kernel requires the NUL terminator at the end of the segment.
        if name.pop() != Some(0) || name.contains(&0) || name.is_empty() {
            return Err(ElfError::Malformed("PT_INTERP is not one NUL-terminated path"));
        }
        return String::from_utf8(name).map(Some).map_err(|_| ElfError::Malformed("PT_INTERP is not UTF-8"));
    }
    Ok(None)
}

fn field<const N: usize>(buf: &[u8], at: usize) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(&buf[at..at + N]);
    out
}

fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    /// A minimal ELF64 file: header, `phdrs` program headers at 64, then `tail`.
    fn elf(phdrs: &[(u32, u64, u64)], tail: &[u8]) -> Vec<u8> {
        let mut f = vec![0u8; 64];
        f[..6].copy_from_slice(b"\x7fELF\x02\x01");
        f[0x20..0x28].copy_from_slice(&64u64.to_le_bytes());
        f[0x36..0x38].copy_from_slice(&56u16.to_le_bytes());
        f[0x38..0x3a].copy_from_slice(&(phdrs.len() as u16).to_le_bytes());
        for &(typ, offset, size) in phdrs {
            let mut p = vec![0u8; 56];
            p[..4].copy_from_slice(&typ.to_le_bytes());
            p[8..16].copy_from_slice(&offset.to_le_bytes());
            p[32..40].copy_from_slice(&size.to_le_bytes());
            f.extend(p);
        }
        f.extend_from_slice(tail);
        f
    }

    #[test]
    fn finds_the_loader_of_a_dynamic_executable() {
        let loader = b"/lib64/ld-linux-x86-64.so.2\0";
        let at = 64 + 2 * 56;
        let f = elf(&[(6, 0, 0), (PT_INTERP, at, loader.len() as u64)], loader);
        assert_eq!(interpreter(&mut Cursor::new(f)).unwrap().as_deref(), Some("/lib64/ld-linux-x86-64.so.2"));
    }

    #[test]
    fn static_executables_and_scripts_have_none() {
        assert_eq!(interpreter(&mut Cursor::new(elf(&[(1, 0, 0)], b""))).unwrap(), None);
        assert_eq!(interpreter(&mut Cursor::new(b"#!/bin/sh\necho hi\n".to_vec())).unwrap(), None);
        assert_eq!(interpreter(&mut Cursor::new(Vec::new())).unwrap(), None);
    }

    #[test]
    fn malformed_headers_are_errors_not_guesses() {
        let at = 64 + 56;
        for (phdrs, tail) in [
            (vec![(PT_INTERP, at, 100)], b"short\0".to_vec()),
            (vec![(PT_INTERP, at, 0)], Vec::new()),
            (vec![(PT_INTERP, at, 1 << 20)], Vec::new()),
            (vec![(PT_INTERP, at, 6)], b"/a\0bc\0".to_vec()),
            (vec![(PT_INTERP, at, 4)], b"/abc".to_vec()),
        ] {
            let err = interpreter(&mut Cursor::new(elf(&phdrs, &tail))).unwrap_err();
            assert!(matches!(err, ElfError::Malformed(_)), "{phdrs:?}: {err}");
        }
        let mut truncated = elf(&[(PT_INTERP, 0, 0)], b"");
        truncated.truncate(100);
        assert!(matches!(interpreter(&mut Cursor::new(truncated)), Err(ElfError::Malformed(_))));
    }

    #[test]
    fn reads_the_hosts_own_loader() {
        // Every dynamically linked Linux executable names one; /bin/sh is one on any host
        // that runs these tests.
        let mut f = std::fs::File::open("/bin/sh").unwrap();
        let interp = interpreter(&mut f).unwrap().expect("/bin/sh is dynamically linked");
        assert!(interp.starts_with('/') && interp.contains("ld-"), "{interp}");
    }
}
