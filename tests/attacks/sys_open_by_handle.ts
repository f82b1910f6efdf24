// Attack: "shocker" (2014): name_to_handle_at gets a file handle, open_by_handle_at opens any
// inode of the same filesystem by handle, bypassing the mount view, so a handle to the host's
// root directory opens the host's files. /app and the rootfs sit on host filesystems.
// Must fail: neither call is in the seccomp allowlist (EPERM); open_by_handle_at would also need
// CAP_DAC_READ_SEARCH.
import { NR, buffer, call, cstr, report } from "./_sys.ts";

const AT_FDCWD = -100;
const handle = buffer(136); // struct file_handle with room for MAX_HANDLE_SZ
handle.view.setUint32(0, 128, true);
const mountId = buffer(4);
// A guessed handle for inode 2 (the root directory of an ext4 filesystem).
const guess = buffer(16);
guess.view.setUint32(0, 8, true);
guess.view.setInt32(4, 1, true); // FILEID_INO32_GEN
guess.view.setUint32(8, 2, true);
report({
  name_to_handle_at: call(NR.name_to_handle_at, AT_FDCWD, cstr("/app"), handle.addr, mountId.addr, 0),
  open_by_handle_at: call(NR.open_by_handle_at, AT_FDCWD, guess.addr, 0),
});
