//! Package download: streams the pinned package to a temp file beside its final place, hashing
//! as it goes, and renames it into place only when its npm integrity (`sha512-…`) matches.
//! Also the [`Progress`] seam through which the store reports what it is doing.

use std::fs::{self, File, OpenOptions};
use std::io::{self, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sha2::{Digest as _, Sha256, Sha512};

use crate::data::runtime::Integrity;
use crate::fsutil::{At, IoError};

/// Larger than any runtime package; stops a misbehaving server from filling the disk before
/// the integrity check could fail.
const MAX_PACKAGE_BYTES: u64 = 2 << 30;

/// Receives progress reports. Implementations must be cheap: `bytes` is called for every chunk.
pub trait Progress: Send + Sync {
    /// A new step starts ("downloading @oven/bun-linux-x64 1.4.5").
    fn phase(&self, msg: &str);
    /// Bytes of the current step done so far, of `total` if known.
    fn bytes(&self, done: u64, total: Option<u64>);
    /// The whole operation finished ("bun 1.4.5 ready in 3.2 s (…)").
    fn done(&self, msg: &str);
}

/// Reports nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn phase(&self, _msg: &str) {}
    fn bytes(&self, _done: u64, _total: Option<u64>) {}
    fn done(&self, _msg: &str) {}
}

/// Reports on stderr: one line redrawn in place on a terminal; on anything else (CI logs, files)
/// a line per phase and one per quarter of a download.
#[derive(Debug)]
pub struct StderrProgress {
    tty: bool,
    state: Mutex<LineState>,
    /// Tests read what would have been printed.
    #[cfg(test)]
    captured: Mutex<String>,
}

#[derive(Debug, Default)]
struct LineState {
    phase: String,
    last_draw: Option<Instant>,
    /// Quarters already printed in plain mode.
    quarters: u64,
}

impl StderrProgress {
    /// Draws in place if stderr is a terminal.
    pub fn new() -> Self {
        Self::with_tty(io::stderr().is_terminal())
    }

    /// Forces terminal (`true`) or plain (`false`) output.
    pub fn with_tty(tty: bool) -> Self {
        StderrProgress {
            tty,
            state: Mutex::new(LineState::default()),
            #[cfg(test)]
            captured: Mutex::new(String::new()),
        }
    }

    /// What would have been printed (tests only).
    #[cfg(test)]
    pub(crate) fn captured(&self) -> String {
        self.captured.lock().map(|c| c.clone()).unwrap_or_default()
    }

    #[cfg(test)]
    fn write(&self, text: &str) {
        if let Ok(mut c) = self.captured.lock() {
            c.push_str(text);
        }
    }

    #[cfg(not(test))]
    fn write(&self, text: &str) {
        // Progress is best effort: a closed stderr must not fail the operation.
        let mut err = io::stderr().lock();
        let _ = err.write_all(text.as_bytes());
        let _ = err.flush();
    }
}

impl Default for StderrProgress {
    fn default() -> Self {
        Self::new()
    }
}

/// "12.3 MB" (decimal, like download tools print).
fn megabytes(n: u64) -> String {
    format!("{:.1} MB", n as f64 / 1e6)
}

impl Progress for StderrProgress {
    fn phase(&self, msg: &str) {
        let Ok(mut st) = self.state.lock() else {
            return;
        };
        st.phase = msg.to_string();
        st.last_draw = None;
        st.quarters = 0;
        if self.tty {
            self.write(&format!("\r\x1b[2K{msg}"));
        } else {
            self.write(&format!("{msg}\n"));
        }
    }

