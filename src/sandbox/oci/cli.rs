//! Driver for runtimes with runc's command line (runc, crun, youki): `--root` under
//! ignite's state dir, `--log` in JSON, errors carrying the runtime's own message.

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use oci_spec::runtime::{LinuxNamespaceType, Spec};

use nix::sys::signal::Signal;

use super::{ContainerState, CreateIo, Foreground, OciError, OciKind, OciRuntime};

/// What a failed command that logged and printed nothing is said to have done (followed by how
/// it ended, when that is known).
pub const NO_MESSAGE: &str = "failed without a message";

#[derive(Debug, Clone)]
pub struct CliRuntime {
    kind: OciKind,
    binary: PathBuf,
    /// The runtime's own state directory (`--root`), private to ignite.
    root: PathBuf,
    /// Directory for per-container JSON logs (`<id>.log`).
    log_dir: PathBuf,
    /// The `ignite` binary, for the hooks a runtime needs (see [`super::hook`]).
    hook_binary: Option<PathBuf>,
    /// `--systemd-cgroup`: cgroups are transient scopes systemd creates (see
    /// [`crate::sandbox::cgroup::CgroupDriver`]).
    systemd_cgroup: bool,
    /// Rootless mode: the user's runtime directory, given to the runtime as `XDG_RUNTIME_DIR`
    /// (its systemd driver finds the user's manager there, its bus socket `bus`), whatever
    /// the caller's environment had (`sudo -u`, `su` may leave it unset).
    user_runtime_dir: Option<PathBuf>,
}

impl CliRuntime {
    pub fn new(kind: OciKind, binary: PathBuf, root: PathBuf, log_dir: PathBuf) -> Self {
        CliRuntime { kind, binary, root, log_dir, hook_binary: None, systemd_cgroup: false, user_runtime_dir: None }
    }

    /// Names the `ignite` binary the runtime runs as a hook; youki cannot run sandboxes
    /// without it (its new network namespaces keep `lo` down).
    pub fn with_hook_binary(mut self, ignite: PathBuf) -> Self {
        self.hook_binary = Some(ignite);
        self
    }

    /// Runs every command with `--systemd-cgroup` (a global option of runc, crun and youki
    /// alike), so that create, kill and delete all go through systemd.
    pub fn with_systemd_cgroup(mut self, on: bool) -> Self {
        self.systemd_cgroup = on;
        self
    }

    /// Rootless mode: the user's runtime directory, given to every command as `XDG_RUNTIME_DIR`.
    pub fn with_user_runtime_dir(mut self, dir: Option<PathBuf>) -> Self {
        self.user_runtime_dir = dir;
        self
    }

    pub fn log_path(&self, id: &str) -> PathBuf {
        self.log_dir.join(format!("{id}.log"))
    }

    fn base(&self, id: Option<&str>) -> std::process::Command {
        let mut cmd = std::process::Command::new(&self.binary);
        cmd.arg("--root").arg(&self.root);
        if self.systemd_cgroup {
            cmd.arg("--systemd-cgroup");
        }
        if let Some(dir) = &self.user_runtime_dir {
            cmd.env("XDG_RUNTIME_DIR", dir);
        }
        if let Some(id) = id {
            cmd.arg("--log").arg(self.log_path(id)).arg("--log-format").arg("json");
        }
        cmd.stdin(Stdio::null());
        // youki would append a backtrace to its errors (and to ignite's messages) when the
        // caller's environment asks Rust programs for one.
        cmd.env("RUST_BACKTRACE", "0").env("RUST_LIB_BACKTRACE", "0");
        cmd
    }

    /// Runs a short command to completion, mapping failures to the runtime's message.
    async fn run(&self, op: &'static str, id: &str, cmd: std::process::Command) -> Result<Vec<u8>, OciError> {
        let mut cmd = tokio::process::Command::from(cmd);
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let log_start = self.log_len(id);
        let out = cmd.output().await.map_err(|source| self.spawn_err(source))?;
        if out.status.success() {
            return Ok(out.stdout);
        }
        Err(self.failure(op, id, log_start, &String::from_utf8_lossy(&out.stderr)))
    }

