//! Removes a run's cgroup directories (leftovers of crashed runs) with rmdir only.

use std::fs;
use std::io;
use std::path::Path;
use std::thread;
use std::time::Duration;

use super::{CgroupError, CgroupPaths};

/// A cgroup stays busy for a moment after its last task was killed (exit and reaping are not
/// instant); ten tries 20 ms apart cover that without stalling a cleanup pass for long.
const RMDIR_ATTEMPTS: u32 = 10;
const RMDIR_RETRY_DELAY: Duration = Duration::from_millis(20);

/// Removes every directory of `paths` with rmdir(2): cgroupfs directories vanish with their
/// interface files, and a non-cgroup directory with real files in it is refused (ENOTEMPTY)
/// rather than emptied. A directory that is already gone is fine; EBUSY (tasks still exiting)
/// is retried briefly. Every directory is attempted; the first failure is returned.
///
/// Blocks for up to ~200 ms per busy directory: call it from a blocking context.
pub fn remove_cgroup_dirs(paths: &CgroupPaths) -> Result<(), CgroupError> {
    let mut first_error = None;
    for dir in paths.dirs() {
        if let Err(e) = rmdir_retrying(dir)
            && first_error.is_none()
        {
            first_error = Some(e);
        }
    }
    first_error.map_or(Ok(()), Err)
}

fn rmdir_retrying(dir: &Path) -> Result<(), CgroupError> {
    let mut attempt = 1;
    loop {
        match fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && attempt < RMDIR_ATTEMPTS => {
                attempt += 1;
                thread::sleep(RMDIR_RETRY_DELAY);
            }
            Err(source) => {
                return Err(CgroupError::Remove { path: dir.to_owned(), source });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removes_empty_dirs_and_tolerates_missing_ones() {
        let root = tempfile::tempdir().unwrap();
        let dir = |name: &str| root.path().join(name);
        for name in ["memory/r", "cpuacct/r", "cpu/r"] {
            fs::create_dir_all(dir(name)).unwrap();
        }
        let paths = CgroupPaths::V1 {
            memory: dir("memory/r"),
            cpuacct: dir("cpuacct/r"),
            pids: dir("pids/r"),
            other: vec![dir("cpu/r")],
        };
        remove_cgroup_dirs(&paths).unwrap();
        for name in ["memory/r", "cpuacct/r", "cpu/r"] {
            assert!(!dir(name).exists(), "{name}");
            assert!(dir(name).parent().unwrap().exists(), "parents stay");
        }
        // Running it again (a second cleanup pass) is fine.
        remove_cgroup_dirs(&paths).unwrap();
    }

    #[test]
    fn never_deletes_files_but_removes_the_rest() {
        let root = tempfile::tempdir().unwrap();
        let not_a_cgroup = root.path().join("data");
        fs::create_dir(&not_a_cgroup).unwrap();
        fs::write(not_a_cgroup.join("precious"), "keep me").unwrap();
        let empty = root.path().join("empty");
        fs::create_dir(&empty).unwrap();
        let paths = CgroupPaths::V1 {
            memory: not_a_cgroup.clone(),
            cpuacct: empty.clone(),
            pids: empty.clone(),
            other: vec![],
        };
        let err = remove_cgroup_dirs(&paths).unwrap_err();
        let CgroupError::Remove { path, source } = &err else {
            panic!("expected Remove, got {err:?}");
        };
        assert_eq!(path, &not_a_cgroup);
        assert_eq!(source.raw_os_error(), Some(libc::ENOTEMPTY));
        assert!(err.to_string().starts_with("failed to remove cgroup directory"));
        assert!(not_a_cgroup.join("precious").exists());
        assert!(!empty.exists(), "later directories are still attempted");
    }

    #[test]
    fn v2_single_dir() {
        let root = tempfile::tempdir().unwrap();
        let unified = root.path().join("ignite/r");
        fs::create_dir_all(&unified).unwrap();
        remove_cgroup_dirs(&CgroupPaths::V2 { unified: unified.clone() }).unwrap();
        assert!(!unified.exists());
    }
}