    fn bytes(&self, done: u64, total: Option<u64>) {
        let Ok(mut st) = self.state.lock() else {
            return;
        };
        if self.tty {
            let now = Instant::now();
            let finished = total.is_some_and(|t| done >= t);
            if !finished && st.last_draw.is_some_and(|t| now - t < Duration::from_millis(100)) {
                return;
            }
            st.last_draw = Some(now);
            let amount = match total {
                Some(t) if t > 0 => {
                    format!("{} / {} ({}%)", megabytes(done), megabytes(t), done.saturating_mul(100) / t)
                }
                _ => megabytes(done),
            };
            self.write(&format!("\r\x1b[2K{}: {amount}", st.phase));
        } else if let Some(t) = total.filter(|t| *t > 0) {
            let quarter = (done.saturating_mul(4) / t).min(4);
            if quarter > st.quarters {
                st.quarters = quarter;
                self.write(&format!("  {}%: {} / {}\n", quarter * 25, megabytes(done), megabytes(t)));
            }
        }
    }

    fn done(&self, msg: &str) {
        if self.tty {
            self.write(&format!("\r\x1b[2K{msg}\n"));
        } else {
            self.write(&format!("{msg}\n"));
        }
    }
}

/// Errors from downloading and verifying a package.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("failed to download {url}: {source}")]
    Http {
        url: String,
        #[source]
        source: Box<ureq::Error>,
    },
    #[error("failed to download {url}: connection failed after {done} bytes: {source}")]
    Body {
        url: String,
        done: u64,
        #[source]
        source: io::Error,
    },
    #[error("failed to download {url}: the package is larger than {limit} bytes")]
    TooLarge { url: String, limit: u64 },
    #[error("integrity check failed for {url}: expected {expected}, got {actual}; the download was deleted")]
    IntegrityMismatch { url: String, expected: String, actual: String },
    #[error(
        "package file {path} does not match its pinned integrity: expected {expected}, found {actual}; restore the file, or pin the new file's integrity in the runtime's definition"
    )]
    LocalIntegrityMismatch { path: PathBuf, expected: String, actual: String },
    #[error(transparent)]
    Io(#[from] IoError),
}

/// Downloads `url` to `dest`, verifying `integrity`. The bytes go to a temp file in `dest`'s
/// directory (so the final rename is atomic) that is deleted on every error. Returns the size.
pub fn download(url: &str, integrity: &Integrity, dest: &Path, progress: &dyn Progress) -> Result<u64, FetchError> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_connect(Some(Duration::from_secs(30)))
        .timeout_recv_response(Some(Duration::from_secs(60)))
        // A budget for the whole body: ~50 MB over a slow link, with room to spare.
        .timeout_recv_body(Some(Duration::from_secs(30 * 60)))
        .user_agent(concat!("ignite/", env!("CARGO_PKG_VERSION")))
        .tls_config(ureq::tls::TlsConfig::builder().root_certs(system_root_certs()).build())
        .build()
        .into();
    download_with(&agent, url, integrity, dest, progress)
}

/// Copies a local package file (a custom runtime's `file:` package) to `dest`, verifying
/// `integrity` on the way exactly as a download is verified. Returns the size.
pub fn copy_local(src: &Path, integrity: &Integrity, dest: &Path, progress: &dyn Progress) -> Result<u64, FetchError> {
    if !src.is_absolute() {
        // Loading a runtimes directory makes every file: package absolute; a relative one
        // here would silently depend on the current directory.
        return Err(FetchError::from(IoError::new(
            "open",
            src,
            io::Error::other("a package file path must be absolute"),
        )));
    }
    let file = File::open(src).at("open", src)?;
    let total = file.metadata().at("stat", src)?.len();
    let url = format!("file:{}", src.display());
    let mut reader = io::BufReader::with_capacity(1 << 16, file);
    save_verified(&mut reader, &url, integrity, dest, Some(total), progress).map_err(|e| match e {
        FetchError::IntegrityMismatch { expected, actual, .. } => {
            FetchError::LocalIntegrityMismatch { path: src.to_path_buf(), expected, actual }
        }
        FetchError::Body { source, .. } => FetchError::from(IoError::new("read", src, source)),
        FetchError::TooLarge { limit, .. } => FetchError::from(IoError::new(
            "copy",
            src,
            io::Error::other(format!("the file is larger than {limit} bytes")),
        )),
        other => other,
    })
}

