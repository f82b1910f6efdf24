// Attack: persistence and cross-run leaks through the kernel keyrings. Keyrings belong to the uid,
// not to a namespace, and every run uses uid 65534: a key added to the user keyring in run 1
// would be readable by run 2 (or by a concurrent run of another tenant).
// Must fail: add_key, request_key and keyctl are not in the seccomp allowlist (EPERM), in both
// runs, and /proc/keys is masked (reads empty).
import { readFileSync } from "node:fs";
import { NR, call, cstr, input, report } from "./_sys.ts";

const KEY_SPEC_USER_KEYRING = -4;
const KEY_SPEC_SESSION_KEYRING = -3;
const KEYCTL_GET_KEYRING_ID = 0;
const KEYCTL_SEARCH = 10;
const payload = cstr("secret from run 1");
report({
  run: input().run,
  add_key_user: call(NR.add_key, cstr("user"), cstr("ignite-escape"), payload, 17, KEY_SPEC_USER_KEYRING),
  add_key_session: call(NR.add_key, cstr("user"), cstr("ignite-escape"), payload, 17, KEY_SPEC_SESSION_KEYRING),
  request_key: call(NR.request_key, cstr("user"), cstr("ignite-escape"), 0, KEY_SPEC_USER_KEYRING),
  keyctl_get_user_keyring: call(NR.keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_USER_KEYRING, 0),
  keyctl_search: call(NR.keyctl, KEYCTL_SEARCH, KEY_SPEC_USER_KEYRING, cstr("user"), cstr("ignite-escape"), 0),
  proc_keys_bytes: readFileSync("/proc/keys").length,
});
