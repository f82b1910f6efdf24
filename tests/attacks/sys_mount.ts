// Attack: rearrange the filesystem view to reach host files or hide the sandbox's own mounts:
// mount (a fresh tmpfs, a remount of / read-write, a bind of /proc), umount2 of /proc, pivot_root,
// chroot, and the new mount API (open_tree, move_mount, fsopen, fsconfig, fsmount, fspick,
// mount_setattr).
// Must fail: none of these is in the seccomp allowlist (EPERM), and without CAP_SYS_ADMIN the
// kernel would refuse them anyway.
import { NR, call, cstr, report } from "./_sys.ts";

const AT_FDCWD = -100;
const MS_REMOUNT = 0x20, MS_BIND = 0x1000, MNT_DETACH = 2;
report({
  mount_tmpfs: call(NR.mount, cstr("none"), cstr("/tmp"), cstr("tmpfs"), 0, 0),
  remount_root_rw: call(NR.mount, 0, cstr("/"), 0, MS_REMOUNT, 0),
  bind_proc: call(NR.mount, cstr("/proc"), cstr("/tmp"), 0, MS_BIND, 0),
  umount_proc: call(NR.umount2, cstr("/proc"), MNT_DETACH),
  pivot_root: call(NR.pivot_root, cstr("/tmp"), cstr("/tmp")),
  chroot: call(NR.chroot, cstr("/tmp")),
  open_tree: call(NR.open_tree, AT_FDCWD, cstr("/"), 1),
  move_mount: call(NR.move_mount, AT_FDCWD, cstr("/tmp"), AT_FDCWD, cstr("/app"), 0),
  fsopen: call(NR.fsopen, cstr("tmpfs"), 0),
  fsconfig: call(NR.fsconfig, 3, 6, 0, 0, 0),
  fsmount: call(NR.fsmount, 3, 0, 0),
  fspick: call(NR.fspick, AT_FDCWD, cstr("/"), 0),
  mount_setattr: call(NR.mount_setattr, AT_FDCWD, cstr("/"), 0, 0, 0),
});
