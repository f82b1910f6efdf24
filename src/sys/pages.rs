//! Page-cache residency of files (cachestat, mincore) and the page size: how much of a
//! bundle would have to be read from disk.

use std::os::fd::AsRawFd;

/// How many pages of `file` are in the page cache, from `cachestat(2)` (one call, about 0.1 ms
/// for a 120 MiB file); `None` on kernels older than 6.5, which do not have it, or where it is not
/// permitted for this file.
pub fn cached_pages(file: &std::fs::File) -> std::io::Result<Option<u64>> {
    // The same number on every architecture (the unified table of new system calls); libc does
    // not name it for x86_64 glibc yet.
    const SYS_CACHESTAT: libc::c_long = 451;
    #[repr(C)]
    struct Range {
        off: u64,
        len: u64,
    }
    #[repr(C)]
    #[derive(Default)]
    struct Stat {
        nr_cache: u64,
        nr_dirty: u64,
        nr_writeback: u64,
        nr_evicted: u64,
        nr_recently_evicted: u64,
    }
    let range = Range { off: 0, len: 0 }; // len 0: to the end of the file
    let mut stat = Stat::default();
    // SAFETY: cachestat reads `range` and writes one `struct cachestat` into `stat`; both are
    // live, properly laid out (#[repr(C)], the kernel's field order) and not aliased.
    let rc =
        unsafe { libc::syscall(SYS_CACHESTAT, file.as_raw_fd(), &range as *const Range, &mut stat as *mut Stat, 0u32) };
    if rc == 0 {
        return Ok(Some(stat.nr_cache));
    }
    let err = std::io::Error::last_os_error();
    match err.raw_os_error() {
        Some(libc::ENOSYS | libc::EPERM) => Ok(None),
        _ => Err(err),
    }
}

/// Ranges of pages (`start..end`, in units of [`page_size`]) of the first `len` bytes of `file`
/// that are not in the page cache, from `mincore(2)` over a temporary read-only mapping. Mapping
/// touches no page: nothing is read or charged by the check itself.
pub fn uncached_pages(file: &std::fs::File, len: u64) -> std::io::Result<Vec<std::ops::Range<u64>>> {
    let pages = len.div_ceil(page_size());
    if pages == 0 {
        return Ok(Vec::new());
    }
    let map_len = usize::try_from(len).map_err(|_| std::io::Error::from_raw_os_error(libc::EFBIG))?;
    let mut residency = vec![0u8; pages as usize];
    // SAFETY: a fresh shared read-only mapping of an open file, at an address the kernel
    // chooses; nothing in this process aliases it, and it is unmapped below on every path.
    let addr =
        unsafe { libc::mmap(std::ptr::null_mut(), map_len, libc::PROT_READ, libc::MAP_SHARED, file.as_raw_fd(), 0) };
    if addr == libc::MAP_FAILED {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `addr..addr+map_len` is the mapping made above, and `residency` holds one byte for
    // each of its pages, as mincore requires.
    let rc = unsafe { libc::mincore(addr, map_len, residency.as_mut_ptr()) };
    let err = std::io::Error::last_os_error();
    // SAFETY: unmaps exactly the mapping made above; no reference into it exists.
    unsafe { libc::munmap(addr, map_len) };
    if rc != 0 {
        return Err(err);
    }
    let mut missing = Vec::new();
    let mut start: Option<u64> = None;
    for (i, byte) in residency.iter().enumerate() {
        let i = i as u64;
        match (byte & 1 == 0, start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                missing.push(s..i);
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        missing.push(s..pages);
    }
    Ok(missing)
}

/// The size of a memory page.
pub fn page_size() -> u64 {
    // SAFETY: sysconf only reads a system constant.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if size > 0 { size as u64 } else { 4096 }
}
