//! The entrypoint's process filter: a seccomp program stacked on the OCI runtime's profile that
//! stops the program from creating processes ([`Mode::NoSpawn`]) or from executing anything
//! ([`Mode::NoExec`]) — except for the one `execve` the entrypoint itself makes to start the
//! runtime.
//!
//! A seccomp filter survives `execve` and has no memory, so "the first exec only" cannot be
//! said directly. Instead the entrypoint's exec is recognised by its three pointer arguments:
//! the entrypoint copies the path, the argv array and the envp array to three pages mapped at
//! random addresses it picks itself, and the filter allows an `execve` only when all three
//! pointers equal those addresses, compared as full 64-bit values. After the exec those pages
//! are gone and nothing in the new program holds their addresses; the program (native code
//! included: FFI, JIT, an addon) would have to guess all three pointers at once — a page out
//! of about 2^34 plus an offset in it, at least 2^43 values each, about 2^132 together. The
//! comparison folds all six 32-bit halves into one value before the single test, so a wrong
//! guess takes the same path through the filter whatever it got right, and reveals nothing
//! (no early exit to time); each guess costs a system call.
//!
//! Audit mode will want to see these attempts: the deny action is one parameter ([`Deny`]),
//! so a later `Deny::Notify` can return `SECCOMP_RET_USER_NOTIF` to a listener handed to
//! ignite. `clone3` stays ENOSYS in any case: libc must fall back to `clone`, whose flags the
//! filter can read.

use crate::sandbox::bpf::{Asm, BpfError, Insn, OFF_ARCH, OFF_NR, Target, off_arg};

/// `AUDIT_ARCH_X86_64`: the only ABI the sandbox's profile allows.
pub const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
/// Syscall numbers with this bit set are the x32 ABI's (same arch value as x86_64).
pub const X32_SYSCALL_BIT: u32 = 0x4000_0000;
/// The one clone flag that makes the new task a thread of the caller's process (the kernel
/// requires CLONE_SIGHAND and CLONE_VM with it, so it always shares the caller's memory).
pub const CLONE_THREAD: u32 = 0x0001_0000;

pub const SECCOMP_RET_ALLOW: u32 = 0x7fff_0000;
pub const SECCOMP_RET_ERRNO: u32 = 0x0005_0000;

/// x86_64 syscall numbers of every way to create a process or run a file.
pub mod nr {
    pub const CLONE: u32 = 56;
    pub const FORK: u32 = 57;
    pub const VFORK: u32 = 58;
    pub const EXECVE: u32 = 59;
    pub const EXECVEAT: u32 = 322;
    pub const CLONE3: u32 = 435;
}

const EPERM: u32 = 1;
const ENOSYS: u32 = 38;

/// What the filter stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `allowSpawn: false`: no fork, vfork, clone without CLONE_THREAD, and no exec.
    NoSpawn,
    /// `allowSpawn: true` with `allowedCommands: []`: processes may fork, nothing may exec.
    NoExec,
}

/// What a denied call gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deny {
    /// Fail with this errno (EPERM: "operation not permitted").
    Errno(u16),
}

impl Deny {
    fn action(self) -> u32 {
        match self {
            Deny::Errno(e) => SECCOMP_RET_ERRNO | u32::from(e),
        }
    }
}

impl Default for Deny {
    fn default() -> Self {
        Deny::Errno(EPERM as u16)
    }
}

/// The argument values of the entrypoint's own `execve` (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pins {
    pub path: u64,
    pub argv: u64,
    pub envp: u64,
}

