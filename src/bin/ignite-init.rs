//! `ignite-init`: PID 1 of every sandbox. Starts the runtime, forwards signals, reaps
//! orphans, and reports exec time, exit status and rusage on a private descriptor (fd 3)
//! that the sandboxed program never inherits. Linked statically: it runs in any rootfs.
//!
//! When the host passes a release pipe (fd 4), the entrypoint kills whatever the program
//! left behind, reports, and then waits for the host to close that pipe before it exits:
//! the container and its cgroup stay until the host has read the final counters.
//!
//! The program's stdout and stderr pipes arrive as fds 5 and 6; the entrypoint makes them its
//! own stdout and stderr, so output reaches the host directly (not through the OCI runtime's
//! copy) and is complete when the exit is reported. Its stdin pipe arrives as fd 7 and becomes
//! its stdin: the request's bytes, then end of file.
//!
//! Right before the exec it applies what the program may start (`--spawn`, see
//! `ignite::sandbox::spawn_guard`): a seccomp filter stacked on the OCI runtime's profile, or Landlock
//! execute rules. The program is exec'd with arguments pinned at secret addresses, the one
//! exec the filter lets through. In audit mode with spawning off (`--spawn none-audited`) it
//! stacks nothing and reports those addresses instead: ignite's seccomp listener denies every
//! exec and fork but the runtime's start (see `ignite::sandbox::audit::gate`).
//!
//! A warm sandbox (`--wait-job`) is started ahead of its job: after its set-up and the
//! confinement check the entrypoint reports `ready` and blocks on the job pipe (fd 8) for one
//! job message (the input, the request's arguments and variables, and the backstop). Only then does it arm the backstop and start the
//! program, exactly as a cold run does. End of file on the job pipe without a job means the
//! sandbox is discarded: it exits 0 without starting anything.
//!
//! Usage: `ignite-init [--kill-after-ms N] --spawn any|none|none-audited|no-exec|commands [--allow-exec PATH]...
//! [--wait-job] -- PROGRAM [ARGS...]`

// No unwrap/expect outside tests: every `cargo clippy` refuses them (CI denies warnings).
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitCode};

use ignite::sandbox::abi::{
    INPUT_FILE_PATH, INPUT_FILE_VAR, INPUT_VAR, JOB_FD, RELEASE_FD, REPORT_FD, STDERR_FD, STDIN_FD, STDOUT_FD,
    WAIT_JOB_FLAG,
};
use ignite::sandbox::init_proto::{InitEvent, JobMessage, MAX_JOB_BYTES};
use ignite::sandbox::spawn_guard::{ALLOW_EXEC_FLAG, SPAWN_FLAG, SpawnRule};
use ignite::sys::{monotonic_ns, take_inherited_fd};
use nix::sys::resource::{UsageWho, getrusage};
use nix::sys::signal::{SigSet, Signal, kill};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

