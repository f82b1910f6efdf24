// Helper for the attack programs, not an attack itself: raw system calls from JavaScript in the
// Bun sandbox. bun:ffi's cc() compiles C with TinyCC in memory (no compiler, headers or libc.so
// are needed in the rootfs; /tmp is noexec, but the compiled code lives in anonymous memory), so
// an attack makes exactly the system calls native code would, with any arguments: every answer
// comes from the kernel and the seccomp filter, never from the runtime's own checks.
import { cc, ptr } from "bun:ffi";
import { writeFileSync } from "node:fs";

// raw(nr, a1..a6): the x86_64 `syscall` instruction, returning -errno on failure.
const PRELUDE = `
long raw(long nr, long a, long b, long c, long d, long e, long f);
__asm__(".global raw\\nraw:\\n mov %rdi,%rax\\n mov %rsi,%rdi\\n mov %rdx,%rsi\\n mov %rcx,%rdx\\n"
        " mov %r8,%r10\\n mov %r9,%r8\\n mov 8(%rsp),%r9\\n syscall\\n ret\\n");
`;

let sources = 0;

/** Compiles C source (with raw() available) and returns its exported functions. */
export function compile(source: string, symbols: Record<string, { args: string[]; returns: string }>): any {
  const path = `/tmp/.attack-${process.pid}-${sources++}.c`;
  writeFileSync(path, PRELUDE + source);
  return cc({ source: path, flags: ["-nostdlib"], symbols: symbols as any }).symbols;
}

// Compiled on first use: an attack that only imports input() or report() writes nothing to /tmp.
let base: any = null;

/** One system call; returns the kernel's result (negative errno on failure). */
export function sys(nr: number, ...args: (number | bigint)[]): number {
  base ??= compile(
    "long sys7(long nr, long a, long b, long c, long d, long e, long f) { return raw(nr, a, b, c, d, e, f); }",
    { sys7: { args: ["i64", "i64", "i64", "i64", "i64", "i64", "i64"], returns: "i64" } },
  );
  const a = [...args, 0, 0, 0, 0, 0, 0].slice(0, 6).map((x) => BigInt(x));
  return Number(base.sys7(BigInt(nr), a[0], a[1], a[2], a[3], a[4], a[5]));
}

const ERRNO: Record<number, string> = {
  1: "EPERM", 2: "ENOENT", 3: "ESRCH", 4: "EINTR", 5: "EIO", 6: "ENXIO", 7: "E2BIG", 9: "EBADF",
  10: "ECHILD", 11: "EAGAIN", 12: "ENOMEM", 13: "EACCES", 14: "EFAULT", 16: "EBUSY", 17: "EEXIST",
  18: "EXDEV", 19: "ENODEV", 20: "ENOTDIR", 21: "EISDIR", 22: "EINVAL", 23: "ENFILE", 24: "EMFILE",
  25: "ENOTTY", 26: "ETXTBSY", 27: "EFBIG", 28: "ENOSPC", 29: "ESPIPE", 30: "EROFS", 31: "EMLINK",
  32: "EPIPE", 36: "ENAMETOOLONG", 38: "ENOSYS", 39: "ENOTEMPTY", 40: "ELOOP", 61: "ENODATA",
  71: "EPROTO", 88: "ENOTSOCK", 92: "ENOPROTOOPT", 93: "EPROTONOSUPPORT", 94: "ESOCKTNOSUPPORT",
  95: "EOPNOTSUPP", 97: "EAFNOSUPPORT", 98: "EADDRINUSE", 99: "EADDRNOTAVAIL", 100: "ENETDOWN",
  101: "ENETUNREACH", 104: "ECONNRESET", 110: "ETIMEDOUT", 111: "ECONNREFUSED", 113: "EHOSTUNREACH",
  115: "EINPROGRESS",
};

/** A system call's result as the attack reports it: the value, or the errno's name. */
export function errname(result: number): number | string {
  return result >= 0 ? result : (ERRNO[-result] ?? `errno ${-result}`);
}

/** sys() reported as errname(): "EPERM", "ENOSYS", or the non-negative result. */
export function call(nr: number, ...args: (number | bigint)[]): number | string {
  return errname(sys(nr, ...args));
}

const alive: Uint8Array[] = [];

/** A zeroed buffer that stays alive for the whole program, and its address. */
export function buffer(size: number): { bytes: Uint8Array; view: DataView; addr: bigint } {
  const bytes = new Uint8Array(size);
  alive.push(bytes);
  return { bytes, view: new DataView(bytes.buffer), addr: BigInt(ptr(bytes)) };
}

/** Address of a NUL-terminated copy of `s`. */
export function cstr(s: string): bigint {
  const b = buffer(Buffer.byteLength(s) + 1);
  b.bytes.set(Buffer.from(s));
  return b.addr;
}

/** The run's input (the harness passes a nonce and the run number). */
export function input(): any {
  return JSON.parse(process.env.IGNITE_INPUT ?? "{}");
}

/** The attack's findings: one JSON line, compared by the test with what it expects. */
export function report(findings: unknown): void {
  console.log(JSON.stringify(findings));
}

/** What a JavaScript exception says about a failed call: its errno code, or its name. */
export function codeOf(e: any): string {
  return e?.code ?? e?.name ?? String(e);
}

// x86_64 system call numbers used by the attacks.
export const NR = {
  read: 0, write: 1, open: 2, close: 3, ioctl: 16, pread64: 17, socket: 41, connect: 42, sendto: 44,
  recvfrom: 45, sendmsg: 46, recvmsg: 47, bind: 49, listen: 50, clone: 56, fork: 57, exit: 60,
  wait4: 61, kill: 62, msgget: 68, semget: 64, shmget: 29, ptrace: 101, getuid: 102, setuid: 105,
  setgid: 106, personality: 135, pivot_root: 155, chroot: 161, mount: 165, umount2: 166,
  setsid: 112, pause: 34, nanosleep: 35, getpid: 39, exit_group: 231, tkill: 200, unshare: 272,
  setns: 308, process_vm_readv: 310, process_vm_writev: 311, kcmp: 312, perf_event_open: 298,
  userfaultfd: 323, bpf: 321, keyctl: 250, add_key: 248, request_key: 249,
  name_to_handle_at: 303, open_by_handle_at: 304, io_uring_setup: 425, io_uring_enter: 426,
  io_uring_register: 427, open_tree: 428, move_mount: 429, fsopen: 430, fsconfig: 431,
  fsmount: 432, fspick: 433, pidfd_open: 434, clone3: 435, pidfd_getfd: 438, mount_setattr: 442,
  mq_open: 240, msgsnd: 69, openat: 257, capset: 126, capget: 125, prctl: 157, inotify_init1: 294,
};
