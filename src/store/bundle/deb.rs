//! Debian binary packages as the build environment reads them: the `ar` container of a `.deb`
//! and its `data.tar` member, decompressed (xz or gzip) for the tree unpacker. Maintainer
//! scripts and the control member are never looked at: a build environment is files only.

use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::fsutil::{At, IoError};

const AR_MAGIC: &[u8; 8] = b"!<arch>\n";
const AR_HEADER: usize = 60;
/// A package's members before `data.tar` (`debian-binary`, `control.tar.*`) are small; more than
/// this many members means the file is not a .deb.
const MAX_MEMBERS: usize = 8;

/// Errors from reading a .deb.
#[derive(Debug, thiserror::Error)]
pub enum DebError {
    #[error("{path} is not a Debian package: {problem}")]
    NotDeb { path: PathBuf, problem: String },
    #[error("{path}: its data member {member} is compressed in a way ignite does not read (xz and gzip are)")]
    Compression { path: PathBuf, member: String },
    #[error("{path}: failed to decompress {member}: {problem}")]
    Decompress { path: PathBuf, member: String, problem: String },
    #[error("{path}: {member} unpacks to more than {limit} bytes")]
    TooLarge { path: PathBuf, member: String, limit: u64 },
    #[error(transparent)]
    Io(#[from] IoError),
}

/// How the `data.tar` member of a package is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Compression {
    Xz,
    Gzip,
    None,
}

/// Writes the uncompressed `data.tar` of the package at `deb` to `out` (created), at most
/// `limit` bytes of it.
pub fn extract_data_tar(deb: &Path, out: &Path, limit: u64) -> Result<(), DebError> {
    let not_deb = |problem: &str| DebError::NotDeb { path: deb.to_path_buf(), problem: problem.to_string() };
    let mut file = File::open(deb).at("open", deb)?;
    let len = file.metadata().at("stat", deb)?.len();
    let mut magic = [0u8; 8];
    file.read_exact(&mut magic).map_err(|_| not_deb("shorter than an ar header"))?;
    if &magic != AR_MAGIC {
        return Err(not_deb("no ar archive signature"));
    }
    let mut offset = AR_MAGIC.len() as u64;
    for _ in 0..MAX_MEMBERS {
        let mut header = [0u8; AR_HEADER];
        file.read_exact(&mut header).map_err(|_| not_deb("it ends before a data.tar member"))?;
        if &header[58..60] != b"`\n" {
            return Err(not_deb("a member header is damaged"));
        }
        let name = String::from_utf8_lossy(&header[..16]).trim_end().trim_end_matches('/').to_string();
        let size: u64 = std::str::from_utf8(&header[48..58])
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .ok_or_else(|| not_deb("a member size is not a number"))?;
        let start = offset + AR_HEADER as u64;
        if start.checked_add(size).is_none_or(|end| end > len) {
            return Err(not_deb("a member runs past the end of the file"));
        }
        let compression = match name.as_str() {
            "data.tar.xz" => Some(Compression::Xz),
            "data.tar.gz" => Some(Compression::Gzip),
            "data.tar" => Some(Compression::None),
            other if other.starts_with("data.tar") => {
                return Err(DebError::Compression { path: deb.to_path_buf(), member: other.to_string() });
            }
            _ => None,
        };
        if let Some(compression) = compression {
            let member = BufReader::with_capacity(1 << 16, (&mut file).take(size));
            return decompress(member, compression, deb, &name, out, limit);
        }
        // Members are padded to an even offset.
        offset = start + size + (size & 1);
        file.seek(SeekFrom::Start(offset)).at("seek in", deb)?;
    }
    Err(not_deb("no data.tar member"))
}

fn decompress<R: io::BufRead>(
    mut member: R,
    compression: Compression,
    deb: &Path,
    name: &str,
    out: &Path,
    limit: u64,
) -> Result<(), DebError> {
    let file = File::create_new(out).at("create", out)?;
    let mut sink = Capped { inner: io::BufWriter::with_capacity(1 << 16, file), left: limit, exceeded: false };
    let result = match compression {
        Compression::Xz => lzma_rs::xz_decompress(&mut member, &mut sink).map_err(|e| e.to_string()),
        Compression::Gzip => {
            io::copy(&mut flate2::bufread::GzDecoder::new(member), &mut sink).map(drop).map_err(|e| e.to_string())
        }
        Compression::None => io::copy(&mut member, &mut sink).map(drop).map_err(|e| e.to_string()),
    };
    if sink.exceeded {
        return Err(DebError::TooLarge { path: deb.to_path_buf(), member: name.to_string(), limit });
    }
    result.map_err(|problem| DebError::Decompress { path: deb.to_path_buf(), member: name.to_string(), problem })?;
    sink.inner.flush().at("write", out)?;
    Ok(())
}

