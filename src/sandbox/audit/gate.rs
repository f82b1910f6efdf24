//! Audit mode with `allowSpawn: false`: which notified process-creation calls (`process`
//! events) the audit listener lets run, and which it denies.
//!
//! In this mode the OCI runtime's profile notifies fork, vfork, clone without CLONE_THREAD,
//! execve and execveat, and the entrypoint stacks no filter of its own (its ERRNO would win
//! over the notification, and the kernel allows one listener per filter chain). The listener
//! denies every such call with EPERM, except three, in this order:
//!
//! 1. the OCI runtime's exec of the entrypoint: an execve by the container's pid 1 before it
//!    has forked (runc loads the filter right before that exec); it may come again, because the
//!    kernel drops a "continue" that races with a signal and restarts the call;
//! 2. the entrypoint's fork of the runtime's process: a process-creating call by pid 1 (the
//!    entrypoint never forks again);
//! 3. that child's exec of the runtime: an execve by a child of pid 1 whose three register
//!    arguments equal the addresses the entrypoint pinned its path, argv and envp at (sent over
//!    its private report channel before the fork, see [`crate::sandbox::init_proto`]).
//!
//! Each decision rests on pids the kernel reports (checked against `/proc` while the call is
//! still pending) and register values; nothing is read from the sandbox's memory, so the usual
//! objection to answering "continue" (the program can change what a pointer points to after
//! the check) does not arise. No code from the sandbox runs before step 3 completes: until
//! then the container holds only the OCI runtime's init and the entrypoint.

/// `CLONE_THREAD`, and the namespace flags the profile never lets clone create.
const CLONE_THREAD: u64 = 0x0001_0000;
const CLONE_NAMESPACES: u64 = 0x7e02_0000;

/// What the kernel and `/proc` say about the calling thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caller {
    /// The thread id as the host numbers it (`seccomp_notif.pid`).
    pub host_pid: u32,
    /// The innermost `NSpid`: the pid inside the sandbox.
    pub sandbox_pid: Option<u32>,
    /// `PPid`, in the host's numbering (the listener runs in the host's pid namespace).
    pub parent_host_pid: Option<u32>,
}

/// The listener's answer to one process-creation call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Let the call run (`SECCOMP_USER_NOTIF_FLAG_CONTINUE`); not an event.
    Continue(Step),
    /// EPERM, and a `process` event.
    Deny,
    /// Everything matches the runtime's exec except that the pins have not arrived yet: ask
    /// again once they have, or with `may_wait: false` after a bounded wait.
    NeedPins,
}

/// The three calls that may run, in the order they happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    EntrypointExec,
    RuntimeFork,
    RuntimeExec,
}

/// The state of one run: which of the three allowed calls have happened.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SpawnGate {
    /// The container's pid 1 in host numbering, once seen (it cannot change while the
    /// container exists).
    init: Option<u32>,
    entrypoint_exec: bool,
    runtime_fork: bool,
    runtime_exec: bool,
}

enum Call {
    Execve,
    Other,
    NewProcess,
}

fn classify(syscall: &str, args: &[u64; 6]) -> Call {
    match syscall {
        "execve" => Call::Execve,
        "fork" | "vfork" => Call::NewProcess,
        "clone" if args[0] & (CLONE_THREAD | CLONE_NAMESPACES) == 0 => Call::NewProcess,
        _ => Call::Other,
    }
}

