//! Scrubbing ignite's own secrets out of its process environment once they are read.

/// Removes `name` from this process's environment (ignite's secrets, once read): its value is
/// overwritten where it lies (the initial environment block is what `/proc/PID/environ` and a
/// core dump show), then the variable is unset, so no child process inherits it. Refused once
/// the process has a second thread, which could be reading the environment at the same moment.
pub fn scrub_env_var(name: &str) -> std::io::Result<()> {
    let threads = std::fs::read_dir("/proc/self/task")?.count();
    if threads != 1 {
        return Err(std::io::Error::other(format!("the process already runs {threads} threads")));
    }
    let c_name = std::ffi::CString::new(name).map_err(std::io::Error::other)?;
    // SAFETY: the process has a single thread (checked just above; only this thread could
    // start another), so nothing reads or changes the environment concurrently. `getenv`
    // returns null or a pointer to the NUL-terminated value inside the environment (the
    // initial block on the stack, or a string `setenv` allocated), which is writable; exactly
    // `strlen` bytes of it are overwritten, its terminator is kept, and the variable is then
    // unset, after which nothing refers to that memory as an environment value.
    unsafe {
        let value = libc::getenv(c_name.as_ptr());
        if !value.is_null() {
            let len = libc::strlen(value);
            std::ptr::write_bytes(value.cast::<u8>(), b'*', len);
        }
        std::env::remove_var(name);
    }
    Ok(())
}
