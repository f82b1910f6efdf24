//! The fixed numbers and names ignite and its in-container entrypoint (`ignite-init`) agree on:
//! the descriptors the entrypoint inherits, its warm-sandbox flag, the variable that carries
//! the input, and the kernel's limit on one environment string. A leaf: the spec builder, the
//! entrypoint protocol and the entrypoint itself all take them from here.

/// Descriptor number of the entrypoint's private report pipe inside the container. The
/// supervisor passes its pipes in descriptor order from this one on: report, release, stdout,
/// stderr, stdin, and a warm sandbox's job pipe.
pub const REPORT_FD: i32 = 3;
/// Descriptor of the release pipe: after reporting the exit, the entrypoint keeps the
/// container (and its cgroup) alive until the host closes this pipe.
pub const RELEASE_FD: i32 = 4;
/// Descriptors of the program's stdout and stderr pipes. The entrypoint makes them its own
/// stdout and stderr (the program inherits them), so output reaches ignite directly, not
/// through the OCI runtime's copy of the container's stdio, whose lag would race the exit
/// report: once the entrypoint reports the exit, all output is in these pipes.
pub const STDOUT_FD: i32 = 5;
pub const STDERR_FD: i32 = 6;
/// Descriptor of the program's stdin pipe: the entrypoint makes it its own stdin (the program
/// inherits it). ignite writes the request's bytes into it (a warm sandbox's at handover) and
/// closes it: the program reads them and then end of file. The container's own stdin is not
/// used: it is fixed when the container is created, and the runtime may relay it.
pub const STDIN_FD: i32 = 7;
/// Descriptor of a warm sandbox's job pipe: the entrypoint reports `ready` and then reads one
/// job message here (the entrypoint protocol's `JobMessage`) before it starts anything.
pub const JOB_FD: i32 = 8;
/// The entrypoint's flag for a warm sandbox: wait for the job on [`JOB_FD`].
pub const WAIT_JOB_FLAG: &str = "--wait-job";
/// The name under which the program finds its input.
pub const INPUT_VAR: &str = "IGNITE_INPUT";
/// Past [`INPUT_ENV_MAX_BYTES`] the input is a read-only file instead, named in this variable
/// ([`INPUT_VAR`] is then absent).
pub const INPUT_FILE_VAR: &str = "IGNITE_INPUT_FILE";
/// Where the run's input directory (a host directory of ignite's) is mounted read-only. Under
/// the container's own `/tmp` tmpfs, so that its mount point is made there and never in the
/// shared, read-only runtime root.
pub const INPUT_DIR: &str = "/tmp/ignite";
/// The input file inside the sandbox, when there is one.
pub const INPUT_FILE_PATH: &str = "/tmp/ignite/input.json";
/// The file's name inside the run's input directory.
pub const INPUT_FILE_NAME: &str = "input.json";
/// The largest input that travels in [`INPUT_VAR`]; a larger one is a file.
pub const INPUT_ENV_MAX_BYTES: usize = 64 * 1024;
/// Linux refuses a single environment string longer than 32 pages (MAX_ARG_STRLEN).
pub const MAX_ENV_STRING: usize = 32 * 4096 - 1;