impl SpawnGate {
    /// Decides one notified call. `pins` are the entrypoint's pinned path, argv and envp
    /// addresses if they have arrived; `may_wait` says whether [`Decision::NeedPins`] is still
    /// an acceptable answer. A `Continue` is recorded as used before it is returned: the same
    /// step never passes twice, whether or not the answer reaches the kernel.
    pub fn decide(
        &mut self,
        syscall: &str,
        args: &[u64; 6],
        caller: &Caller,
        pins: Option<[u64; 3]>,
        may_wait: bool,
    ) -> Decision {
        let call = classify(syscall, args);
        if caller.sandbox_pid == Some(1) {
            if *self.init.get_or_insert(caller.host_pid) != caller.host_pid {
                return Decision::Deny;
            }
            return match call {
                // Again too, as long as pid 1 has not forked: the kernel can drop a "continue"
                // it was given (a signal that interrupts the wait while the answer is being
                // written makes the call restart; Go preempts runc's threads with SIGURG), and
                // the restarted exec is notified anew. Before the fork pid 1 is only ever the
                // OCI runtime's init or the entrypoint, so this lets no sandbox code run.
                Call::Execve if !self.runtime_fork => {
                    self.entrypoint_exec = true;
                    Decision::Continue(Step::EntrypointExec)
                }
                Call::NewProcess if !self.runtime_fork => {
                    self.runtime_fork = true;
                    Decision::Continue(Step::RuntimeFork)
                }
                _ => Decision::Deny,
            };
        }
        let child_of_init = self.init.is_some() && caller.parent_host_pid == self.init;
        if !matches!(call, Call::Execve) || !child_of_init || !self.runtime_fork || self.runtime_exec {
            return Decision::Deny;
        }
        match pins {
            Some(p) if [args[0], args[1], args[2]] == p => {
                self.runtime_exec = true;
                Decision::Continue(Step::RuntimeExec)
            }
            Some(_) => Decision::Deny,
            None if may_wait => Decision::NeedPins,
            None => Decision::Deny,
        }
    }
}

impl SpawnGate {
    /// Gives `step` back when the kernel refused the "continue" (the call was interrupted by a
    /// signal and will be notified again, or its thread died): the call did not run, so the
    /// same shape may pass when it comes back.
    pub fn undo(&mut self, step: Step) {
        match step {
            Step::EntrypointExec => self.entrypoint_exec = false,
            Step::RuntimeFork => self.runtime_fork = false,
            Step::RuntimeExec => self.runtime_exec = false,
        }
    }
}