/// A writer that refuses to grow past `left` bytes.
struct Capped<W> {
    inner: W,
    left: u64,
    exceeded: bool,
}

impl<W: Write> Write for Capped<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.len() as u64 > self.left {
            self.exceeded = true;
            return Err(io::Error::other("size limit reached"));
        }
        let n = self.inner.write(buf)?;
        self.left -= n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An ar archive of `members` (name, bytes), as dpkg-deb writes one.
    fn ar(members: &[(&str, &[u8])]) -> Vec<u8> {
        let mut out = AR_MAGIC.to_vec();
        for (name, data) in members {
            out.extend_from_slice(
                format!("{:<16}{:<12}{:<6}{:<6}{:<8}{:<10}`\n", name, 0, 0, 0, 100644, data.len()).as_bytes(),
            );
            out.extend_from_slice(data);
            if data.len() % 2 == 1 {
                out.push(b'\n');
            }
        }
        out
    }

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(data).expect("gzip");
        enc.finish().expect("gzip")
    }

    fn xz(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        lzma_rs::xz_compress(&mut io::Cursor::new(data), &mut out).expect("xz");
        out
    }

    fn extract(deb: &[u8], limit: u64) -> Result<Vec<u8>, DebError> {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("p.deb");
        std::fs::write(&path, deb).expect("write");
        let out = dir.path().join("data.tar");
        extract_data_tar(&path, &out, limit)?;
        Ok(std::fs::read(out).expect("read"))
    }

    #[test]
    fn the_data_member_is_found_past_odd_sized_members_and_decompressed() {
        let payload = b"tar bytes stand-in".repeat(100);
        for (name, data) in
            [("data.tar.xz", xz(&payload)), ("data.tar.gz", gz(&payload)), ("data.tar", payload.clone())]
        {
            // control.tar.xz has an odd size, so the data member starts after a padding byte.
            let deb = ar(&[("debian-binary", b"2.0\n"), ("control.tar.xz", b"odd"), (name, &data)]);
            assert_eq!(extract(&deb, 1 << 20).expect(name), payload, "{name}");
        }
    }

    #[test]
    fn damaged_or_foreign_files_are_refused_with_the_reason() {
        let payload = xz(b"data");
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (b"PK\x03\x04 a zip file".to_vec(), "no ar archive signature"),
            (b"!<a".to_vec(), "shorter than an ar header"),
            (ar(&[("debian-binary", b"2.0\n"), ("control.tar.xz", b"c")]), "ends before a data.tar member"),
            (ar(&[("data.tar.zst", b"zstd")]), "compressed in a way ignite does not read"),
            (ar(&[("data.tar.xz", b"not xz at all")]), "failed to decompress data.tar.xz"),
            (
                {
                    let mut d = ar(&[("data.tar.xz", &payload)]);
                    d.truncate(d.len() - 4);
                    d
                },
                "runs past the end",
            ),
            (
                {
                    let mut d = ar(&[("data.tar.xz", &payload)]);
                    d[8 + 58] = b'x';
                    d
                },
                "header is damaged",
            ),
        ];
        for (deb, expected) in cases {
            let err = extract(&deb, 1 << 20).expect_err(expected).to_string();
            assert!(err.contains(expected), "{expected}: {err}");
        }
    }

    #[test]
    fn a_member_that_unpacks_past_the_limit_is_refused() {
        let deb = ar(&[("data.tar.xz", &xz(&[0u8; 10_000]))]);
        let err = extract(&deb, 4096).expect_err("too large").to_string();
        assert!(err.contains("unpacks to more than 4096 bytes"), "{err}");
        assert_eq!(extract(&deb, 10_000).expect("fits").len(), 10_000);
    }
}
