//! What the command line writes besides command results: stdout that tolerates a reader going
//! away, one-line error text, and the log on stderr.

use std::io::Write;

use anyhow::Context;

/// An error and its causes on one line, each cause said once: many typed errors already include
/// their cause's text in their own message (`failed to read X: <io error>`), and repeating it
/// from the chain would print it twice.
pub(super) fn error_text(err: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in err.chain() {
        let part = cause.to_string();
        if text.contains(&part) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&part);
    }
    text
}

/// stderr for log lines, whose write errors are dropped: a server whose stderr was closed (its
/// supervisor went away) must still drain on SIGTERM, and a failed log write would otherwise be
/// reported by a panic inside whichever task logged.
struct LogWriter(std::io::Stderr);

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let _ = self.0.write_all(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let _ = self.0.flush();
        Ok(())
    }
}

pub(super) fn init_tracing(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("IGNITE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| LogWriter(std::io::stderr()))
        .with_target(false)
        // Escape codes only for a person at a terminal, not in a server's log files.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

/// Writes to stdout; a reader that went away (`| head`) is not an error.
pub(super) fn print_stdout(text: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e).context("failed to write to stdout"),
        _ => Ok(()),
    }
}