/// The caller's `NSpid` (innermost) and `PPid` from its `/proc/<pid>/status`.
pub fn parse_status(status: &str) -> (Option<u32>, Option<u32>) {
    let field = |name: &str| status.lines().find_map(|l| l.strip_prefix(name));
    let nspid = field("NSpid:").and_then(|l| l.split_whitespace().last()?.parse().ok());
    let ppid = field("PPid:").and_then(|l| l.trim().parse().ok());
    (nspid, ppid)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PINS: [u64; 3] = [0x7f3a_1000_0000, 0x7f3a_1000_1000, 0x7f3a_1000_2000];
    const INIT: u32 = 4100;
    const CHILD: u32 = 4107;
    const FORK_FLAGS: u64 = 0x0120_0011; // CLONE_CHILD_SETTID|CLONE_CHILD_CLEARTID|SIGCHLD
    const THREAD_FLAGS: u64 = 0x003d_0f00;

    fn init() -> Caller {
        Caller { host_pid: INIT, sandbox_pid: Some(1), parent_host_pid: Some(4000) }
    }
    fn child() -> Caller {
        Caller { host_pid: CHILD, sandbox_pid: Some(7), parent_host_pid: Some(INIT) }
    }
    fn exec_args(p: [u64; 3]) -> [u64; 6] {
        [p[0], p[1], p[2], 0, 0, 0]
    }
    fn fork_args() -> [u64; 6] {
        [FORK_FLAGS, 0, 0, 0, 0, 0]
    }

    /// A gate that has let the OCI runtime exec the entrypoint and the entrypoint fork.
    fn forked() -> SpawnGate {
        let mut g = SpawnGate::default();
        assert_eq!(
            g.decide("execve", &[1, 2, 3, 0, 0, 0], &init(), None, true),
            Decision::Continue(Step::EntrypointExec)
        );
        assert_eq!(g.decide("clone", &fork_args(), &init(), None, true), Decision::Continue(Step::RuntimeFork));
        g
    }

    #[test]
    fn a_normal_start_passes_exactly_three_calls() {
        let mut g = forked();
        assert_eq!(
            g.decide("execve", &exec_args(PINS), &child(), Some(PINS), true),
            Decision::Continue(Step::RuntimeExec)
        );
        // From here on nothing passes: not the same exec again, not a fork by anyone.
        for caller in [init(), child()] {
            assert_eq!(g.decide("execve", &exec_args(PINS), &caller, Some(PINS), true), Decision::Deny);
            for (name, args) in [("clone", fork_args()), ("fork", [0; 6]), ("vfork", [0; 6])] {
                assert_eq!(g.decide(name, &args, &caller, Some(PINS), true), Decision::Deny, "{name}");
            }
        }
    }

    #[test]
    fn the_entrypoint_forks_once_and_never_execs_after_forking() {
        let mut g = forked();
        // A second fork by pid 1, in any form.
        for (name, args) in [("clone", fork_args()), ("fork", [0; 6]), ("vfork", [0; 6])] {
            assert_eq!(g.decide(name, &args, &init(), Some(PINS), true), Decision::Deny, "{name}");
        }
        // Pid 1 execs only before forking (that exec is the OCI runtime starting it).
        assert_eq!(g.decide("execve", &exec_args(PINS), &init(), Some(PINS), true), Decision::Deny);
        // The runtime still gets its one exec.
        assert_eq!(
            g.decide("execve", &exec_args(PINS), &child(), Some(PINS), true),
            Decision::Continue(Step::RuntimeExec)
        );

        // Before the fork pid 1 is the OCI runtime's init or the entrypoint: its exec passes
        // again, because the kernel can drop the first "continue" (a signal interrupting the
        // wait while the answer is written) and notify the restarted exec; execveat never.
        let mut g = SpawnGate::default();
        assert!(matches!(g.decide("execve", &[0; 6], &init(), None, true), Decision::Continue(_)));
        assert_eq!(g.decide("execve", &[0; 6], &init(), None, true), Decision::Continue(Step::EntrypointExec));
        assert_eq!(g.decide("execveat", &[0; 6], &init(), None, true), Decision::Deny);
        // Not from another pid 1 (another process claiming the container's pid 1).
        let other = Caller { host_pid: init().host_pid + 1, ..init() };
        assert_eq!(g.decide("execve", &[0; 6], &other, None, true), Decision::Deny);
    }

    #[test]
    fn only_the_pinned_exec_by_the_child_of_pid_1_passes() {
        // One pin off by one bit, in every bit of every argument.
        for arg in 0..3 {
            for bit in 0..64 {
                let mut args = exec_args(PINS);
                args[arg] ^= 1 << bit;
                assert_eq!(forked().decide("execve", &args, &child(), Some(PINS), true), Decision::Deny, "{arg}/{bit}");
            }
        }
        // Pins in the wrong positions; execveat even with the pins in place.
        let swapped = [PINS[1], PINS[0], PINS[2], 0, 0, 0];
        assert_eq!(forked().decide("execve", &swapped, &child(), Some(PINS), true), Decision::Deny);
        assert_eq!(forked().decide("execveat", &exec_args(PINS), &child(), Some(PINS), true), Decision::Deny);
        // The right pins from the wrong process: not a child of pid 1, unknown parent, a
        // grandchild, or pid 1's host pid reused under another sandbox pid.
        for caller in [
            Caller { parent_host_pid: Some(CHILD), ..child() },
            Caller { parent_host_pid: None, ..child() },
            Caller { sandbox_pid: None, ..child() },
            Caller { host_pid: INIT, sandbox_pid: Some(2), parent_host_pid: Some(INIT) },
        ] {
            let mut g = forked();
            let d = g.decide("execve", &exec_args(PINS), &caller, Some(PINS), true);
            if caller.parent_host_pid == Some(INIT) {
                // Any child of pid 1 is "the child" (the entrypoint has only one); it still
                // needs the pins, and it gets the one exec only once.
                assert_eq!(d, Decision::Continue(Step::RuntimeExec), "{caller:?}");
                assert_eq!(g.decide("execve", &exec_args(PINS), &caller, Some(PINS), true), Decision::Deny);
            } else {
                assert_eq!(d, Decision::Deny, "{caller:?}");
            }
        }
        // A process claiming pid 1 from another host pid.
        let mut g = forked();
        let impostor = Caller { host_pid: CHILD, ..init() };
        assert_eq!(g.decide("clone", &fork_args(), &impostor, Some(PINS), true), Decision::Deny);
    }

    #[test]
    fn nothing_passes_out_of_order_or_without_pins() {
        // The child's exec before pid 1 forked.
        let mut g = SpawnGate::default();
        assert_eq!(g.decide("execve", &exec_args(PINS), &child(), Some(PINS), true), Decision::Deny);
        // Pins not there yet: wait, then deny.
        let mut g = forked();
        assert_eq!(g.decide("execve", &exec_args(PINS), &child(), None, true), Decision::NeedPins);
        assert_eq!(g.decide("execve", &exec_args(PINS), &child(), None, false), Decision::Deny);
        // Forks by anyone other than pid 1, and thread or namespace clones by pid 1.
        let mut g = forked();
        for (name, args) in [("clone", fork_args()), ("fork", [0; 6]), ("vfork", [0; 6])] {
            assert_eq!(g.decide(name, &args, &child(), Some(PINS), true), Decision::Deny, "{name}");
        }
        for flags in [THREAD_FLAGS, FORK_FLAGS | 0x1000_0000, FORK_FLAGS | 0x2000_0000] {
            let mut g = SpawnGate::default();
            assert_eq!(g.decide("clone", &[flags, 0, 0, 0, 0, 0], &init(), None, true), Decision::Deny, "{flags:#x}");
        }
        // Any other syscall is never continued.
        for name in ["clone3", "mount", "ptrace", "socket", "execveat"] {
            assert_eq!(SpawnGate::default().decide(name, &[0; 6], &init(), Some(PINS), true), Decision::Deny);
        }
    }

    #[test]
    fn a_continue_the_kernel_refused_can_be_retried_by_the_same_shape_only() {
        // runc's exec interrupted by a signal (Go preempts its threads with SIGURG).
        let mut g = SpawnGate::default();
        let step = match g.decide("execve", &[0; 6], &init(), None, true) {
            Decision::Continue(s) => s,
            d => panic!("{d:?}"),
        };
        g.undo(step);
        assert_eq!(g.decide("execve", &[0; 6], &init(), None, true), Decision::Continue(Step::EntrypointExec));
        // The child's exec: given back, it still needs the pins and the right caller.
        let mut g = forked();
        assert_eq!(
            g.decide("execve", &exec_args(PINS), &child(), Some(PINS), true),
            Decision::Continue(Step::RuntimeExec)
        );
        g.undo(Step::RuntimeExec);
        let mut off = exec_args(PINS);
        off[2] ^= 1;
        assert_eq!(g.decide("execve", &off, &child(), Some(PINS), true), Decision::Deny);
        assert_eq!(g.decide("clone", &fork_args(), &child(), Some(PINS), true), Decision::Deny);
        assert_eq!(
            g.decide("execve", &exec_args(PINS), &child(), Some(PINS), true),
            Decision::Continue(Step::RuntimeExec)
        );
    }

    #[test]
    fn status_gives_the_sandbox_pid_and_the_parent() {
        let status = "Name:\tbun\nPPid:\t41230\nNSpid:\t41233\t2\n";
        assert_eq!(parse_status(status), (Some(2), Some(41230)));
        assert_eq!(parse_status("Name:\tx\n"), (None, None));
    }
}