    /// The container's stdin: a pipe without a writer, so that reading it gives EOF at once
    /// under every runtime. runc's foreground `run` relays stdio through pipes of its own;
    /// youki hands its own stdio to the container as it is, and /dev/null there would be a
    /// descriptor of a host file in the sandbox.
    fn empty_stdin(&self) -> Result<Stdio, OciError> {
        let (read, _write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
            .map_err(|e| self.spawn_err(std::io::Error::from_raw_os_error(e as i32)))?;
        Ok(Stdio::from(read))
    }

    /// `<runtime> create|run --bundle B --pid-file B/init.pid [--preserve-fds N] ID`, with an
    /// empty stdin and the `extra_fds` passed as fds 3, 4, … of the container's init.
    fn container_command(
        &self,
        op: &str,
        id: &str,
        bundle: &Path,
        extra_fds: &[std::os::fd::OwnedFd],
    ) -> Result<std::process::Command, OciError> {
        let mut cmd = self.base(Some(id));
        cmd.arg(op).arg("--bundle").arg(bundle).arg("--pid-file").arg(bundle.join("init.pid"));
        cmd.stdin(self.empty_stdin()?);
        if !extra_fds.is_empty() {
            cmd.arg("--preserve-fds").arg(extra_fds.len().to_string());
        }
        cmd.arg(id);
        crate::sys::pass_fds(&mut cmd, extra_fds);
        Ok(cmd)
    }

    fn spawn_err(&self, source: std::io::Error) -> OciError {
        OciError::Spawn { binary: self.binary.display().to_string(), source }
    }

    /// Current size of a container's log, so that a failure reads only its own lines.
    fn log_len(&self, id: &str) -> u64 {
        std::fs::metadata(self.log_path(id)).map_or(0, |m| m.len())
    }

    /// Builds the error for a failed command from what it appended to the runtime's JSON
    /// log (its own words), falling back to what it printed on stderr.
    fn failure(&self, op: &'static str, id: &str, log_start: u64, stderr: &str) -> OciError {
        let from_log = std::fs::read(self.log_path(id))
            .ok()
            .and_then(|t| t.get(log_start as usize..).map(|b| String::from_utf8_lossy(b).into_owned()))
            .and_then(|t| explain(self.kind, &t));
        let message = from_log
            .or_else(|| stderr.lines().rev().find(|l| !l.trim().is_empty()).map(|l| l.trim().to_string()))
            .unwrap_or_else(|| NO_MESSAGE.to_string());
        if op != "create" && (message.contains("does not exist") || message.contains("not found")) {
            return OciError::NotFound { runtime: self.name().to_string(), id: id.to_string() };
        }
        OciError::Command { runtime: self.name().to_string(), op, id: id.to_string(), message }
    }
}

/// The last error-level message in a runtime's JSON log. runc and crun write
/// `{"level":"error","msg":…}`; youki writes tracing's flattened JSON,
/// `{"level":"ERROR","message":…,"err":…}`, with the cause in a field of its own.
pub fn last_log_error(log: &str) -> Option<String> {
    log_errors(log).last()
}

/// The error-level messages of a runtime's JSON log, oldest first.
fn log_errors(log: &str) -> impl DoubleEndedIterator<Item = String> + '_ {
    log.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| {
            v.get("level")
                .and_then(|x| x.as_str())
                .is_some_and(|l| l.eq_ignore_ascii_case("error") || l.eq_ignore_ascii_case("fatal"))
        })
        .filter_map(|v| {
            let text = |key: &str| v.get(key).and_then(|m| m.as_str()).filter(|m| !m.is_empty());
            let msg = text("msg").or_else(|| text("message"))?;
            match text("err").or_else(|| text("error")) {
                Some(cause) if !msg.contains(cause) => Some(format!("{msg}: {cause}")),
                _ => Some(msg.to_string()),
            }
        })
}

