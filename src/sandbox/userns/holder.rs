//! A user namespace with the rootless maps, held by a child of ignite for as long as a value
//! lives (see [`crate::sys::spawn_ns_holder`]): what a rootless network's namespaces belong to
//! (`crate::sandbox::netns`), and where ignite itself hands files to a run uid and takes them
//! back ([`chown_tree`]) — as the user, ignite cannot chown to or from its subordinate ids on
//! the host; inside such a namespace it is root over exactly the mapped ids.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::{IdMap, IdMaps, NEWGIDMAP, NEWUIDMAP, RootlessError};

/// Where newuidmap and newgidmap are (found once, like the OCI runtime finds them).
#[derive(Debug, Clone)]
pub struct IdMapTools {
    newuidmap: PathBuf,
    newgidmap: PathBuf,
}

impl IdMapTools {
    /// Looks in `path_env` (a `PATH` value).
    pub fn find(path_env: Option<&std::ffi::OsStr>) -> Result<IdMapTools, RootlessError> {
        let find = |tool: &'static str| {
            path_env
                .and_then(|p| std::env::split_paths(p).map(|d| d.join(tool)).find(|c| c.is_absolute() && c.is_file()))
                .ok_or(RootlessError::NoIdMapTool(tool))
        };
        Ok(IdMapTools { newuidmap: find(NEWUIDMAP)?, newgidmap: find(NEWGIDMAP)? })
    }

    /// In this process's `PATH`.
    pub fn from_env() -> Result<IdMapTools, RootlessError> {
        IdMapTools::find(std::env::var_os("PATH").as_deref())
    }
}

/// What ignite needs to make user namespaces with the rootless maps itself.
#[derive(Debug, Clone)]
pub struct Mapper {
    pub maps: IdMaps,
    pub tools: IdMapTools,
}

#[derive(Debug, thiserror::Error)]
pub enum HolderError {
    #[error("failed to create a user namespace: {0}")]
    Create(std::io::Error),
    #[error("{tool} failed ({status}): {said}; {remedy}", remedy = super::setup_remedy(user))]
    Map { tool: String, status: String, said: String, user: String },
    #[error("failed to run {tool}: {source}")]
    Spawn { tool: String, source: std::io::Error },
    #[error("{path} does not hold the maps ignite asked for")]
    Mismatch { path: String },
    #[error("failed to open or read {what}: {source}")]
    Read { what: String, source: std::io::Error },
    #[error("chown in the user namespace failed on {path} ({status}): {said}")]
    Chown { path: PathBuf, status: String, said: String },
}

/// A user namespace with `maps` (and, with `flags`, other namespaces it owns), held by a child
/// process until dropped; the user namespace is open here too.
pub struct MappedNamespaces {
    process: crate::sys::NsHolder,
    user: OwnedFd,
}

impl MappedNamespaces {
    /// A new user namespace plus `also` (e.g. `CLONE_NEWNET`: a network namespace it owns),
    /// given exactly `maps` by newuidmap/newgidmap, read back and compared.
    pub fn create(also: libc::c_int, mapper: &Mapper) -> Result<MappedNamespaces, HolderError> {
        let (maps, tools) = (&mapper.maps, &mapper.tools);
        let process = crate::sys::spawn_ns_holder(libc::CLONE_NEWUSER | also).map_err(HolderError::Create)?;
        let pid = process.pid();
        for (tool, ranges, file) in
            [(&tools.newuidmap, &maps.uids, "uid_map"), (&tools.newgidmap, &maps.gids, "gid_map")]
        {
            let mut cmd = Command::new(tool);
            cmd.arg(pid.to_string());
            for m in ranges {
                cmd.args([m.container.to_string(), m.host.to_string(), m.size.to_string()]);
            }
            let out = cmd
                .stdin(Stdio::null())
                .output()
                .map_err(|source| HolderError::Spawn { tool: tool.display().to_string(), source })?;
            if !out.status.success() {
                return Err(HolderError::Map {
                    tool: tool.display().to_string(),
                    status: out.status.to_string(),
                    said: String::from_utf8_lossy(&out.stderr).trim().to_string(),
                    user: current_user(),
                });
            }
            let path = format!("/proc/{pid}/{file}");
            let written =
                std::fs::read_to_string(&path).map_err(|source| HolderError::Read { what: path.clone(), source })?;
            if parse_id_map(&written) != *ranges {
                return Err(HolderError::Mismatch { path });
            }
        }
        let user = crate::sys::open_namespace(pid, "user")
            .map_err(|source| HolderError::Read { what: format!("/proc/{pid}/ns/user"), source })?;
        Ok(MappedNamespaces { process, user })
    }

    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// The user namespace, open.
    pub fn user(&self) -> &OwnedFd {
        &self.user
    }

