//! `security.process` as the sandbox's entrypoint enforces it, right before it execs the
//! runtime: which rule a policy means, how the rule travels on the entrypoint's command line
//! (set by ignite in the OCI spec; the program starts after the entrypoint has read it and can
//! neither see it change nor change it), and the seccomp filter and Landlock rules that carry
//! it out.
//!
//! - `allowSpawn: false` → [`SpawnRule::NoSpawn`]: a seccomp filter ([`filter`]) denies fork,
//!   vfork, clone without CLONE_THREAD, execve and execveat with EPERM (clone3 with ENOSYS);
//!   threads (and so Workers) are clones with CLONE_THREAD and pass.
//! - `allowSpawn: false` in audit mode → [`SpawnRule::NoSpawnAudited`]: the entrypoint stacks
//!   nothing (its ERRNO would beat the notification) and reports the pins of its exec to ignite
//!   instead; the OCI runtime's profile notifies every exec and process creation, and ignite's
//!   listener denies them all but the runtime's own start (see [`crate::sandbox::audit::gate`]).
//! - `allowSpawn: true, allowedCommands: []` → [`SpawnRule::NoExec`]: the same filter without
//!   the fork rules: processes may fork, nothing may exec.
//! - `allowSpawn: true, allowedCommands: [paths]` → [`SpawnRule::Commands`]: Landlock grants
//!   the execute right on exactly those files, the runtime's own binary and the dynamic loader
//!   each of them names; any other exec fails with EACCES.
//! - `allowSpawn: true`, no list → [`SpawnRule::Any`]: nothing beyond the sandbox.

pub mod elf;
pub mod filter;

use std::ffi::{CString, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::data::policy::Policy;
use crate::sandbox::bpf::BpfError;
use crate::sys::{self, ConfinedExec, PinnedExec};

/// Entrypoint flag carrying the rule: `--spawn any|none|no-exec|commands`.
pub const SPAWN_FLAG: &str = "--spawn";
/// Entrypoint flag naming one allowed command (repeated; only with `--spawn commands`).
pub const ALLOW_EXEC_FLAG: &str = "--allow-exec";

/// What the program may start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpawnRule {
    /// Any process, any executable in the sandbox.
    Any,
    /// No new process and no exec.
    NoSpawn,
    /// No new process and no exec, enforced by ignite's audit listener (audit mode only).
    NoSpawnAudited,
    /// New processes, but no exec.
    NoExec,
    /// New processes, exec of these files only (absolute paths inside the sandbox).
    Commands(Vec<String>),
}

impl SpawnRule {
    /// The rule a policy's `security.process` means. A policy never pairs `allowSpawn: false`
    /// with a non-empty command list (see [`crate::data::policy`]).
    pub fn from_policy(p: &Policy) -> SpawnRule {
        // (Audit mode turns NoSpawn into NoSpawnAudited: see [`SpawnRule::audited`].)
        match (p.allow_spawn, &p.allowed_commands) {
            (false, _) => SpawnRule::NoSpawn,
            (true, None) => SpawnRule::Any,
            (true, Some(list)) if list.is_empty() => SpawnRule::NoExec,
            (true, Some(list)) => SpawnRule::Commands(list.clone()),
        }
    }

    /// The rule for an audit-mode run: the listener enforces `NoSpawn` (see
    /// [`crate::sandbox::audit::gate`]); every other rule is unchanged.
    pub fn audited(self) -> SpawnRule {
        match self {
            SpawnRule::NoSpawn => SpawnRule::NoSpawnAudited,
            other => other,
        }
    }

    /// Whether the OCI runtime's profile must notify process creation (audit mode's version of
    /// the exec and fork rules, `onlyIn: auditSpawnOff`).
    pub fn notified(&self) -> bool {
        matches!(self, SpawnRule::NoSpawnAudited)
    }

    /// The entrypoint's arguments for this rule.
    pub fn to_args(&self) -> Vec<String> {
        let mode = match self {
            SpawnRule::Any => "any",
            SpawnRule::NoSpawn => "none",
            SpawnRule::NoSpawnAudited => "none-audited",
            SpawnRule::NoExec => "no-exec",
            SpawnRule::Commands(_) => "commands",
        };
        let mut args = vec![SPAWN_FLAG.to_string(), mode.to_string()];
        if let SpawnRule::Commands(list) = self {
            for c in list {
                args.push(ALLOW_EXEC_FLAG.to_string());
                args.push(c.clone());
            }
        }
        args
    }