/// What a failed command said, from its part of the JSON log. runc and crun log one error,
/// the reason. youki logs the chain from the root cause up to "error in executing command",
/// each layer wrapping the one before it less precisely: the first says what went wrong,
/// the last which step it broke.
fn explain(kind: OciKind, log: &str) -> Option<String> {
    match kind {
        OciKind::Youki => {
            let mut errors = log_errors(log);
            let first = errors.next()?;
            match errors.last() {
                Some(last) if last != first => Some(format!("{}: {first}", summary(&last))),
                _ => Some(summary(&first).to_string()),
            }
        }
        OciKind::Runc | OciKind::Crun => last_log_error(log),
    }
}

/// A message without the backtrace Rust runtimes may append to it.
fn summary(message: &str) -> &str {
    message.split("\n\nStack backtrace:").next().unwrap_or(message).trim_end()
}

impl OciRuntime for CliRuntime {
    fn name(&self) -> &str {
        self.kind.as_str()
    }

    fn adapt_spec<'a>(&self, spec: &'a Spec) -> Result<Cow<'a, Spec>, OciError> {
        // A spec that joins an existing network namespace (a granted network) gets it set up
        // by ignite; a new one is empty, and youki leaves its loopback down.
        let new_netns = spec
            .linux()
            .as_ref()
            .and_then(|l| l.namespaces().as_ref())
            .is_some_and(|ns| ns.iter().any(|n| n.typ() == LinuxNamespaceType::Network && n.path().is_none()));
        match (self.kind, &self.hook_binary) {
            (OciKind::Youki, _) if !new_netns => Ok(Cow::Borrowed(spec)),
            (OciKind::Youki, Some(ignite)) => Ok(Cow::Owned(super::hook::with_loopback_hook(spec, ignite)?)),
            (OciKind::Youki, None) => Err(OciError::Output {
                runtime: self.name().to_string(),
                op: "create",
                message: "youki needs ignite's loopback hook, and no ignite binary was given for it".into(),
            }),
            (OciKind::Runc | OciKind::Crun, _) => Ok(Cow::Borrowed(spec)),
        }
    }

    async fn create(&self, id: &str, bundle: &Path, io: CreateIo) -> Result<u32, OciError> {
        let pid_file = bundle.join("init.pid");
        let mut cmd = self.container_command("create", id, bundle, &io.extra_fds)?;
        // The container's init inherits these: they are its stdout and stderr.
        cmd.stdout(Stdio::from(io.stdout)).stderr(Stdio::from(io.stderr));
        let log_start = self.log_len(id);
        let mut child = tokio::process::Command::from(cmd).spawn().map_err(|source| self.spawn_err(source))?;
        // Our copies of the extra fds must close now, or their readers never see EOF.
        drop(io.extra_fds);
        let status = child.wait().await.map_err(|source| self.spawn_err(source))?;
        if !status.success() {
            return Err(self.failure("create", id, log_start, ""));
        }
        let text = std::fs::read_to_string(&pid_file).map_err(|e| OciError::Output {
            runtime: self.name().to_string(),
            op: "create",
            message: format!("failed to read pid file {}: {e}", pid_file.display()),
        })?;
        text.trim().parse::<u32>().map_err(|e| OciError::Output {
            runtime: self.name().to_string(),
            op: "create",
            message: format!("pid file {} holds {:?}: {e}", pid_file.display(), text),
        })
    }

    fn run(&self, id: &str, bundle: &Path, io: CreateIo) -> Result<Foreground, OciError> {
        let mut cmd = self.container_command("run", id, bundle, &io.extra_fds)?;
        cmd.stdout(Stdio::from(io.stdout)).stderr(Stdio::from(io.stderr));
        // Own process group: a Ctrl-C at the terminal reaches ignite, which decides; the
        // runtime would otherwise forward it into the container on its own.
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let log_start = self.log_len(id);
        let child = tokio::process::Command::from(cmd).spawn().map_err(|source| self.spawn_err(source))?;
        drop(io.extra_fds);
        Ok(Foreground { child, log_start })
    }

    fn launch_failure(&self, id: &str, fg: &Foreground, status: Option<std::process::ExitStatus>) -> OciError {
        let mut e = self.failure("run", id, fg.log_start, "");
        if let (OciError::Command { message, .. }, Some(status)) = (&mut e, status)
            && message == NO_MESSAGE
        {
            use std::os::unix::process::ExitStatusExt;
            let how = match (status.code(), status.signal()) {
                (Some(code), _) => format!("it exited with status {code}"),
                (None, Some(sig)) => format!("it was killed by signal {sig}"),
                (None, None) => format!("{status}"),
            };
            *message = format!("{NO_MESSAGE}: {how}");
        }
        e
    }

    async fn start(&self, id: &str) -> Result<(), OciError> {
        let mut cmd = self.base(Some(id));
        cmd.arg("start").arg(id);
        self.run("start", id, cmd).await.map(drop)
    }

    async fn kill(&self, id: &str, signal: Signal) -> Result<(), OciError> {
        let mut cmd = self.base(Some(id));
        cmd.arg("kill").arg(id).arg(signal.as_str().trim_start_matches("SIG"));
        self.run("kill", id, cmd).await.map(drop)
    }

    async fn delete(&self, id: &str, force: bool) -> Result<(), OciError> {
        let mut cmd = self.base(Some(id));
        cmd.arg("delete");
        if force {
            cmd.arg("--force");
        }
        cmd.arg(id);
        self.run("delete", id, cmd).await.map(drop)
    }

    async fn state(&self, id: &str) -> Result<ContainerState, OciError> {
        let mut cmd = self.base(None);
        cmd.arg("state").arg(id);
        let out = self.run("state", id, cmd).await?;
        serde_json::from_slice(&out).map_err(|e| OciError::Output {
            runtime: self.name().to_string(),
            op: "state",
            message: e.to_string(),
        })
    }

    async fn list(&self) -> Result<Vec<ContainerState>, OciError> {
        if self.kind == OciKind::Youki {
            return self.list_by_state().await;
        }
        let mut cmd = self.base(None);
        cmd.arg("list").arg("--format").arg("json");
        let out = self.run("list", "", cmd).await?;
        // runc prints `null` when it has no containers, crun `[]`.
        let list: Option<Vec<ContainerState>> = serde_json::from_slice(&out).map_err(|e| OciError::Output {
            runtime: self.name().to_string(),
            op: "list",
            message: e.to_string(),
        })?;
        Ok(list.unwrap_or_default())
    }
}

