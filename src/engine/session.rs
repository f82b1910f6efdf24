//! A session's host resources, as one value: its workspace (a tmpfs of its own under
//! `STATE/sessions/<id>`, its quota enforced by the kernel), the uid that owns it and that
//! every run of the session has, and the mark that says a live server owns it (see
//! [`workdirs`]). Created in that order, released in the reverse one.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use nix::mount::MsFlags;

mod files;

pub use files::{
    FileEntry, FileError, FileErrorKind, FileKind, Listing, MAX_DEPTH as MAX_FILE_DEPTH, MAX_FILE_BYTES,
    MAX_LIST_ENTRIES, MAX_PATH_BYTES as MAX_FILE_PATH_BYTES, Written, check_path,
};

use super::kind::ErrorKind;
use super::runner::Job;
use super::workdirs::{self, OwnerError, SESSIONS_DIR, SessionOwner};
use crate::fsutil::{At, IoError, remove_any};
use crate::sandbox::identity::{self, IdentityError, UidLease};

/// Where a session's runs see its workspace.
pub use crate::sandbox::spec::WORKSPACE_DIR;

/// Files (inodes) a workspace may hold: the byte quota alone would let tiny files exhaust memory.
const MAX_INODES: u64 = 16 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum WorkspaceError {
    /// The operation names the workspace ("create the workspace").
    #[error(transparent)]
    Io(#[from] IoError),
    #[error(transparent)]
    Identity(#[from] IdentityError),
    #[error(transparent)]
    Owner(#[from] OwnerError),
    #[error(transparent)]
    Rootless(#[from] crate::sandbox::userns::Unsupported),
}

impl WorkspaceError {
    /// Every run uid taken by a live run is capacity (retry later); anything else is the host's.
    pub fn kind(&self) -> ErrorKind {
        match self {
            WorkspaceError::Identity(IdentityError::Exhausted { .. }) => ErrorKind::Capacity,
            WorkspaceError::Rootless(_) => ErrorKind::Service,
            _ => ErrorKind::Internal,
        }
    }
}

/// A mounted session workspace with its uid and owner mark. [`Workspace::close`] (or the drop)
/// unmounts it; the uid and the mark are released after that, when the value drops.
#[derive(Debug)]
pub struct Workspace {
    id: String,
    dir: PathBuf,
    /// Its size in MiB, for messages.
    quota_mb: u64,
    unmounted: AtomicBool,
    /// Owns the workspace; every run of the session runs as it. Released after the unmount
    /// (fields drop after `Drop::drop`).
    identity: Arc<UidLease>,
    /// Cancelled when the workspace is closed: the warm pool then removes the sandbox it keeps
    /// parked for the session (see [`Job::session_end`]).
    ended: tokio_util::sync::CancellationToken,
    /// Dropped after the workspace is gone, so no reaper sees a live workspace without it.
    _owner: SessionOwner,
}

fn new_id() -> std::io::Result<String> {
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(hex::encode(bytes))
}

impl Workspace {
    /// Allocates a uid, marks a fresh random id as owned by this process, and mounts a tmpfs of
    /// `quota_mb` MiB owned by the uid at `STATE/sessions/<id>` (nosuid, nodev, noexec, 0700).
    pub fn create(state_root: &Path, quota_mb: u64) -> Result<Workspace, WorkspaceError> {
        const CREATE: &str = "create the workspace";
        if crate::sandbox::userns::is_rootless() {
            return Err(crate::sandbox::userns::SESSIONS.into());
        }
        let root = state_root.join(SESSIONS_DIR);
        std::fs::create_dir_all(&root).at(CREATE, &root)?;
        let identity = Arc::new(identity::allocate(state_root, identity::UID_COUNT)?);
        let id = new_id().at(CREATE, &root)?;
        // Before the workspace exists: a reaper never sees it without its live owner.
        let owner = workdirs::own_session(state_root, &id)?;
        let dir = root.join(&id);
        std::fs::create_dir(&dir).at(CREATE, &dir)?;
        let data = format!(
            "size={}k,nr_inodes={MAX_INODES},mode=0700,uid={},gid={}",
            quota_mb * 1024,
            identity.uid(),
            identity.gid()
        );
        let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
        if let Err(e) = nix::mount::mount(Some("tmpfs"), &dir, Some("tmpfs"), flags, Some(data.as_str())) {
            remove_any(&dir);
            return Err(IoError::new(CREATE, dir, e).into());
        }
        Ok(Workspace {
            id,
            dir,
            quota_mb,
            unmounted: AtomicBool::new(false),
            identity,
            ended: tokio_util::sync::CancellationToken::new(),
            _owner: owner,
        })
    }

    /// The session id the workspace is named by (32 hex digits).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Its mount point on the host.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Bytes in use, as the tmpfs counts them.
    pub fn used_bytes(&self) -> Option<u64> {
        nix::sys::statvfs::statvfs(&self.dir).ok().map(|v| (v.blocks() - v.blocks_free()) * v.fragment_size())
    }

    /// Gives `job` the workspace (mounted at [`WORKSPACE_DIR`]), the session's uid, and the
    /// session's end (which the warm pool watches).
    pub fn attach(&self, job: &mut Job) {
        job.workspace = Some(self.dir.clone());
        job.identity = Some(self.identity.clone());
        job.session_end = Some(self.ended.clone());
    }

    /// Every entry of the workspace, depth first, at most [`MAX_LIST_ENTRIES`] of them and
    /// [`MAX_FILE_DEPTH`] deep (the listing says when it left something out). Links are listed
    /// as links, never followed.
    pub fn list(&self) -> Result<Listing, FileError> {
        files::list(&self.root()?)
    }

    /// The content of the regular file `rel` (a relative path: see [`check_path`]), refused
    /// when it is larger than `max_bytes`, is not a regular file, or lies behind a link.
    pub fn read_file(&self, rel: &str, max_bytes: u64) -> Result<Vec<u8>, FileError> {
        files::read_file(&self.root()?, rel, max_bytes)
    }

    /// Writes `bytes` (at most [`MAX_FILE_BYTES`]) to `rel`, creating missing parent
    /// directories; what it creates belongs to the session's uid (files 0644, directories 0755),
    /// so its programs can change it. An existing file is replaced atomically; a full workspace
    /// is [`FileError::NoSpace`] and leaves the old file as it was.
    pub fn write_file(&self, rel: &str, bytes: &[u8]) -> Result<Written, FileError> {
        files::write_file(&self.root()?, rel, bytes)
    }

    /// Removes `rel`: a file, a link (never its target), or a directory, which must be empty
    /// unless `recursive`.
    pub fn remove(&self, rel: &str, recursive: bool) -> Result<(), FileError> {
        files::remove(&self.root()?, rel, recursive)
    }

    /// The root the file operations work on; none once the workspace is closed.
    fn root(&self) -> Result<files::Root<'_>, FileError> {
        if self.unmounted.load(Ordering::SeqCst) {
            return Err(FileError::Closed);
        }
        Ok(files::Root {
            dir: &self.dir,
            owner: Some((self.identity.uid(), self.identity.gid())),
            quota_mb: self.quota_mb,
            max_files: MAX_INODES,
        })
    }

    /// Unmounts the workspace (detached: a mount still busy goes away once its last user
    /// does) and removes its mount point; later calls do nothing. Call it once the session's
    /// runs are over.
    pub fn close(&self) {
        if !self.unmounted.swap(true, Ordering::SeqCst) {
            // First: a sandbox parked for the session is discarded rather than kept with the
            // workspace (its mount goes away once that sandbox does).
            self.ended.cancel();
            workdirs::unmount_workspace(&self.dir);
        }
    }
}

impl Drop for Workspace {
    fn drop(&mut self) {
        self.close();
    }
}