    /// Parses what [`SpawnRule::to_args`] wrote: the `--spawn` value and every `--allow-exec`
    /// value in order. The entrypoint refuses to start anything without a rule.
    pub fn from_args(mode: Option<&str>, commands: Vec<String>) -> Result<SpawnRule, String> {
        let rule = match mode {
            None => return Err(format!("{SPAWN_FLAG} is required (any, none, none-audited, no-exec or commands)")),
            Some("any") => SpawnRule::Any,
            Some("none") => SpawnRule::NoSpawn,
            Some("none-audited") => SpawnRule::NoSpawnAudited,
            Some("no-exec") => SpawnRule::NoExec,
            Some("commands") => {
                if commands.is_empty() {
                    return Err(format!("{SPAWN_FLAG} commands needs at least one {ALLOW_EXEC_FLAG} PATH"));
                }
                if let Some(bad) = commands.iter().find(|c| !c.starts_with('/')) {
                    return Err(format!("{ALLOW_EXEC_FLAG} {bad:?} is not an absolute path"));
                }
                return Ok(SpawnRule::Commands(commands));
            }
            Some(other) => return Err(format!("unknown {SPAWN_FLAG} value {other:?}")),
        };
        if !commands.is_empty() {
            return Err(format!("{ALLOW_EXEC_FLAG} is only valid with {SPAWN_FLAG} commands"));
        }
        Ok(rule)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum GuardError {
    #[error(
        "security.process.allowedCommands needs Landlock, and {reason}; remove allowedCommands (or list no commands: []) to run on this host"
    )]
    NoLandlock { reason: String },
    #[error("the program {0:?} is not an absolute path")]
    RelativeProgram(String),
    #[error("{what} contains a NUL byte")]
    Nul { what: String },
    #[error("cannot read {path} to find the dynamic loader it needs: {source}")]
    Elf {
        path: PathBuf,
        #[source]
        source: elf::ElfError,
    },
    #[error("allowed command {path} is a directory; list executable files")]
    Directory { path: PathBuf },
    #[error("failed to grant execution of {path}: {source}")]
    Rule {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to set up the Landlock ruleset: {0}")]
    Ruleset(#[source] std::io::Error),
    #[error("failed to prepare the program's exec: {0}")]
    Pin(#[source] std::io::Error),
    #[error("failed to build the process filter: {0}")]
    Bpf(#[from] BpfError),
}

/// The Landlock ABI `allowedCommands` needs: the execute right is in ABI 1, but only ABI 2
/// (Linux 5.19) lets a domain permit renames and links across directories (the refer right);
/// under ABI 1 every such rename would fail with EXDEV.
pub const LANDLOCK_MIN_ABI: u32 = 2;

/// Whether Landlock can enforce `allowedCommands` here, from what
/// `landlock_create_ruleset(NULL, 0, LANDLOCK_CREATE_RULESET_VERSION)` answered: its ABI version
/// or the errno.
pub fn landlock_verdict(abi: Result<u32, i32>) -> Result<u32, GuardError> {
    let reason = match abi {
        Ok(v) if v >= LANDLOCK_MIN_ABI => return Ok(v),
        Ok(v) => format!(
            "this kernel offers Landlock ABI {v}, which cannot allow renames across directories (ABI {LANDLOCK_MIN_ABI}, Linux 5.19, is needed)"
        ),
        Err(libc::ENOSYS) => "this kernel is built without it (CONFIG_SECURITY_LANDLOCK)".to_string(),
        Err(libc::EOPNOTSUPP) => {
            "it is disabled on this host (add landlock to the kernel's lsm= boot parameter)".to_string()
        }
        Err(e) => format!("checking for it failed: {}", std::io::Error::from_raw_os_error(e)),
    };
    Err(GuardError::NoLandlock { reason })
}

/// Checks that this kernel can enforce `rule` (Landlock for a command list). ignite calls it
/// before creating a sandbox, the entrypoint again inside it.
pub fn check_supported(rule: &SpawnRule) -> Result<(), GuardError> {
    if matches!(rule, SpawnRule::Commands(_)) {
        landlock_verdict(sys::landlock_abi_version().map_err(|e| e as i32))?;
    }
    Ok(())
}

/// Everything the entrypoint's child needs to confine itself and exec `program`: the exec's
/// arguments pinned at secret addresses, the filter for those pins, the Landlock ruleset.
/// Called before the fork, so the child only makes system calls.
pub fn prepare(
    rule: &SpawnRule,
    program: &str,
    args: &[String],
    env: impl IntoIterator<Item = (OsString, OsString)>,
) -> Result<ConfinedExec, GuardError> {
    if !program.starts_with('/') {
        return Err(GuardError::RelativeProgram(program.to_string()));
    }
    let cstr = |s: &[u8], what: &str| CString::new(s).map_err(|_| GuardError::Nul { what: what.to_string() });
    let path = cstr(program.as_bytes(), "the program path")?;
    let mut argv = vec![path.clone()];
    for a in args {
        argv.push(cstr(a.as_bytes(), "an argument")?);
    }
    let mut envp = Vec::new();
    for (k, v) in env {
        let mut kv = k.as_bytes().to_vec();
        kv.push(b'=');
        kv.extend_from_slice(v.as_bytes());
        envp.push(cstr(&kv, &format!("environment variable {}", k.to_string_lossy()))?);
    }
    let pinned = PinnedExec::new(path, argv, envp).map_err(GuardError::Pin)?;
    let mode = match rule {
        SpawnRule::NoSpawn => Some(filter::Mode::NoSpawn),
        SpawnRule::NoExec => Some(filter::Mode::NoExec),
        SpawnRule::Any | SpawnRule::Commands(_) | SpawnRule::NoSpawnAudited => None,
    };
    let filter = match mode {
        Some(m) => {
            let [path, argv, envp] = pinned.pins();
            let prog = filter::build(m, filter::Pins { path, argv, envp }, filter::Deny::default())?;
            Some(prog.iter().map(|i| libc::sock_filter { code: i.code, jt: i.jt, jf: i.jf, k: i.k }).collect())
        }
        None => None,
    };
    let landlock = match rule {
        SpawnRule::Commands(list) => {
            check_supported(rule)?;
            let mut files: Vec<&str> = list.iter().map(String::as_str).collect();
            // The entrypoint's own exec of the runtime happens under the ruleset too.
            files.push(program);
            Some(execute_ruleset(&files)?)
        }
        _ => None,
    };
    Ok(ConfinedExec::new(pinned, filter, landlock))
}

/// A Landlock ruleset that grants the execute right on `files` and the loader each names, and
/// on nothing else. It also handles the refer right and grants it on the whole tree: a domain
/// that leaves refer unhandled makes every rename or link across directories fail with EXDEV.
/// A file that does not exist is skipped: it cannot be executed anyway, and one policy can
/// serve several runtimes.
fn execute_ruleset(files: &[&str]) -> Result<std::os::fd::OwnedFd, GuardError> {
    let ruleset = sys::landlock_ruleset(sys::LANDLOCK_ACCESS_FS_EXECUTE | sys::LANDLOCK_ACCESS_FS_REFER)
        .map_err(GuardError::Ruleset)?;
    let root = open_path(Path::new("/"))?.ok_or_else(|| GuardError::Ruleset(std::io::ErrorKind::NotFound.into()))?;
    sys::landlock_allow(&ruleset, &root, sys::LANDLOCK_ACCESS_FS_REFER).map_err(GuardError::Ruleset)?;
    let mut granted: Vec<PathBuf> = Vec::new();
    let mut queue: Vec<PathBuf> = files.iter().map(PathBuf::from).collect();
    while let Some(path) = queue.pop() {
        if granted.contains(&path) {
            continue;
        }
        let Some(file) = open_command(&path)? else { continue };
        sys::landlock_allow(&ruleset, &file, sys::LANDLOCK_ACCESS_FS_EXECUTE)
            .map_err(|source| GuardError::Rule { path: path.clone(), source })?;
        let mut f = std::fs::File::open(&path).map_err(|e| GuardError::Elf { path: path.clone(), source: e.into() })?;
        if let Some(loader) =
            elf::interpreter(&mut f).map_err(|source| GuardError::Elf { path: path.clone(), source })?
        {
            queue.push(PathBuf::from(loader));
        }
        granted.push(path);
    }
    Ok(ruleset)
}

/// Opens `path` as an `O_PATH` descriptor (no read right needed), following links so the
/// rule lands on the file itself; `None` when it does not exist.
fn open_path(path: &Path) -> Result<Option<std::fs::File>, GuardError> {
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::OpenOptions::new().read(true).custom_flags(libc::O_PATH).open(path) {
        Ok(f) => Ok(Some(f)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(GuardError::Rule { path: path.to_path_buf(), source }),
    }
}

/// [`open_path`] for a command: a directory is refused (a rule on it would allow everything
/// beneath).
fn open_command(path: &Path) -> Result<Option<std::fs::File>, GuardError> {
    let Some(file) = open_path(path)? else { return Ok(None) };
    let meta = file.metadata().map_err(|source| GuardError::Rule { path: path.to_path_buf(), source })?;
    if meta.is_dir() {
        return Err(GuardError::Directory { path: path.to_path_buf() });
    }
    Ok(Some(file))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(allow_spawn: bool, commands: Option<&[&str]>) -> Policy {
        Policy {
            network: false,
            read_only: true,
            tmp_mb: 64,
            writable_mb: 64,
            allow_spawn,
            allowed_commands: commands.map(|c| c.iter().map(|s| s.to_string()).collect()),
            max_processes: 128,
            output_max_bytes: 1 << 20,
        }
    }

    #[test]
    fn policies_map_to_rules() {
        assert_eq!(SpawnRule::from_policy(&policy(false, None)), SpawnRule::NoSpawn);
        assert_eq!(SpawnRule::from_policy(&policy(false, Some(&[]))), SpawnRule::NoSpawn);
        assert_eq!(SpawnRule::from_policy(&policy(true, None)), SpawnRule::Any);
        assert_eq!(SpawnRule::from_policy(&policy(true, Some(&[]))), SpawnRule::NoExec);
        assert_eq!(
            SpawnRule::from_policy(&policy(true, Some(&["/usr/local/bin/bun"]))),
            SpawnRule::Commands(vec!["/usr/local/bin/bun".into()])
        );
    }

    /// Splits arguments the way the entrypoint's parser does.
    fn reparse(args: &[String]) -> Result<SpawnRule, String> {
        let (mut mode, mut commands) = (None, Vec::new());
        let mut it = args.iter();
        while let Some(a) = it.next() {
            match a.as_str() {
                SPAWN_FLAG => mode = it.next().map(String::as_str),
                ALLOW_EXEC_FLAG => commands.extend(it.next().cloned()),
                other => panic!("unexpected {other}"),
            }
        }
        SpawnRule::from_args(mode, commands)
    }

    #[test]
    fn rules_round_trip_through_the_entrypoint_arguments() {
        for rule in [
            SpawnRule::Any,
            SpawnRule::NoSpawn,
            SpawnRule::NoSpawnAudited,
            SpawnRule::NoExec,
            SpawnRule::Commands(vec!["/usr/local/bin/bun".into(), "/app/tool,with,commas".into()]),
        ] {
            assert_eq!(reparse(&rule.to_args()), Ok(rule.clone()), "{rule:?}");
        }
        assert_eq!(SpawnRule::NoSpawn.to_args(), ["--spawn", "none"]);
    }

    #[test]
    fn inconsistent_arguments_are_refused() {
        assert!(SpawnRule::from_args(None, vec![]).unwrap_err().contains("--spawn is required"));
        assert!(SpawnRule::from_args(Some("commands"), vec![]).unwrap_err().contains("at least one"));
        assert!(SpawnRule::from_args(Some("none"), vec!["/bin/x".into()]).unwrap_err().contains("only valid"));
        assert!(SpawnRule::from_args(Some("commands"), vec!["bin/x".into()]).unwrap_err().contains("absolute"));
        assert!(SpawnRule::from_args(Some("all"), vec![]).unwrap_err().contains("unknown"));
    }

    #[test]
    fn missing_landlock_is_a_clear_refusal() {
        assert_eq!(landlock_verdict(Ok(7)).unwrap(), 7);
        let msg = |r| landlock_verdict(r).unwrap_err().to_string();
        assert!(msg(Err(libc::ENOSYS)).contains("built without it"), "{}", msg(Err(libc::ENOSYS)));
        assert!(msg(Err(libc::EOPNOTSUPP)).contains("lsm="), "{}", msg(Err(libc::EOPNOTSUPP)));
        assert!(msg(Err(libc::EPERM)).contains("allowedCommands needs Landlock"));
        assert!(msg(Ok(1)).contains("ABI 1, which cannot allow renames"), "{}", msg(Ok(1)));
        assert_eq!(landlock_verdict(Ok(2)).unwrap(), 2);
        // Rules that need no Landlock never ask for it.
        for rule in [SpawnRule::Any, SpawnRule::NoSpawn, SpawnRule::NoExec] {
            assert!(check_supported(&rule).is_ok());
        }
    }

    #[test]
    fn commands_must_be_files_and_missing_ones_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let err = open_command(dir.path()).unwrap_err();
        assert!(matches!(err, GuardError::Directory { .. }), "{err}");
        assert!(err.to_string().contains("is a directory; list executable files"), "{err}");
        assert!(open_command(&dir.path().join("absent")).unwrap().is_none());
        assert!(open_command(Path::new("/bin/sh")).unwrap().is_some());
    }

    #[test]
    fn the_program_must_be_absolute() {
        let err = prepare(&SpawnRule::NoSpawn, "bun", &[], Vec::new()).unwrap_err();
        assert!(matches!(err, GuardError::RelativeProgram(_)), "{err}");
        let err = prepare(&SpawnRule::NoSpawn, "/bin/true", &["a\0b".into()], Vec::new()).unwrap_err();
        assert!(matches!(err, GuardError::Nul { .. }), "{err}");
    }
}