/// CA bundles of the common distributions, after `$SSL_CERT_FILE`.
const CA_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt", // Debian, Ubuntu, Alpine, Arch
    "/etc/pki/tls/certs/ca-bundle.crt",   // Fedora, RHEL
    "/etc/ssl/ca-bundle.pem",             // openSUSE
    "/etc/ssl/cert.pem",                  // Alpine, macOS-like layouts
];

/// The host's trusted CAs, like curl and npm use: hosts behind a TLS-inspecting proxy trust
/// its CA there, and nowhere else. Falls back to the Mozilla roots compiled into ureq when the
/// host has no bundle. (Trust in the *content* comes from the pinned integrity hash, not TLS.)
fn system_root_certs() -> ureq::tls::RootCerts {
    let candidates =
        std::env::var_os("SSL_CERT_FILE").map(PathBuf::from).into_iter().chain(CA_BUNDLES.iter().map(PathBuf::from));
    for path in candidates {
        let Ok(pem) = fs::read(&path) else { continue };
        let certs: Vec<ureq::tls::Certificate<'static>> = ureq::tls::parse_pem(&pem)
            .filter_map(|item| match item {
                Ok(ureq::tls::PemItem::Certificate(cert)) => Some(cert.to_owned()),
                _ => None,
            })
            .collect();
        if !certs.is_empty() {
            tracing::debug!(path = %path.display(), count = certs.len(), "using system CA certificates");
            return ureq::tls::RootCerts::new_with_certs(&certs);
        }
    }
    ureq::tls::RootCerts::WebPki
}

fn download_with(
    agent: &ureq::Agent,
    url: &str,
    integrity: &Integrity,
    dest: &Path,
    progress: &dyn Progress,
) -> Result<u64, FetchError> {
    let mut response =
        agent.get(url).call().map_err(|source| FetchError::Http { url: url.to_string(), source: Box::new(source) })?;
    let total = response.body().content_length();
    if total.is_some_and(|t| t > MAX_PACKAGE_BYTES) {
        return Err(FetchError::TooLarge { url: url.to_string(), limit: MAX_PACKAGE_BYTES });
    }
    let mut body = response.body_mut().as_reader();
    save_verified(&mut body, url, integrity, dest, total, progress)
}

/// Streams `reader` to a temp file, checks the sha512, renames to `dest`.
fn save_verified(
    reader: &mut dyn Read,
    url: &str,
    integrity: &Integrity,
    dest: &Path,
    total: Option<u64>,
    progress: &dyn Progress,
) -> Result<u64, FetchError> {
    let temp = TempFile::create(dest)?;
    let mut file = &temp.file;
    let mut hasher = Hasher::for_integrity(integrity);
    let mut buf = vec![0u8; 1 << 16];
    let mut done = 0u64;
    progress.bytes(0, total);
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(source) => {
                return Err(FetchError::Body { url: url.to_string(), done, source });
            }
        };
        done += n as u64;
        if done > MAX_PACKAGE_BYTES {
            return Err(FetchError::TooLarge { url: url.to_string(), limit: MAX_PACKAGE_BYTES });
        }
        hasher.update(&buf[..n]);
        file.write_all(&buf[..n]).at("write", &temp.path)?;
        progress.bytes(done, total);
    }
    let actual = hasher.finish();
    if actual != *integrity {
        return Err(FetchError::IntegrityMismatch {
            url: url.to_string(),
            expected: integrity.to_string(),
            actual: actual.to_string(),
        });
    }
    file.sync_all().at("sync", &temp.path)?;
    temp.persist(dest)?;
    Ok(done)
}

/// The hash an integrity value names, fed as the bytes stream past.
enum Hasher {
    Sha512(Sha512),
    Sha256(Sha256),
}