    /// Opens one of the holder's namespaces (`net`, …).
    pub fn open(&self, name: &str) -> Result<OwnedFd, HolderError> {
        crate::sys::open_namespace(self.pid(), name)
            .map_err(|source| HolderError::Read { what: format!("/proc/{}/ns/{name}", self.pid()), source })
    }
}

/// Changes the owner of `paths` (with `recursive`, of everything below them too) to container
/// ids `uid`:`gid` of a user namespace with the mapper's maps: 0 is the user, a run uid its subordinate
/// id. Symbolic links are changed themselves and never followed (`chown -h`, and `-P` when
/// recursive), and inside the namespace only files whose owner is mapped can change at all.
pub fn chown_tree(paths: &[&Path], uid: u32, gid: u32, recursive: bool, mapper: &Mapper) -> Result<(), HolderError> {
    let ns = MappedNamespaces::create(0, mapper)?;
    let mut cmd = Command::new("chown");
    cmd.arg("-h");
    if recursive {
        cmd.args(["-R", "-P"]);
    }
    cmd.arg(format!("{uid}:{gid}")).arg("--").args(paths);
    cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped());
    crate::sys::join_namespaces_on_spawn(&mut cmd, &[(ns.user(), libc::CLONE_NEWUSER)]);
    let out = cmd.output().map_err(|source| HolderError::Spawn { tool: "chown".into(), source })?;
    if !out.status.success() {
        return Err(HolderError::Chown {
            path: paths.first().map(|p| p.to_path_buf()).unwrap_or_default(),
            status: out.status.to_string(),
            said: String::from_utf8_lossy(&out.stderr).lines().take(3).collect::<Vec<_>>().join(" | "),
        });
    }
    Ok(())
}

/// The ranges of a `/proc/<pid>/uid_map` (or `gid_map`): `container host size` per line.
pub fn parse_id_map(text: &str) -> Vec<IdMap> {
    text.lines()
        .filter_map(|line| {
            let mut f = line.split_whitespace().map(str::parse::<u32>);
            match (f.next(), f.next(), f.next(), f.next()) {
                (Some(Ok(container)), Some(Ok(host)), Some(Ok(size)), None) => Some(IdMap { container, host, size }),
                _ => None,
            }
        })
        .collect()
}

/// The user running ignite, by name when it has one (for the set-up remedy).
fn current_user() -> String {
    let uid = nix::unistd::getuid();
    nix::unistd::User::from_uid(uid).ok().flatten().map_or_else(|| uid.to_string(), |u| u.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_id_maps_are_read_as_written() {
        let text = "         0       1000          1\n    200000     100000      65536\n";
        assert_eq!(
            parse_id_map(text),
            vec![
                IdMap { container: 0, host: 1000, size: 1 },
                IdMap { container: 200_000, host: 100_000, size: 65_536 }
            ]
        );
        assert!(parse_id_map("0 1000\n").is_empty());
    }

    #[test]
    fn missing_id_map_tools_are_named_with_their_package() {
        let d = tempfile::tempdir().unwrap();
        let e = IdMapTools::find(Some(d.path().as_os_str())).unwrap_err().to_string();
        assert!(e.contains("`newuidmap` is not in PATH") && e.contains("apt-get install uidmap"), "{e}");
        std::fs::write(d.path().join(NEWUIDMAP), "").unwrap();
        let e = IdMapTools::find(Some(d.path().as_os_str())).unwrap_err().to_string();
        assert!(e.contains("`newgidmap`"), "{e}");
        std::fs::write(d.path().join(NEWGIDMAP), "").unwrap();
        IdMapTools::find(Some(d.path().as_os_str())).unwrap();
    }
}