impl CliRuntime {
    /// youki's `list` prints a table only (it ignores `--format`), so the containers are
    /// read the way it reads them itself: one directory per container under `--root`, each
    /// asked for its `state`. A root that does not exist yet holds no containers.
    async fn list_by_state(&self) -> Result<Vec<ContainerState>, OciError> {
        let entries = match std::fs::read_dir(&self.root) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => {
                return Err(OciError::Output {
                    runtime: self.name().to_string(),
                    op: "list",
                    message: format!("failed to read {}: {e}", self.root.display()),
                });
            }
        };
        let mut ids: Vec<String> = entries
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        ids.sort();
        let mut list = Vec::with_capacity(ids.len());
        for id in ids {
            match self.state(&id).await {
                Ok(state) => list.push(state),
                // Removed between the directory listing and the question.
                Err(OciError::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(list)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn last_error_from_json_log() {
        let log = "{\"level\":\"info\",\"msg\":\"x\"}\nnot json\n{\"level\":\"error\",\"msg\":\"container_linux.go: starting container process caused: exec: \\\"/nope\\\": no such file\"}\n{\"level\":\"debug\",\"msg\":\"y\"}\n";
        assert_eq!(
            last_log_error(log).unwrap(),
            "container_linux.go: starting container process caused: exec: \"/nope\": no such file"
        );
        assert_eq!(last_log_error("{\"level\":\"info\",\"msg\":\"x\"}"), None);
    }

    #[test]
    fn youki_log_gives_root_cause_and_failed_step() {
        // Lines as youki 0.7.0 writes them (tracing's flattened JSON).
        let log = r#"{"timestamp":"t","level":"DEBUG","message":"started","target":"youki"}
{"timestamp":"t","level":"ERROR","message":"failed to canonicalize \"/x/passwd\": No such file or directory (os error 2)","target":"libcontainer::rootfs::mount"}
{"timestamp":"t","level":"ERROR","message":"failed to prepare rootfs","err":"Mount(Io(NotFound))","target":"libcontainer::process::init::process"}
{"timestamp":"t","level":"ERROR","message":"error in executing command: failed to create container\n\nStack backtrace:\n   0: <unknown>","target":"youki"}
"#;
        assert_eq!(
            explain(OciKind::Youki, log).unwrap(),
            "error in executing command: failed to create container: failed to canonicalize \"/x/passwd\": No such file or directory (os error 2)"
        );
        assert_eq!(
            last_log_error(log).unwrap(),
            "error in executing command: failed to create container\n\nStack backtrace:\n   0: <unknown>"
        );
        let one = r#"{"level":"ERROR","message":"failed to prepare rootfs","err":"Mount(Io(NotFound))"}"#;
        assert_eq!(explain(OciKind::Youki, one).unwrap(), "failed to prepare rootfs: Mount(Io(NotFound))");
        // crun's JSON log is runc's shape.
        let crun = r#"{"msg": "cgroups in hybrid mode not supported, drop all controllers from cgroupv2", "level": "error", "time": "t"}"#;
        assert_eq!(
            explain(OciKind::Crun, crun).unwrap(),
            "cgroups in hybrid mode not supported, drop all controllers from cgroupv2"
        );
        assert_eq!(explain(OciKind::Youki, "{\"level\":\"INFO\",\"message\":\"x\"}"), None);
    }

    /// A fake runtime built from a shell script: records its argv, writes a JSON log
    /// error for `start`, prints `null` for `list`.
    fn fake(dir: &Path) -> CliRuntime {
        let script = dir.join("fake-runc");
        std::fs::write(
            &script,
            r#"#!/bin/sh
echo "$@" >> "$(dirname "$0")/argv"
log=""; while [ $# -gt 0 ]; do case "$1" in --log) log="$2"; shift 2;; --root|--log-format) shift 2;; *) break;; esac; done
case "$1" in
  start) echo '{"level":"error","msg":"cannot start a container that has stopped"}' >> "$log"; echo "time=x level=error" >&2; exit 1;;
  list) echo null;;
  state) echo '{"id":"c1","pid":42,"status":"running","ociVersion":"1.0.2"}';;
  kill) echo "container does not exist" >&2; exit 1;;
  delete) exit 0;;
esac
"#,
        )
        .unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        CliRuntime::new(OciKind::Runc, script, dir.join("root"), dir.to_path_buf())
    }

    /// A runtime that records its argv and answers like `kind` would: crun lists `[]`, youki
    /// prints a table whatever `--format` says, and its state for the containers under --root.
    fn fake_of(dir: &Path, kind: OciKind) -> CliRuntime {
        let script = dir.join(format!("fake-{kind}"));
        std::fs::write(
            &script,
            r#"#!/bin/sh
echo "$@" >> "$(dirname "$0")/argv"
while [ $# -gt 0 ]; do case "$1" in --log|--root|--log-format) shift 2;; *) break;; esac; done
case "$1" in
  list) if [ "__KIND__" = youki ]; then printf 'ID  PID  STATUS  BUNDLE  CREATED  CREATOR\n'; else echo '[]'; fi;;
  state) printf '{"ociVersion":"1.0.2","id":"%s","status":"stopped","bundle":"/b"}\n' "$2";;
  run) cat > "$(dirname "$0")/stdin"; echo "$@" > "$(dirname "$0")/run-argv"; exit 0;;
  *) exit 0;;