impl Hasher {
    fn for_integrity(integrity: &Integrity) -> Hasher {
        match integrity {
            Integrity::Sha512(_) => Hasher::Sha512(Sha512::new()),
            Integrity::Sha256(_) => Hasher::Sha256(Sha256::new()),
        }
    }

    fn update(&mut self, bytes: &[u8]) {
        match self {
            Hasher::Sha512(h) => h.update(bytes),
            Hasher::Sha256(h) => h.update(bytes),
        }
    }

    fn finish(self) -> Integrity {
        match self {
            Hasher::Sha512(h) => Integrity::from_sha512(h.finalize().into()),
            Hasher::Sha256(h) => Integrity::from_sha256(h.finalize().into()),
        }
    }
}

impl Write for Hasher {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The integrity of a file already on disk, hashed with the algorithm `like` names.
pub fn file_integrity(path: &Path, like: &Integrity) -> io::Result<Integrity> {
    let mut hasher = Hasher::for_integrity(like);
    io::copy(&mut io::BufReader::with_capacity(1 << 16, File::open(path)?), &mut hasher)?;
    Ok(hasher.finish())
}

/// Whether a package kept from an earlier run is on disk and matches `integrity`; a damaged
/// one is removed (and said), so that the caller downloads it again.
pub fn keep_if_intact(path: &Path, integrity: &Integrity) -> Result<bool, IoError> {
    if !path.is_file() {
        return Ok(false);
    }
    let actual = file_integrity(path, integrity).at("hash", path)?;
    if actual == *integrity {
        return Ok(true);
    }
    tracing::warn!(path = %path.display(), expected = %integrity, %actual, "cached package is damaged; downloading it again");
    fs::remove_file(path).at("remove", path)?;
    Ok(false)
}

/// A temp file beside its destination, removed on drop unless persisted.
struct TempFile {
    path: PathBuf,
    file: File,
    keep: bool,
}

impl TempFile {
    fn create(dest: &Path) -> Result<TempFile, FetchError> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let name = dest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let path = dest.with_file_name(format!(
            "{name}.partial-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let file = OpenOptions::new().write(true).create_new(true).open(&path).at("create", &path)?;
        Ok(TempFile { path, file, keep: false })
    }

    fn persist(mut self, dest: &Path) -> Result<(), FetchError> {
        fs::rename(&self.path, dest).at("rename into place", dest)?;
        self.keep = true;
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.keep {
            let _ = fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader};
    use std::net::TcpListener;

    fn integrity_of(bytes: &[u8]) -> Integrity {
        Integrity::from_sha512(Sha512::digest(bytes).into())
    }

    /// Serves one HTTP response with `body` on a loopback port; returns its URL.
    fn serve_once(body: Vec<u8>) -> (String, std::thread::JoinHandle<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}/pkg.tgz", listener.local_addr().expect("addr"));
        let handle = std::thread::spawn(move || {
            let (stream, _) = listener.accept().expect("accept");
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let mut line = String::new();
            while reader.read_line(&mut line).expect("read") > 0 && line != "\r\n" {
                line.clear();
            }
            let mut stream = stream;
            write!(stream, "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len())
                .expect("head");
            stream.write_all(&body).expect("body");
        });
        (url, handle)
    }

    fn local_agent() -> ureq::Agent {
        // No proxy from the environment: the test server is on loopback.
        ureq::Agent::config_builder().proxy(None).build().into()
    }

    #[derive(Default)]
    struct Recorder(Mutex<Vec<(u64, Option<u64>)>>);
    impl Progress for Recorder {
        fn phase(&self, _: &str) {}
        fn bytes(&self, done: u64, total: Option<u64>) {
            self.0.lock().expect("lock").push((done, total));
        }
        fn done(&self, _: &str) {}
    }

    #[test]
    fn downloads_verifies_and_renames() {
        let body: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let integrity = integrity_of(&body);
        let (url, server) = serve_once(body.clone());
        let dir = tempfile::tempdir().expect("tempdir");
        let dest = dir.path().join("pkg.tgz");
        let progress = Recorder::default();
        let n = download_with(&local_agent(), &url, &integrity, &dest, &progress).expect("download");
        server.join().expect("server");
        assert_eq!(n, body.len() as u64);
        assert_eq!(fs::read(&dest).expect("read"), body);
        let reports = progress.0.lock().expect("lock");
        assert_eq!(reports.last(), Some(&(n, Some(n))));
        assert_eq!(fs::read_dir(dir.path()).expect("dir").count(), 1, "no temp files left");
        assert_eq!(file_integrity(&dest, &integrity).expect("integrity"), integrity);
    }

    #[test]
    fn integrity_mismatch_is_an_error_and_leaves_nothing() {
        let (url, server) = serve_once(b"tampered package".to_vec());
        let expected = integrity_of(b"the real package");
        let dir = tempfile::tempdir().expect("tempdir");
        let dest = dir.path().join("pkg.tgz");
        let err = download_with(&local_agent(), &url, &expected, &dest, &NoProgress).expect_err("mismatch");
        server.join().expect("server");
        let msg = err.to_string();
        assert!(msg.contains(&expected.to_string()), "{msg}");
        assert!(msg.contains(&integrity_of(b"tampered package").to_string()), "{msg}");
        assert_eq!(fs::read_dir(dir.path()).expect("dir").count(), 0, "{msg}");
    }

    #[test]
    fn http_errors_name_the_url() {
        let dir = tempfile::tempdir().expect("tempdir");
        // Nothing listens on port 9 of loopback (discard is never enabled on these machines).
        let url = "http://127.0.0.1:9/pkg.tgz";
        let err = download_with(&local_agent(), url, &integrity_of(b""), &dir.path().join("pkg.tgz"), &NoProgress)
            .expect_err("refused");
        assert!(err.to_string().contains(url), "{err}");
        assert_eq!(fs::read_dir(dir.path()).expect("dir").count(), 0);
    }

    #[test]
    fn system_ca_bundle_is_found() {
        // Every supported host has one of the bundles; without it downloads behind a
        // TLS-inspecting proxy fail with "UnknownIssuer".
        assert!(matches!(system_root_certs(), ureq::tls::RootCerts::Specific(_)));
    }

    #[test]
    fn plain_progress_prints_a_few_lines() {
        let p = StderrProgress::with_tty(false);
        p.phase("downloading test");
        for done in (0..=1000).step_by(10) {
            p.bytes(done, Some(1000));
        }
        p.bytes(5, None);
        p.bytes(5, Some(0));
        p.done("test ready");
        let out = p.captured.lock().expect("lock").clone();
        assert_eq!(
            out,
            "downloading test\n  25%: 0.0 MB / 0.0 MB\n  50%: 0.0 MB / 0.0 MB\n  \
             75%: 0.0 MB / 0.0 MB\n  100%: 0.0 MB / 0.0 MB\ntest ready\n"
        );
        assert!(!out.contains('\r'));
    }

    #[test]
    fn tty_progress_redraws_one_line() {
        let p = StderrProgress::with_tty(true);
        p.phase("downloading test");
        p.bytes(500_000, Some(1_000_000));
        p.bytes(600_000, Some(1_000_000)); // within 100 ms: skipped
        p.bytes(1_000_000, Some(1_000_000)); // the end is always drawn
        p.done("test ready");
        let out = p.captured.lock().expect("lock").clone();
        assert_eq!(
            out,
            "\r\x1b[2Kdownloading test\r\x1b[2Kdownloading test: 0.5 MB / 1.0 MB (50%)\
             \r\x1b[2Kdownloading test: 1.0 MB / 1.0 MB (100%)\r\x1b[2Ktest ready\n"
        );
    }
}