/// Builds the filter. Every syscall it does not mention is allowed here and left to the
/// OCI runtime's profile (the kernel applies the most restrictive verdict of all filters).
pub fn build(mode: Mode, pins: Pins, deny: Deny) -> Result<Vec<Insn>, BpfError> {
    let mut a = Asm::new();
    // Another ABI (i386 via int 0x80, x32) has its own syscall numbers: deny it outright rather
    // than trust that the numbers below mean the same there.
    a.load(OFF_ARCH).jeq(AUDIT_ARCH_X86_64, Target::Next, Target::To("deny"));
    a.load(OFF_NR).jge(X32_SYSCALL_BIT, Target::To("deny"), Target::Next);
    a.jeq(nr::EXECVE, Target::To("execve"), Target::Next);
    a.jeq(nr::EXECVEAT, Target::To("deny"), Target::Next);
    if mode == Mode::NoSpawn {
        a.jeq(nr::CLONE, Target::To("clone"), Target::Next);
        a.jeq(nr::FORK, Target::To("deny"), Target::Next);
        a.jeq(nr::VFORK, Target::To("deny"), Target::Next);
        a.jeq(nr::CLONE3, Target::To("enosys"), Target::Next);
    }
    a.ret(SECCOMP_RET_ALLOW);

    if mode == Mode::NoSpawn {
        // Only the low 32 bits of clone's flags reach the kernel.
        a.label("clone").load(off_arg(0, false)).jset(CLONE_THREAD, Target::To("allow"), Target::To("deny"));
    }

    // Fold (arg ^ pin) of all six halves into A; zero only when every one matches.
    a.label("execve");
    for (i, pin) in [pins.path, pins.argv, pins.envp].into_iter().enumerate() {
        for hi in [false, true] {
            let half = if hi { (pin >> 32) as u32 } else { pin as u32 };
            a.load(off_arg(i as u32, hi)).xor(half);
            if i > 0 || hi {
                a.or_x();
            }
            a.tax();
        }
    }
    a.jeq(0, Target::To("allow"), Target::To("deny"));

    a.label("allow").ret(SECCOMP_RET_ALLOW);
    a.label("deny").ret(deny.action());
    if mode == Mode::NoSpawn {
        a.label("enosys").ret(SECCOMP_RET_ERRNO | ENOSYS);
    }
    a.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::bpf::{SeccompData, run};

    const PINS: Pins = Pins { path: 0x0000_3a5c_1234_5f17, argv: 0x0000_2b7e_9abc_d008, envp: 0x0000_61f0_0fed_c0a8 };
    const ALLOW: u32 = SECCOMP_RET_ALLOW;
    const DENY: u32 = SECCOMP_RET_ERRNO | EPERM;
    const NOSYS: u32 = SECCOMP_RET_ERRNO | ENOSYS;

    fn call(nr: u32, args: [u64; 6]) -> SeccompData {
        SeccompData { nr, arch: AUDIT_ARCH_X86_64, instruction_pointer: 0x7fff_0000_1000, args }
    }

    fn verdict(mode: Mode, data: &SeccompData) -> u32 {
        let prog = build(mode, PINS, Deny::default()).unwrap();
        run(&prog, data).unwrap().0
    }

    fn exec_args(p: Pins) -> [u64; 6] {
        [p.path, p.argv, p.envp, 0, 0, 0]
    }

    #[test]
    fn no_spawn_denies_every_way_to_a_new_process() {
        let m = Mode::NoSpawn;
        assert_eq!(verdict(m, &call(nr::FORK, [0; 6])), DENY);
        assert_eq!(verdict(m, &call(nr::VFORK, [0; 6])), DENY);
        // fork() in glibc: clone(SIGCHLD | CLONE_CHILD_SETTID | CLONE_CHILD_CLEARTID, ...).
        assert_eq!(verdict(m, &call(nr::CLONE, [0x0120_0011, 0, 0, 0, 0, 0])), DENY);
        // posix_spawn: clone(CLONE_VM | CLONE_VFORK | SIGCHLD).
        assert_eq!(verdict(m, &call(nr::CLONE, [0x4111, 0, 0, 0, 0, 0])), DENY);
        // CLONE_THREAD in the upper half is ignored by the kernel, and so by the filter.
        assert_eq!(verdict(m, &call(nr::CLONE, [u64::from(CLONE_THREAD) << 32, 0, 0, 0, 0, 0])), DENY);
        assert_eq!(verdict(m, &call(nr::CLONE3, [0; 6])), NOSYS);
        assert_eq!(verdict(m, &call(nr::EXECVEAT, [0; 6])), DENY);
        assert_eq!(verdict(m, &call(nr::EXECVE, [0x1000, 0x2000, 0x3000, 0, 0, 0])), DENY);
    }

    #[test]
    fn threads_and_everything_else_pass() {
        for m in [Mode::NoSpawn, Mode::NoExec] {
            // pthread_create: CLONE_VM|CLONE_FS|CLONE_FILES|CLONE_SIGHAND|CLONE_THREAD|
            // CLONE_SYSVSEM|CLONE_SETTLS|CLONE_PARENT_SETTID|CLONE_CHILD_CLEARTID.
            assert_eq!(verdict(m, &call(nr::CLONE, [0x003d_0f00, 0, 0, 0, 0, 0])), ALLOW, "{m:?}");
            for other in [0, 1, 9, 60, 231, 317, 434] {
                assert_eq!(verdict(m, &call(other, [0; 6])), ALLOW, "{m:?} syscall {other}");
            }
        }
    }

    #[test]
    fn no_exec_lets_processes_fork_but_not_exec() {
        let m = Mode::NoExec;
        assert_eq!(verdict(m, &call(nr::FORK, [0; 6])), ALLOW);
        assert_eq!(verdict(m, &call(nr::VFORK, [0; 6])), ALLOW);
        assert_eq!(verdict(m, &call(nr::CLONE, [0x0120_0011, 0, 0, 0, 0, 0])), ALLOW);
        // clone3 is left to the OCI runtime's profile (ENOSYS there).
        assert_eq!(verdict(m, &call(nr::CLONE3, [0; 6])), ALLOW);
        assert_eq!(verdict(m, &call(nr::EXECVEAT, [0; 6])), DENY);
        assert_eq!(verdict(m, &call(nr::EXECVE, [0x1000, 0x2000, 0x3000, 0, 0, 0])), DENY);
    }

    #[test]
    fn only_the_pinned_exec_passes_and_every_bit_counts() {
        for m in [Mode::NoSpawn, Mode::NoExec] {
            let prog = build(m, PINS, Deny::default()).unwrap();
            let (v, pinned_steps) = run(&prog, &call(nr::EXECVE, exec_args(PINS))).unwrap();
            assert_eq!(v, ALLOW, "{m:?}");
            for arg in 0..3 {
                for bit in 0..64 {
                    let mut args = exec_args(PINS);
                    args[arg] ^= 1 << bit;
                    let (v, steps) = run(&prog, &call(nr::EXECVE, args)).unwrap();
                    assert_eq!(v, DENY, "{m:?}: arg {arg} bit {bit}");
                    // The same instructions run for a near miss as for the pinned call.
                    assert_eq!(steps, pinned_steps, "{m:?}: arg {arg} bit {bit}");
                }
            }
            // The pins are specific to their argument position.
            let swapped = [PINS.argv, PINS.path, PINS.envp, 0, 0, 0];
            assert_eq!(run(&prog, &call(nr::EXECVE, swapped)).unwrap().0, DENY);
            // execveat never passes, even with the pinned values.
            assert_eq!(run(&prog, &call(nr::EXECVEAT, exec_args(PINS))).unwrap().0, DENY);
        }
    }

    #[test]
    fn other_abis_are_denied() {
        for m in [Mode::NoSpawn, Mode::NoExec] {
            // i386: fork is 2, execve 11; x32: the same numbers as x86_64 plus the x32 bit.
            let i386 = |nr| SeccompData { nr, arch: 0x4000_0003, ..Default::default() };
            assert_eq!(verdict(m, &i386(2)), DENY);
            assert_eq!(verdict(m, &i386(11)), DENY);
            assert_eq!(verdict(m, &call(X32_SYSCALL_BIT | nr::EXECVE, exec_args(PINS))), DENY);
            assert_eq!(verdict(m, &call(X32_SYSCALL_BIT | nr::FORK, [0; 6])), DENY);
        }
    }

    #[test]
    fn syscall_numbers_match_libc() {
        assert_eq!(i64::from(nr::CLONE), libc::SYS_clone);
        assert_eq!(i64::from(nr::FORK), libc::SYS_fork);
        assert_eq!(i64::from(nr::VFORK), libc::SYS_vfork);
        assert_eq!(i64::from(nr::EXECVE), libc::SYS_execve);
        assert_eq!(i64::from(nr::EXECVEAT), libc::SYS_execveat);
        assert_eq!(i64::from(nr::CLONE3), libc::SYS_clone3);
        assert_eq!(CLONE_THREAD as i32, libc::CLONE_THREAD);
        assert_eq!(SECCOMP_RET_ALLOW, libc::SECCOMP_RET_ALLOW);
        assert_eq!(SECCOMP_RET_ERRNO, libc::SECCOMP_RET_ERRNO);
        assert_eq!((EPERM as i32, ENOSYS as i32), (libc::EPERM, libc::ENOSYS));
    }
}
