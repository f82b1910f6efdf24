// Attack: io_uring, a large and fast-moving kernel interface (many privilege-escalation bugs)
// whose work, submitted through shared rings, seccomp cannot inspect.
// Must fail: all three io_uring system calls answer ENOSYS, as on a kernel without io_uring, so
// runtimes fall back to epoll and nothing reaches the io_uring code.
import { NR, buffer, call, report } from "./_sys.ts";

const params = buffer(120); // struct io_uring_params
report({
  setup: call(NR.io_uring_setup, 8, params.addr),
  enter: call(NR.io_uring_enter, 0, 1, 0, 0, 0, 0),
  register: call(NR.io_uring_register, 0, 0, 0, 0),
});