esac
"#
            .replace("__KIND__", kind.as_str()),
        )
        .unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        CliRuntime::new(kind, script, dir.join("root"), dir.join("logs"))
    }

    #[tokio::test]
    async fn crun_and_youki_get_the_same_command_lines_and_their_own_list() {
        for kind in [OciKind::Crun, OciKind::Youki] {
            let d = tempfile::tempdir().unwrap();
            let rt = fake_of(d.path(), kind);
            rt.kill("c1", Signal::SIGKILL).await.unwrap();
            rt.delete("c1", true).await.unwrap();
            rt.start("c1").await.unwrap();
            // crun's JSON list; youki's containers are the directories under --root.
            assert!(rt.list().await.unwrap().is_empty(), "{kind}");
            if kind == OciKind::Youki {
                std::fs::create_dir_all(d.path().join("root/c2")).unwrap();
                let list = rt.list().await.unwrap();
                assert_eq!(
                    list.iter().map(|c| (c.id.as_str(), c.status.as_str())).collect::<Vec<_>>(),
                    [("c2", "stopped")]
                );
            }
            let bundle = d.path().join("bundle");
            std::fs::create_dir_all(&bundle).unwrap();
            let (r, w) = nix::unistd::pipe().unwrap();
            let (r2, w2) = nix::unistd::pipe().unwrap();
            let io = CreateIo { stdout: w, stderr: w2, extra_fds: vec![] };
            let mut fg = OciRuntime::run(&rt, "c3", &bundle, io).unwrap();
            assert!(fg.child.wait().await.unwrap().success());
            drop((r, r2));
            let argv = std::fs::read_to_string(d.path().join("argv")).unwrap();
            let root = d.path().join("root").display().to_string();
            let log = |id: &str| format!("--root {root} --log {}/logs/{id}.log --log-format json", d.path().display());
            for line in [
                format!("{} kill c1 KILL", log("c1")),
                format!("{} delete --force c1", log("c1")),
                format!("{} start c1", log("c1")),
                format!("{} run --bundle {} --pid-file {}/init.pid c3", log("c3"), bundle.display(), bundle.display()),
            ] {
                assert!(argv.lines().any(|l| l == line), "{kind}: {line:?} not in\n{argv}");
            }
            if kind == OciKind::Crun {
                assert!(argv.lines().any(|l| l == format!("--root {root} list --format json")), "{argv}");
            } else {
                assert!(!argv.contains(" list"), "youki's table is never asked for: {argv}");
            }
            // The container's stdin is an empty pipe, not a file of the host.
            assert_eq!(std::fs::read(d.path().join("stdin")).unwrap(), b"");
        }
    }

    #[tokio::test]
    async fn the_systemd_driver_puts_systemd_cgroup_on_every_command() {
        for kind in [OciKind::Runc, OciKind::Crun, OciKind::Youki] {
            let d = tempfile::tempdir().unwrap();
            let rt = fake_of(d.path(), kind).with_systemd_cgroup(true);
            rt.kill("c1", Signal::SIGKILL).await.unwrap();
            rt.delete("c1", true).await.unwrap();
            let _ = rt.list().await;
            let argv = std::fs::read_to_string(d.path().join("argv")).unwrap();
            let root = d.path().join("root").display().to_string();
            assert_eq!(argv.lines().count(), if kind == OciKind::Youki { 2 } else { 3 }, "{argv}");
            for line in argv.lines() {
                assert!(line.starts_with(&format!("--root {root} --systemd-cgroup ")), "{kind}: {line}");
            }
        }
    }

    #[tokio::test]
    async fn a_run_that_fails_silently_is_described_by_its_exit_status() {
        let d = tempfile::tempdir().unwrap();
        let script = d.path().join("silent-runc");
        std::fs::write(&script, "#!/bin/sh\nexit 3\n").unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        let rt = CliRuntime::new(OciKind::Runc, script, d.path().join("root"), d.path().to_path_buf());
        let (r, w) = nix::unistd::pipe().unwrap();
        let (r2, w2) = nix::unistd::pipe().unwrap();
        let mut fg =
            OciRuntime::run(&rt, "c1", d.path(), CreateIo { stdout: w, stderr: w2, extra_fds: vec![] }).unwrap();
        let status = fg.child.wait().await.unwrap();
        drop((r, r2));
        let e = rt.launch_failure("c1", &fg, Some(status));
        assert_eq!(e.to_string(), "runc run c1: failed without a message: it exited with status 3");
        assert_eq!(rt.launch_failure("c1", &fg, None).to_string(), "runc run c1: failed without a message");
    }

    #[test]
    fn only_youki_gets_the_loopback_hook_and_only_for_a_new_network_namespace() {
        use oci_spec::runtime::{LinuxNamespaceBuilder, Spec};
        let d = tempfile::tempdir().unwrap();
        let spec = Spec::default();
        let hooked = |rt: &CliRuntime, spec: &Spec| {
            rt.adapt_spec(spec).unwrap().hooks().as_ref().and_then(|h| h.create_runtime().clone()).unwrap_or_default()
        };
        let ignite = PathBuf::from("/usr/local/bin/ignite");
        for kind in [OciKind::Runc, OciKind::Crun] {
            let rt =
                CliRuntime::new(kind, "/x".into(), d.path().into(), d.path().into()).with_hook_binary(ignite.clone());
            assert!(hooked(&rt, &spec).is_empty(), "{kind}");
        }
        let youki = CliRuntime::new(OciKind::Youki, "/x".into(), d.path().into(), d.path().into());
        assert!(youki.adapt_spec(&spec).is_err(), "youki without a hook binary");
        let youki = youki.with_hook_binary(ignite.clone());
        let hooks = hooked(&youki, &spec);
        assert_eq!(hooks.len(), 1);
        assert_eq!(hooks[0].path(), &ignite);
        // A granted network namespace (joined by path) is set up by ignite: no hook.
        let mut joined = spec.clone();
        let mut linux = joined.linux().clone().unwrap();
        let ns = linux
            .namespaces()
            .clone()
            .unwrap()
            .into_iter()
            .map(|n| {
                if n.typ() == LinuxNamespaceType::Network {
                    LinuxNamespaceBuilder::default().typ(n.typ()).path("/proc/1/task/2/ns/net").build().unwrap()
                } else {
                    n
                }
            })
            .collect();
        linux.set_namespaces(Some(ns));
        joined.set_linux(Some(linux));
        assert!(hooked(&youki, &joined).is_empty());
    }

    #[tokio::test]
    async fn driver_maps_runtime_behaviour() {
        let d = tempfile::tempdir().unwrap();
        let rt = fake(d.path());
        let err = rt.start("c1").await.unwrap_err().to_string();
        assert!(err.contains("cannot start a container that has stopped"), "{err}");
        assert!(rt.list().await.unwrap().is_empty());
        let st = rt.state("c1").await.unwrap();
        assert_eq!((st.pid, st.status.as_str()), (42, "running"));
        assert!(matches!(rt.kill("c1", Signal::SIGTERM).await, Err(OciError::NotFound { .. })));
        rt.delete("c1", true).await.unwrap();
        let argv = std::fs::read_to_string(d.path().join("argv")).unwrap();
        assert!(argv.contains("kill c1 TERM"), "{argv}");
        assert!(argv.contains("delete --force c1"), "{argv}");
        assert!(argv.lines().all(|l| l.starts_with("--root ")), "{argv}");
    }

    #[tokio::test]
    async fn missing_binary_is_a_spawn_error() {
        let rt = CliRuntime::new(OciKind::Runc, "/nonexistent/runc".into(), "/tmp/x".into(), "/tmp".into());
        let err = rt.list().await.unwrap_err().to_string();
        assert!(err.contains("/nonexistent/runc"), "{err}");
    }
}
