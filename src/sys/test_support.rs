//! Helpers for the tests that run filters and rulesets in the real kernel: a forked child
//! with no_new_privs, and small constructors.

/// Runs `f` in a forked child with no_new_privs set and returns its exit code.
pub(super) fn in_child(f: impl FnOnce() -> i32) -> i32 {
    // SAFETY: the child runs `f` and leaves with _exit, never returning into the test
    // harness; glibc keeps malloc usable after fork, which `f` relies on.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        // SAFETY: prctl with these constant arguments only sets a flag on this process.
        let code = if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
            120
        } else {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or(121)
        };
        // SAFETY: leaves the child without running the parent's destructors.
        unsafe { libc::_exit(code) };
    }
    let mut status = 0;
    // SAFETY: waits for the child we just forked; `status` is a live i32.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert!(libc::WIFEXITED(status), "child died: status {status:#x}");
    libc::WEXITSTATUS(status)
}

pub(super) fn cstr(s: &str) -> std::ffi::CString {
    std::ffi::CString::new(s).unwrap()
}

pub(super) fn sh(script: &str) -> (String, Vec<String>) {
    ("/bin/sh".to_string(), vec!["-c".to_string(), script.to_string()])
}