/// Signals the entrypoint forwards to the runtime instead of acting on them.
const FORWARDED: &[Signal] = &[
    Signal::SIGTERM,
    Signal::SIGINT,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGWINCH,
];

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let mut kill_after_ms: Option<u64> = None;
    let mut spawn_mode: Option<String> = None;
    let mut allow_exec: Vec<String> = Vec::new();
    let mut wait_job = false;
    let mut argv: Vec<String> = Vec::new();
    while let Some(a) = args.next() {
        match a.as_str() {
            "--kill-after-ms" => kill_after_ms = args.next().and_then(|v| v.parse().ok()),
            SPAWN_FLAG => spawn_mode = args.next(),
            ALLOW_EXEC_FLAG => match args.next() {
                Some(path) => allow_exec.push(path),
                None => return fail(&format!("{ALLOW_EXEC_FLAG} needs a path")),
            },
            WAIT_JOB_FLAG => wait_job = true,
            "--" => {
                argv = args.collect();
                break;
            }
            other => return fail(&format!("unexpected argument {other:?}")),
        }
    }
    let Some((program, fixed_args)) = argv.split_first() else {
        return fail("usage: ignite-init [--kill-after-ms N] --spawn RULE [--allow-exec PATH]... -- PROGRAM [ARGS...]");
    };
    let spawn = match SpawnRule::from_args(spawn_mode.as_deref(), allow_exec) {
        Ok(rule) => rule,
        Err(e) => return fail(&e),
    };

    // The host's output pipes become our stdout and stderr, and so the program's: written
    // straight to ignite, never through the OCI runtime's copy.
    for fd in [STDOUT_FD, STDERR_FD] {
        let Some(pipe) = take_inherited_fd(fd) else { continue };
        let taken = if fd == STDOUT_FD { nix::unistd::dup2_stdout(&pipe) } else { nix::unistd::dup2_stderr(&pipe) };
        if let Err(e) = taken {
            return fail(&format!("failed to take the output pipe on fd {fd}: {e}"));
        }
    }
    // The stdin pipe becomes ours, and so the program's; the descriptor itself is closed here.
    if let Some(pipe) = take_inherited_fd(STDIN_FD)
        && let Err(e) = nix::unistd::dup2_stdin(&pipe)
    {
        return fail(&format!("failed to take the stdin pipe on fd {STDIN_FD}: {e}"));
    }

    // Not dumpable: the program runs as the same uid and must not reach our fd 3
    // through /proc/1/fd or ptrace-like access.
    if let Err(e) = nix::sys::prctl::set_dumpable(false) {
        return fail(&format!("failed to clear the dumpable flag: {e}"));
    }
    let mut report = take_inherited_fd(REPORT_FD).map(std::fs::File::from);
    let mut release = take_inherited_fd(RELEASE_FD).map(std::fs::File::from);
    let job_pipe = if wait_job {
        match take_inherited_fd(JOB_FD) {
            Some(fd) => Some(std::fs::File::from(fd)),
            None => return fail(&format!("{WAIT_JOB_FLAG} needs the job pipe on fd {JOB_FD}")),
        }
    } else {
        None
    };
    // O_CLOEXEC: the runtime and everything it starts never see these descriptors.
    for f in report.iter().chain(release.iter()).chain(job_pipe.iter()) {
        let fd = std::os::fd::AsFd::as_fd(f);
        if let Err(e) = nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC)) {
            return fail(&format!("failed to mark a private descriptor close-on-exec: {e}"));
        }
    }
    let mut emit = |ev: InitEvent| {
        if let Some(f) = report.as_mut() {
            // A failed write means the supervisor is gone; the run goes on regardless.
            let _ = f.write_all(ev.to_line().as_bytes());
        }
    };

    // Block the signals we handle synchronously; the child is given an empty mask explicitly
    // (a blocked mask is inherited across fork and exec).
    let mut handled = SigSet::empty();
    handled.add(Signal::SIGCHLD);
    handled.add(Signal::SIGALRM);
    for s in FORWARDED {
        handled.add(*s);
    }
    if let Err(e) = handled.thread_block() {
        return fail(&format!("failed to block signals: {e}"));
    }
    let problems = ignite::sandbox::confinement::violations();
    if !problems.is_empty() {
        let message = format!("refusing to start the program: the sandbox is not confined ({})", problems.join("; "));
        emit(InitEvent::SpawnFailed { message: message.clone() });
        return fail(&message);
    }

    // A warm sandbox waits here, set up and confined, with no alarm armed: the backstop
    // counts from the handover, like a cold run's from its start.
    let mut job_env = Vec::new();
    let mut rest = fixed_args.to_vec();
    if let Some(mut pipe) = job_pipe {
        emit(InitEvent::Ready);
        let mut bytes = Vec::new();
        if let Err(e) = (&mut pipe).take(MAX_JOB_BYTES as u64 + 1).read_to_end(&mut bytes) {
            let message = format!("failed to read the job: {e}");
            emit(InitEvent::SpawnFailed { message: message.clone() });
            return fail(&message);
        }
        drop(pipe);
        if bytes.is_empty() {
            // Discarded by the pool: nothing was started, nothing to report.
            return ExitCode::SUCCESS;
        }
        match JobMessage::parse(&bytes) {
            Ok(job) => {
                kill_after_ms = Some(job.kill_after_ms);
                if job.input_file {
                    job_env.push((INPUT_FILE_VAR.into(), INPUT_FILE_PATH.into()));
                } else {
                    job_env.push((INPUT_VAR.into(), job.input.into()));
                }
                // The request's variables never replace one the spec set (the engine refused
                // those already; a duplicate name would leave which one wins to the runtime).
                if let Some(name) = job.env.keys().find(|name| std::env::var_os(name).is_some()) {
                    let message = format!("refusing the job: its variable {name} is already set by the sandbox");
                    emit(InitEvent::SpawnFailed { message: message.clone() });
                    return fail(&message);
                }
                job_env.extend(job.env.into_iter().map(|(k, v)| (k.into(), v.into())));
                rest.extend(job.args);
            }
            Err(e) => {
                let message = format!("refusing the job: {e}");
                emit(InitEvent::SpawnFailed { message: message.clone() });
                return fail(&message);
            }
        }
    }
    if let Some(ms) = kill_after_ms {
        // Backstop if the host-side supervisor dies: stop everything after the deadline.
        nix::unistd::alarm::set(u32::try_from(ms.div_ceil(1000)).unwrap_or(u32::MAX).max(1));
    }

    // Everything the child needs is prepared here, before the fork: between fork and exec it
    // only makes system calls. A rule that cannot be enforced stops the run.
    let env = std::env::vars_os().chain(job_env);
    let confined = match ignite::sandbox::spawn_guard::prepare(&spawn, program, &rest, env) {
        Ok(c) => c,
        Err(e) => {
            let message = format!("refusing to start the program: {e}");
            emit(InitEvent::SpawnFailed { message: message.clone() });
            return fail(&message);
        }
    };

    if spawn == SpawnRule::NoSpawnAudited {
        // No filter of our own: ignite's listener answers the exec, and knows it by these.
        emit(InitEvent::Pins { pins: confined.pins() });
    }
    emit(InitEvent::Exec { mono_ns: monotonic_ns() });
    let mut command = Command::new(program);
    command.args(&rest).process_group(0);
    ignite::sys::unblock_signals_on_exec(&mut command);
    // Last: it execs the pinned copy of the same program, arguments and environment.
    ignite::sys::exec_confined_on_spawn(&mut command, confined);
    let spawned = command.spawn();
    // Unmaps our copy of the pinned arguments: nothing in this process needs them any more.
    drop(command);
    let child = match spawned {
        Ok(c) => c,
        Err(e) => {
            let message = format!("failed to start {program}: {e}");
            emit(InitEvent::SpawnFailed { message: message.clone() });
            eprintln!("ignite-init: {message}");
            return ExitCode::from(127);
        }
    };
    let child_pid = Pid::from_raw(child.id() as i32);

    loop {
        let sig = match handled.wait() {
            Ok(s) => s,
            Err(_) => continue,
        };
        match sig {
            Signal::SIGCHLD => {
                if let Some(status) = reap(child_pid) {
                    let (exit_code, signal) = match status {
                        WaitStatus::Exited(_, code) => (Some(code), None),
                        WaitStatus::Signaled(_, s, _) => (None, Some(s as i32)),
                        _ => (None, None),
                    };
                    if release.is_some() {
                        // We linger after the program: nothing it started may keep running
                        // (or writing output) meanwhile. As PID 1 of the namespace, -1
                        // reaches every other process in it.
                        let _ = kill(Pid::from_raw(-1), Signal::SIGKILL);
                        reap_all();
                    }
                    let usage = getrusage(UsageWho::RUSAGE_CHILDREN).ok();
                    let us = |t: nix::sys::time::TimeVal| (t.tv_sec() as u64) * 1_000_000 + t.tv_usec() as u64;
                    emit(InitEvent::Exit {
                        mono_ns: monotonic_ns(),
                        exit_code,
                        signal,
                        user_us: usage.map_or(0, |u| us(u.user_time())),
                        sys_us: usage.map_or(0, |u| us(u.system_time())),
                        max_rss_kb: usage.map_or(0, |u| u.max_rss().max(0) as u64),
                    });
                    if let Some(r) = release.as_mut() {
                        // Until the host closes the pipe (or dies): EOF either way.
                        let mut byte = [0u8; 1];
                        let _ = std::io::Read::read(r, &mut byte);
                    }
                    // Exiting as PID 1 tears down the namespace: leftovers are killed.
                    let code = exit_code.unwrap_or_else(|| 128 + signal.unwrap_or(0));
                    return ExitCode::from(code.clamp(0, 255) as u8);
                }
            }
            Signal::SIGALRM => {
                let _ = kill(Pid::from_raw(-child_pid.as_raw()), Signal::SIGKILL);
                let _ = kill(child_pid, Signal::SIGKILL);
            }
            other => {
                let _ = kill(child_pid, other);
            }
        }
    }
}

/// Reaps every exited child (orphans are re-parented to PID 1); returns the runtime's
/// status once it has exited.
fn reap(child: Pid) -> Option<WaitStatus> {
    let mut found = None;
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) | Err(_) => return found,
            Ok(status) => {
                if status.pid() == Some(child) && matches!(status, WaitStatus::Exited(..) | WaitStatus::Signaled(..)) {
                    found = Some(status);
                }
            }
        }
    }
}

/// Waits for every remaining child (blocking) until none is left.
fn reap_all() {
    while waitpid(None, None).is_ok() {}
}

fn fail(msg: &str) -> ExitCode {
    eprintln!("ignite-init: {msg}");
    ExitCode::from(125)
}
