//! The command line as clap parses it: the commands, their flags and their help texts (the
//! reference for flags; `ignite completions` and `ignite man` are generated from it).

use std::path::PathBuf;

use anyhow::anyhow;
use clap::{Args, Parser, Subcommand};

use ignite::data::service;

use super::{bench, preflight};

macro_rules! exit_codes {
    () => {
        "\
EXIT CODES:
  N    the program's own exit code (0 = success)
  124  the program hit its time limit (timeoutMs / --timeout)
  137  the program was killed: out of memory, or over the output limit
  128+N  the program died from signal N
  125  ignite itself failed: bad service.yaml or flags, runtime missing, OCI runtime error;
       or preflight failed and nothing was started (see `ignite preflight --help`)
  130/143  ignite was interrupted (SIGINT/SIGTERM); the sandbox was removed"
    };
}

const EXIT_CODES: &str = exit_codes!();

const RUN_HELP: &str = concat!(
    "\
EXAMPLES:
  ignite run examples/data-processor --input '{\"data\":[1,2,3],\"operation\":\"sum\"}'
  ignite run svc/ --input @input.json --json > report.json
  ignite exec --runtime bun@1.3 ./scripts --entry job.ts --timeout 2000 --memory 256
  ignite run svc/ --runtime node@20       # same service on Node 20 (TypeScript stripped by ignite)
  ignite run svc/ --runtime deno          # or quickjs; `ignite runtime list` shows the versions
  ignite run svc/ --print-spec            # the OCI config.json, without running
  ignite run svc/ --locked                # only if svc/ still matches svc/ignite.lock
  ignite run svc/ --report report.json    # also the full report: preflight, execution, warnings
  ignite run svc/ -- --verbose a.txt      # program arguments, after the entry in its argv
  ignite run svc/ < data.csv              # the program's stdin (a regular file only; see --stdin)
  cat data.csv | ignite run svc/ --stdin -   # a pipe, or any file, only when asked

",
    exit_codes!()
);

const INSTALL_HELP: &str = "\
Dependencies are installed once per package.json + lockfile (production dependencies only, the
lockfile frozen, no lifecycle scripts unless service.yaml says `install: {scripts: true}`) in a
sandbox of their own with a user-mode network, and cached; `ignite run` then mounts them
read-only at /node_modules. Useful to warm the cache in CI.

To carry the installed tree to a host without registry access, export it where the registry is
reachable and import it there: the archive holds the tree packed, its sha256 digest and the
cache key (package.json, lockfile, installer); --import accepts only the tree of exactly this
directory's package.json and lockfile, verifies the digest, and needs no network or sandbox.

EXAMPLES:
  ignite install svc/
  ignite install svc/ --json     # {\"service\":…,\"modules\":\"installed\",\"install\":{…}}
  ignite install svc/ --export svc-deps.tar.gz
  ignite install svc/ --import svc-deps.tar.gz   # on the air-gapped host";

#[derive(Parser, Debug)]
#[command(
    name = "ignite",
    version,
    about = "Run untrusted JavaScript/TypeScript in hardened OCI containers — no Docker daemon",
    long_about = "Run untrusted JavaScript/TypeScript in hardened OCI containers — no Docker daemon.\n\n\
Each run gets a read-only runtime root filesystem, the service directory read-only at /app, a \
size-capped /tmp, fresh namespaces (no network but loopback), no capabilities, a non-root user, \
a default-deny seccomp allowlist, and memory, CPU and process limits.",
    after_help = EXIT_CODES
)]
pub(super) struct Cli {
    #[command(flatten)]
    pub(super) global: GlobalArgs,
    #[command(subcommand)]
    pub(super) command: Command,
}

#[derive(Args, Debug)]
pub(super) struct GlobalArgs {
    /// Directory for per-run state and the OCI runtime's state. Default: /run/ignite as root;
    /// rootless, ignite in the user's runtime directory ($XDG_RUNTIME_DIR, /run/user/<uid>).
    #[arg(long, global = true, env = "IGNITE_STATE_DIR", default_value_os_t = ignite::engine::default_state_dir())]
    pub(super) state_dir: PathBuf,
    /// Directory for downloaded runtimes, built bundles and unpacked root filesystems.
    /// Default: /var/lib/ignite as root; rootless, $XDG_DATA_HOME/ignite (~/.local/share/ignite).
    #[arg(long, global = true, env = "IGNITE_CACHE_DIR", default_value_os_t = ignite::engine::default_cache_dir())]
    pub(super) cache_dir: PathBuf,
    /// OCI runtime: `runc`, `crun`, `youki` (looked up in PATH) or a path to one of them;
    /// which one it is comes from its `--version`.
    /// Default: runc as root, crun rootless (runc and youki would leave the user's groups on the program).
    #[arg(long, global = true, env = "IGNITE_OCI_RUNTIME", default_value_t = ignite::engine::default_oci_runtime().to_string())]
    pub(super) oci_runtime: String,
    /// Who creates each sandbox's cgroup: `systemd` (a transient scope
    /// ignite.slice/ignite-<run>.scope, asked for by the OCI runtime over D-Bus), `cgroupfs`
    /// (the OCI runtime writes /ignite/<run> itself), or `auto`: systemd on a pure cgroup v2
    /// host booted with systemd, cgroupfs elsewhere. Rootless (not root): always systemd, the
    /// user's own manager (cgroupfs is refused: it would run sandboxes without limits).
    #[arg(long, global = true, env = "IGNITE_CGROUP_DRIVER", default_value = "auto", value_name = "DRIVER")]
    pub(super) cgroup_driver: ignite::engine::DriverChoice,
    /// Directory of custom runtimes, <DIR>/<name>/runtime.yaml (repeatable). Without it:
    /// $IGNITE_RUNTIMES_DIR (colon-separated; empty for none), else
    /// $XDG_CONFIG_HOME/ignite/runtimes or ~/.config/ignite/runtimes if that exists.
    #[arg(long = "runtimes-dir", global = true, value_name = "DIR")]
    pub(super) runtimes_dirs: Vec<PathBuf>,
    /// CA certificates (PEM) the dependency install trusts besides Bun's own, e.g. a
    /// TLS-inspecting proxy's [default: /etc/ssl/certs/ca-certificates.crt if present].
    #[arg(long, global = true, env = "NODE_EXTRA_CA_CERTS", value_name = "PEM")]
    pub(super) install_ca_file: Option<PathBuf>,
    /// Host environment variable that `${NAME}` in a service.yaml's `env:` may read
    /// (repeatable, or comma-separated in IGNITE_PASS_ENV). Nothing else is expanded: a
    /// service directory may come from an upload or a model, and must not be able to ask for
    /// the host's secrets. ignite's own IGNITE_* variables can never be passed.
    #[arg(long = "pass-env", global = true, env = "IGNITE_PASS_ENV", value_name = "NAME", value_delimiter = ',')]
    pub(super) pass_env: Vec<String>,
}

impl GlobalArgs {
    /// The variables `--pass-env` names, with their values now.
    pub(super) fn passed_env(&self) -> anyhow::Result<service::PassEnv> {
        service::PassEnv::from_process(&self.pass_env).map_err(|e| anyhow!(e))
    }
}

#[derive(Subcommand, Debug)]
pub(super) enum Command {
    /// Run a service directory described by its service.yaml.
    #[command(after_help = RUN_HELP)]
    Run {
        /// Service directory (contains service.yaml).
        dir: PathBuf,
        #[command(flatten)]
        run: RunArgs,
    },
    /// Run a directory without a service.yaml: defaults plus flags (service.yaml, if present, is honoured).
    #[command(after_help = RUN_HELP)]
    Exec {
        /// Directory holding the code.
        dir: PathBuf,
        /// Entry file relative to the directory (default: index.ts, index.js, …).
        #[arg(long)]
        entry: Option<String>,
        #[command(flatten)]
        run: RunArgs,
    },
    /// Check a service's settings before running it: memory, timeout, bundle size,
    /// dependencies, runtime bundle (no side effects).
    #[command(after_help = preflight::PREFLIGHT_HELP)]
    Preflight {
        /// Service directory (service.yaml optional, as for `exec`).
        dir: PathBuf,
        /// Print one JSON document on stdout instead of the analysis on stderr.
        #[arg(long)]
        json: bool,
        /// Exit 1 on warnings too.
        #[arg(long)]
        strict: bool,
        /// Runtime to check against (overrides service.yaml), e.g. `node@22`.
        #[arg(long, short = 'r')]
        runtime: Option<String>,
        /// Memory limit in MiB to check (overrides memoryMb).
        #[arg(long, value_name = "MB")]
        memory: Option<u32>,
        /// Time limit in milliseconds to check (overrides timeoutMs).
        #[arg(long, value_name = "MS")]
        timeout: Option<u64>,
    },
    /// Show the full report of a service's last run (preflight, execution, warnings).
    #[command(after_help = preflight::REPORT_HELP)]
    Report {
        /// Service directory.
        dir: PathBuf,
        /// Print one JSON document on stdout instead of text on stderr.
        #[arg(long)]
        json: bool,
    },
    /// Install a service's npm dependencies (package.json + lockfile) into ignite's cache, without running it.
    #[command(after_help = INSTALL_HELP)]
    Install {
        /// Service directory (service.yaml optional).
        dir: PathBuf,
        /// Print one JSON object on stdout and nothing else.
        #[arg(long)]
        json: bool,
        /// Do not print progress or the summary line on stderr.
        #[arg(long, short = 'q')]
        quiet: bool,
        /// After installing (or finding the tree cached), also write it to this archive (.tar,
        /// or .tar.gz/.tgz for gzip), for `ignite install DIR --import FILE` on another host.
        #[arg(long, value_name = "FILE", conflicts_with = "import")]
        export: Option<PathBuf>,
        /// Install from this archive instead of the npm registry: no network, no sandbox. It
        /// must hold the tree of exactly this package.json and lockfile.
        #[arg(long, value_name = "FILE")]
        import: Option<PathBuf>,
    },
    /// Create a new service directory from the runtime's template (service.yaml, index.ts, …).
    #[command(after_help = INIT_HELP)]
    Init {
        /// Name of the service (a DNS label); also the directory created in the current one.
        name: String,
        /// Runtime for the new service: bun, node, deno or quickjs, optionally @VERSION (e.g.
        /// `node@22`, written to service.yaml as given).
        #[arg(long, short = 'r', default_value = "bun")]
        runtime: String,
    },
    /// Show a service's effective security policy and where each value comes from.
    #[command(after_help = POLICY_HELP)]
    Policy {
        #[command(subcommand)]
        command: PolicyCommand,
    },
    /// Write DIR/ignite.lock (runtime version, bundle digest, file digests), or check DIR against it.
    #[command(after_help = LOCK_HELP)]
    Lock {
        /// Service directory (service.yaml optional, as for `exec`).
        dir: PathBuf,
        /// Compare instead of writing: exit 0 when up to date, 1 when something drifted.
        #[arg(long)]
        check: bool,
        /// Runtime to lock or check against, as `run --runtime` takes it (overrides service.yaml).
        #[arg(long, short = 'r')]
        runtime: Option<String>,
        /// Print one JSON object on stdout and nothing else.
        #[arg(long)]
        json: bool,
        /// Do not show bundle download/build progress on stderr.
        #[arg(long, short = 'q')]
        quiet: bool,
    },
    /// Show the effective configuration (directories, OCI runtime and version, CA file, …) and,
    /// for DIR, its runtime, bundle and lock state.
    #[command(after_help = ENV_HELP)]
    Env {
        /// A service directory to describe as well.
        dir: Option<PathBuf>,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    #[command(after_help = COMPLETIONS_HELP)]
    Completions {
        /// The shell to complete for.
        shell: clap_complete::Shell,
    },
    /// Print the ignite(1) man page (roff), or write one page per command to a directory.
    #[command(after_help = MAN_HELP)]
    Man {
        /// Write ignite.1, ignite-run.1, … into this directory instead.
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
    /// Manage runtime bundles.
    #[command(after_help = RUNTIME_HELP)]
    Runtime {
        #[command(subcommand)]
        command: RuntimeCommand,
    },
    /// Serve the services of a directory over HTTP (see docs/http-api.md).
    #[command(after_help = SERVE_HELP)]
    Serve(ServeArgs),
    /// Serve the MCP tools (run code, services, sessions) to an agent over stdio (see
    /// docs/agents.md).
    // One local client: a shorter queue, fewer sessions, no sandbox started ahead.
    #[command(
        after_help = MCP_HELP,
        mut_arg("queue", |a| a.default_value("16")),
        mut_arg("max_sessions", |a| a.default_value("8")),
        mut_arg("pool_min", |a| a.default_value("0"))
    )]
    Mcp(McpArgs),
    /// Check that this host can run sandboxes: OCI runtime, cgroups, seccomp, Landlock, user
    /// namespaces, disk space, privileges — with a remedy for each problem.
    #[command(after_help = DOCTOR_HELP)]
    Doctor {
        /// Print one JSON document on stdout and nothing else.
        #[arg(long)]
        json: bool,
    },
    /// Measure what isolation costs on this host: runtime × isolation level × OCI runtime ×
    /// cold/warm, with percentiles, overhead vs the bare runtime and per-phase times.
    #[command(after_help = bench::BENCH_HELP)]
    Bench(bench::BenchArgs),
    /// Remove containers, cgroups, install scratch mounts, session workspaces, inline code
    /// directories and state left behind by ignite processes that crashed, and staged TypeScript
    /// copies no run is using.
    #[command(after_help = CLEANUP_HELP)]
    Cleanup,
    /// Internal: an OCI hook the runtime runs (`loopback-up`), with the container state on stdin.
    #[command(name = ignite::engine::internal::hook::HOOK_COMMAND, hide = true)]
    OciHook { name: String },
    /// Internal: strips TypeScript types for a parent ignite process (a request on stdin).
    #[command(name = ignite::engine::internal::strip_worker::WORKER_COMMAND, hide = true)]
    StripWorker,
    /// Internal (rootless): writes the output directory of the container whose entrypoint is
    /// PID, for a parent ignite process that joined this process to its user namespace.
    #[command(name = ignite::engine::internal::read_out::READ_OUT_COMMAND, hide = true)]
    ReadOut { pid: u32 },
}

const POLICY_HELP: &str = "\
A policy is layered: the built-in default (policies/default.yaml), audit mode's strict base
(policies/audit.yaml) with --audit, then the service's policy file (ignite.policy.yaml,
ignite.policy.yml, .ignite-policy.yaml or .ignite-policy.yml in the service directory, or
--policy FILE), which overrides only the fields it sets. Every field is enforced.

EXAMPLES:
  ignite policy show examples/hello
  ignite policy show svc/ --audit --json";

#[derive(Subcommand, Debug)]
pub(super) enum PolicyCommand {
    /// Print the effective policy of DIR: each field, its value, and the file or mode it came from.
    #[command(after_help = POLICY_HELP)]
    Show {
        /// Service directory.
        dir: PathBuf,
        /// Policy file to use instead of the directory's own.
        #[arg(long, value_name = "FILE")]
        policy: Option<PathBuf>,
        /// Show the policy audit mode would apply.
        #[arg(long)]
        audit: bool,
        /// Print one JSON object on stdout.
        #[arg(long)]
        json: bool,
    },
}

const DOCTOR_HELP: &str = "\
Reads /proc, /sys, PATH and the bundle cache and runs `--version` of the tools it finds; it
starts no sandbox, downloads nothing and creates nothing. Each check says what it found, what
needs it (every run, audit mode, allowedCommands, …) and, unless it is ok, what to do.

EXIT CODES:
  0    everything a default run needs is ok (warnings only limit optional features)
  1    something every run needs failed
  125  doctor itself failed

EXAMPLES:
  ignite doctor
  ignite doctor --json | jq '.checks[] | select(.status != \"ok\")'";

const SERVE_HELP: &str = "\
Prints one line {\"listening\":\"ADDR:PORT\"} on stdout once it accepts connections (useful with
--port 0); request logs go to stderr (IGNITE_LOG=warn quiets them). SIGTERM/SIGINT stop
accepting, let running executions finish for --shutdown-timeout, then cancel them.

Socket activation (systemd's ignite.socket, see deploy/systemd/): with LISTEN_PID set to its pid
and LISTEN_FDS=1, ignite serve takes the listening TCP socket at descriptor 3 instead of binding
--host/--port, so connections made while it restarts wait instead of being refused.

POST /services/NAME/execute is served from a warm pool: sandboxes started ahead (container up,
entrypoint confined and waiting), one job each, replaced in the background. Each service keeps
--pool-min of them parked (started at launch) and grows up to --pool-max under load; idle ones
beyond the min go after --pool-idle-ttl. Every sandbox (parked or running, warm or cold) reserves
its memory limit; none is started ahead beyond --pool-memory-mb. Jobs that need a network or a
writable root run cold. Inline code (POST /v1/execute, sized as the service `inline`) is served
warm too: its files are linked into the sandbox's own empty /app right before the handover. A
session keeps one sandbox parked with its workspace, replaced after each run.

Every execution is preflighted first, like `ignite run`: a failing check refuses it with 422
`preflight_failed` and the checks in the body (--skip-preflight turns the checks off). With
--locked, a service that has an ignite.lock runs only while it matches it: 409 `lock_drift`
lists what changed.

EXAMPLES:
  ignite serve --services ./services
  ignite serve --services ./services --pool-min 2 --pool-max 8 --pool hello=4:16 --pool batch=0:0
  IGNITE_API_KEYS=$(openssl rand -hex 24) ignite serve --services /srv/svc --host 0.0.0.0
  ignite serve --services ./services --api-key-file /etc/ignite/keys --rate-limit 120
  ignite serve --services /srv/svc --locked           # production: locked services stay as locked";

const MCP_HELP: &str = "\
Speaks the Model Context Protocol (JSON-RPC) on stdin/stdout: an MCP client (Claude Desktop, an
agent framework, the official SDKs) starts `ignite mcp` as a subprocess and calls its tools. Logs
go to stderr (IGNITE_LOG=info for more). The same tools are served over streamable HTTP at
/mcp by `ignite serve`, behind its API keys and rate limit.

TOOLS:
  run_code          run code in a fresh sandbox: runtime, code or files, entry, input, limits
  list_services     the services of --services DIR
  run_service       run one of them by name with an input
  session_create    a private workspace (/tmp/workspace) shared by a session's runs
  session_execute   run_code inside a session
  session_list_files, session_read_file, session_write_file
                    files in and out of a session's workspace, between its runs
  session_close     remove a session and its workspace

Each run returns its report (stdout, stderr, status, exitCode, metrics) as structured content
and a text summary; a request ignite refuses is a tool error (isError) with a code and a message
that says what to change. Needs root, like every command that starts sandboxes.

CLIENT CONFIGURATION (e.g. claude_desktop_config.json, .mcp.json):
  {\"mcpServers\": {\"ignite\": {\"command\": \"sudo\",
     \"args\": [\"ignite\", \"mcp\", \"--services\", \"/srv/services\"]}}}

EXAMPLES:
  ignite mcp                                   # run_code and sessions only
  ignite mcp --services ./examples             # and the services under ./examples
  ignite mcp --services ./svc --max-concurrent 2 --pool-min 1";

const INIT_HELP: &str = "\
Templates are TypeScript for every runtime: bun and deno run it as it is, node and quickjs get it
with the types stripped by ignite. Each reads its input from $IGNITE_INPUT and prints JSON.
An existing path is never overwritten.

EXAMPLES:
  ignite init adder                        # bun (the default)
  ignite init adder --runtime node@22      # service.yaml says `runtime: node@22`
  ignite init adder --runtime deno && ignite run adder --input '{\"data\":[1,2],\"operation\":\"max\"}'";

const LOCK_HELP: &str = "\
ignite.lock records the exact runtime version the service resolves to, the digest of that
runtime's bundle, and the sha256 of package.json/deno.json, of the lockfiles (bun.lock,
package-lock.json, deno.lock, …) and of every other file (node_modules/ and .git/ excluded;
symlinks recorded as links). A bundle not yet in the cache is pulled first, as a run would.
`ignite run --locked` / `exec --locked` refuse a service that drifted (exit 125).

EXIT CODES (--check):
  0    the service matches its lock file
  1    something drifted; each change is printed
  125  no lock file, a malformed one, or another error

EXAMPLES:
  ignite lock svc/                         # write svc/ignite.lock
  ignite lock svc/ --check                 # in CI: fail when svc/ changed since it was locked
  ignite lock svc/ --check --json | jq '.drift[]'
  ignite run svc/ --locked";

const ENV_HELP: &str = "\
Looks only: nothing is downloaded, built or started, and problems are shown as values.

EXAMPLES:
  ignite env
  ignite env svc/                          # plus svc/'s runtime, bundle and lock state
  IGNITE_CACHE_DIR=/srv/ignite ignite env --json | jq .cacheDir";

const COMPLETIONS_HELP: &str = "\
EXAMPLES:
  ignite completions bash > /etc/bash_completion.d/ignite
  ignite completions zsh > \"${fpath[1]}/_ignite\"
  ignite completions fish > ~/.config/fish/completions/ignite.fish";

const MAN_HELP: &str = "\
EXAMPLES:
  ignite man | man -l -
  ignite man --out /usr/local/share/man/man1 && mandb";

const RUNTIME_HELP: &str = "\
EXAMPLES:
  ignite runtime list
  ignite runtime list --json | jq '.runtimes[].versions[] | select(.present)'
  ignite runtime pull node@22              # ahead of the first run (download, verify, build, unpack)
  ignite runtime export bun node -o rt.tar # carry bundles to a host without registry access
  ignite runtime import rt.tar             # there: verified, then unpacked into the cache";

const CLEANUP_HELP: &str = "\
Needs root. Runs, sessions and inline code of a live ignite process (or server) are never
touched; those of one that died (even by SIGKILL) are removed.

EXAMPLES:
  ignite cleanup";

#[derive(Args, Debug)]
pub(super) struct ServeArgs {
    /// Directory whose subdirectories (each with a service.yaml) are the services.
    #[arg(long, value_name = "DIR")]
    pub(super) services: PathBuf,
    /// Address to listen on (an IP address) [default: 127.0.0.1]. Not with socket activation.
    #[arg(long)]
    pub(super) host: Option<std::net::IpAddr>,
    /// Port to listen on; 0 picks a free one [default: 3000]. Not with socket activation.
    #[arg(long)]
    pub(super) port: Option<u16>,
    /// File of API keys, one per line (# comments); requests need `Authorization: Bearer KEY`.
    /// Keys in IGNITE_API_KEYS (comma-separated) are accepted too.
    #[arg(long, value_name = "FILE")]
    pub(super) api_key_file: Option<PathBuf>,
    /// Serve a non-loopback address without API keys.
    #[arg(long)]
    pub(super) insecure_no_auth: bool,
    /// Take the client address for rate limits from X-Forwarded-For (last entry); only behind
    /// a proxy that sets it.
    #[arg(long)]
    pub(super) trust_proxy: bool,
    /// Requests per minute per key (per client address without keys); 0 turns it off.
    #[arg(long, value_name = "N", default_value_t = 600)]
    pub(super) rate_limit: u32,
    /// Largest request body in bytes (413 beyond it).
    #[arg(long, value_name = "BYTES", default_value_t = 1024 * 1024)]
    pub(super) max_body: usize,
    /// Seconds running executions get to finish after SIGTERM/SIGINT before they are cancelled.
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    pub(super) shutdown_timeout: u64,
    #[command(flatten)]
    pub(super) run: RunFlagArgs,
    /// Sessions one API key may hold at once; more are refused with 429 (without keys only
    /// --max-sessions applies).
    #[arg(long, value_name = "N", default_value_t = 4)]
    pub(super) max_sessions_per_key: usize,
    /// Connections open at once, all clients together; more are closed at once (logged).
    #[arg(long, value_name = "N", default_value_t = 1024)]
    pub(super) max_connections: usize,
    /// Connections open at once from one client address (behind a proxy: the proxy's);
    /// more are closed at once (logged).
    #[arg(long, value_name = "N", default_value_t = 256)]
    pub(super) max_connections_per_peer: usize,
    /// Seconds a client has to send a request's head: from connecting, or on a kept-alive
    /// connection from the head's first byte; then the connection is closed.
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    pub(super) header_timeout: u64,
    /// Seconds a kept-alive connection may wait idle for its next request before it is closed.
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    pub(super) idle_timeout: u64,
    /// This server's name among several behind one address (on Kubernetes: its pod's name).
    /// Responses name it in X-Ignite-Node and session ids start with it (`NAME.<hex>`), so a
    /// session's requests can be sent to the server that holds its workspace.
    #[arg(long, env = "IGNITE_NODE_NAME", value_name = "NAME")]
    pub(super) node_name: Option<String>,
}

/// `ignite mcp`: the flags of `ignite serve` that apply to one local client.
#[derive(Args, Debug)]
pub(super) struct McpArgs {
    /// Directory whose subdirectories (each with a service.yaml) are the services that
    /// list_services and run_service offer; without it, only run_code and sessions.
    #[arg(long, value_name = "DIR")]
    pub(super) services: Option<PathBuf>,
    #[command(flatten)]
    pub(super) run: RunFlagArgs,
}

/// The flags `ignite serve` and `ignite mcp` share: what the runs they start are given. `mcp`
/// changes three defaults for one local client (see `Command::Mcp`).
#[derive(Args, Debug)]
pub(super) struct RunFlagArgs {
    /// Executions running at once [default: number of CPUs].
    #[arg(long, value_name = "N")]
    pub(super) max_concurrent: Option<usize>,
    /// Executions waiting for a slot; beyond that a request is refused (HTTP: 503 with
    /// Retry-After; MCP: `busy`).
    #[arg(long, value_name = "N", default_value_t = 64)]
    pub(super) queue: usize,
    /// Largest `input` in bytes, serialised (HTTP: 413 beyond it; keep --max-body above it). At
    /// most 8 MiB; past 64 KiB the program reads it from the file $IGNITE_INPUT_FILE names.
    #[arg(long, value_name = "BYTES", default_value_t = 64 * 1024)]
    pub(super) max_input: usize,
    /// An environment variable inline code (`POST /v1/execute`, run_code, sessions) may be
    /// given in a request's `env` (repeatable); a service's are its service.yaml `allowEnv`.
    /// Never IGNITE_*, LD_*, PATH or HOME.
    #[arg(long = "allow-env", value_name = "NAME")]
    pub(super) allow_env: Vec<String>,
    /// Seconds a session lives unless its creator asks for less or more (`ttlSeconds`).
    #[arg(long, value_name = "SECS", default_value_t = 600)]
    pub(super) session_ttl: u64,
    /// The longest `ttlSeconds` a session may ask for.
    #[arg(long, value_name = "SECS", default_value_t = 3600)]
    pub(super) session_max_ttl: u64,
    /// Size of each session's workspace (a tmpfs: it takes memory as it fills).
    #[arg(long, value_name = "MIB", default_value_t = 64)]
    pub(super) session_quota_mb: u64,
    /// Sessions open at once; more are refused (HTTP: 503).
    #[arg(long, value_name = "N", default_value_t = 16)]
    pub(super) max_sessions: usize,
    /// Requests that may wait for a session's turn while one of its runs goes on; more are
    /// refused at once (HTTP: 429). Waiting requests also count against --queue.
    #[arg(long, value_name = "N", default_value_t = 4)]
    pub(super) session_max_waiting: usize,
    /// Warm sandboxes each service keeps parked (started at launch); 0 starts them on demand.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub(super) pool_min: usize,
    /// Most warm sandboxes (parked or starting) per service; 0 turns the pool off.
    #[arg(long, value_name = "N", default_value_t = 4)]
    pub(super) pool_max: usize,
    /// Seconds a warm sandbox may stay idle before it is removed (down to --pool-min).
    #[arg(long, value_name = "SECS", default_value_t = 300)]
    pub(super) pool_idle_ttl: u64,
    /// Memory the sandboxes may reserve in all (each its memory limit; running jobs count)
    /// before no more are started ahead [default: half of MemAvailable at start].
    #[arg(long, value_name = "MIB")]
    pub(super) pool_memory_mb: Option<u64>,
    /// Per-service sizing, SERVICE=MIN:MAX (repeatable), e.g. --pool hello=2:8.
    #[arg(long = "pool", value_name = "SERVICE=MIN:MAX")]
    pub(super) pool_overrides: Vec<String>,
    /// Execute without the preflight checks (see `ignite preflight --help`); by default an
    /// execution whose check fails is refused (HTTP: 422 `preflight_failed`, with the checks).
    #[arg(long)]
    pub(super) skip_preflight: bool,
    /// Execute a service that has an ignite.lock only while it matches it (see `ignite lock
    /// --help`); one that drifted is refused (HTTP: 409 `lock_drift`). Services without one run.
    #[arg(long)]
    pub(super) locked: bool,
}

const RUNTIME_PULL_HELP: &str = "\
HOW A BUNDLE IS BUILT:
  A built-in runtime's rootfs is built from its pinned package inside a build environment of
  pinned Debian 12 packages (runtimes/builder/builder.yaml: bash, GNU tar and gzip, glibc,
  libstdc++, GCC), downloaded once into <cache>/packages/debian (56 MB), each checked against
  its sha256, and unpacked into <cache>/builders. The recipe runs chrooted into it, with no
  network and only its work directory writable; no host library or tool goes into the bundle,
  so the same version gives the same bundle digest on every host. Needs root.
  IGNITE_DEBIAN_MIRROR replaces the Debian mirror (e.g. a snapshot of the archive once a point
  release has removed a pinned version from deb.debian.org).

EXAMPLES:
  ignite runtime pull bun
  ignite runtime pull node@22
  ignite runtime pull quickjs@0.15.1
  IGNITE_DEBIAN_MIRROR=https://snapshot.debian.org/archive/debian/20261201T000000Z ignite runtime pull deno";

#[derive(Subcommand, Debug)]
pub(super) enum RuntimeCommand {
    /// Download, verify, build and unpack a runtime bundle (e.g. `bun`, `bun@1.4`, `bun@1.3.14`).
    #[command(after_help = RUNTIME_PULL_HELP)]
    Pull { spec: String },
    /// List runtimes (built-in and custom), their pinned versions, and which bundles are present locally.
    #[command(after_help = "EXAMPLES:\n  ignite runtime list\n  ignite runtime list --json | jq '.runtimes[].name'")]
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Write runtime bundles, with their digests and provenance, to one archive for another
    /// host's cache (pulls any not in the cache first).
    #[command(after_help = RUNTIME_EXPORT_HELP)]
    Export {
        /// Runtimes to export, as `pull` takes them (e.g. `bun node@22 deno`).
        #[arg(required = true, value_name = "SPEC")]
        specs: Vec<String>,
        /// The archive to write: FILE.tar, or FILE.tar.gz / FILE.tgz for gzip.
        #[arg(long, short = 'o', value_name = "FILE")]
        output: PathBuf,
        /// Print one JSON object on stdout instead of a summary on stderr.
        #[arg(long)]
        json: bool,
    },
    /// Import the bundles of an archive written by `ignite runtime export`, verifying each
    /// against its recorded sha256 digest first; nothing is downloaded.
    #[command(after_help = RUNTIME_IMPORT_HELP)]
    Import {
        /// The archive (.tar, .tar.gz or .tgz).
        file: PathBuf,
        /// Print one JSON object on stdout instead of a summary on stderr.
        #[arg(long)]
        json: bool,
    },
}

const RUNTIME_EXPORT_HELP: &str = "\
The archive is a tar file: ignite-archive.json (each bundle's sha256 digest, size and index
record: runtime, version, the npm package it was built from, the recipe digest), then the
bundle tarballs under bundles/. Bundles are already compressed, so a plain .tar is as small.
A bundle's digest names its bytes: it is the natural key for caching the archive in CI (see
docs/offline.md).

EXAMPLES:
  ignite runtime export bun -o bun.tar
  ignite runtime export bun node@22 deno -o runtimes.tar --json | jq -r '.bundles[].digest'";

const RUNTIME_IMPORT_HELP: &str = "\
Before anything enters the cache, every entry must name a runtime version this ignite defines,
built from the package it pins, and every bundle must match its recorded digest; archives with
links, absolute or '..' names, oversized, missing or unlisted members are refused. Then each
bundle is unpacked (as safely as a built one) and recorded as imported. A version that used
another bundle is switched to the imported one (`replaced` in --json). Needs write access to
the cache directory (--cache-dir).

EXAMPLES:
  ignite runtime import runtimes.tar
  IGNITE_CACHE_DIR=/srv/ignite ignite runtime import runtimes.tar --json";

#[derive(Args, Debug, Clone)]
pub(super) struct RunArgs {
    /// Input for the program, as JSON text or @FILE; the program reads it from $IGNITE_INPUT.
    #[arg(long, short = 'i', value_name = "JSON|@FILE")]
    pub(super) input: Option<String>,
    /// Print one JSON report on stdout (program output is inside it) and nothing else.
    #[arg(long)]
    pub(super) json: bool,
    /// Print the generated OCI config.json and exit without running.
    #[arg(long)]
    pub(super) print_spec: bool,
    /// Runtime: bun, node, deno, quickjs or a custom one, optionally @MAJOR[.MINOR[.PATCH]], e.g.
    /// `node@22` (overrides service.yaml).
    #[arg(long, short = 'r')]
    pub(super) runtime: Option<String>,
    /// Memory limit in MiB (overrides memoryMb).
    #[arg(long, value_name = "MB")]
    pub(super) memory: Option<u32>,
    /// Time limit in milliseconds (overrides timeoutMs).
    #[arg(long, value_name = "MS")]
    pub(super) timeout: Option<u64>,
    /// CPU limit in cores, e.g. 0.5 (overrides cpuLimit).
    #[arg(long, value_name = "CPUS")]
    pub(super) cpu: Option<f64>,
    /// Extra environment variable for the program (repeatable).
    #[arg(long = "env", short = 'e', value_name = "KEY=VALUE")]
    pub(super) env: Vec<String>,
    /// Cap on each of stdout and stderr, in bytes; a program that exceeds it is stopped
    /// (overrides the policy's security.output.maxBytes, 1 MiB by default).
    #[arg(long, value_name = "BYTES")]
    pub(super) output_limit: Option<u64>,
    /// Security policy file (instead of the service directory's ignite.policy.yaml).
    #[arg(long, value_name = "FILE")]
    pub(super) policy: Option<PathBuf>,
    /// Audit mode: the strictest policy unless a policy file relaxes it, and a securityAudit in
    /// the report: the high-signal syscalls the kernel reported (always denied), OOM and pids
    /// events, time and output limit stops.
    #[arg(long)]
    pub(super) audit: bool,
    /// Do not print the summary line (nor preflight warnings) on stderr.
    #[arg(long, short = 'q')]
    pub(super) quiet: bool,
    /// Refuse to run unless the directory matches its ignite.lock (see `ignite lock --help`).
    #[arg(long)]
    pub(super) locked: bool,
    /// Start without the preflight checks (see `ignite preflight --help`); a check that fails
    /// otherwise stops the run with exit code 125.
    #[arg(long)]
    pub(super) skip_preflight: bool,
    /// Also write the full report (service, timestamp, preflight, execution, warnings) as JSON
    /// to FILE; `ignite report DIR` shows the last one.
    #[arg(long, value_name = "FILE")]
    pub(super) report: Option<PathBuf>,
    /// The program's stdin: the bytes of FILE, or of ignite's own stdin with `-` (at most
    /// 1 MiB). Without it, ignite's stdin is passed on only when it is a regular file
    /// (`ignite run DIR < file`); otherwise the program's stdin is empty.
    #[arg(long, value_name = "FILE|-")]
    pub(super) stdin: Option<PathBuf>,
    /// Give the program an output directory ($IGNITE_OUT_DIR: a tmpfs of at most 8 MiB and 64
    /// files) and write the regular files it leaves there to DIR (created if missing; an
    /// existing file is never overwritten, and no link is followed).
    #[arg(long, value_name = "DIR")]
    pub(super) out: Option<PathBuf>,
    /// Arguments for the program, after `--`: they follow the entry in its argv (at most 256,
    /// 64 KiB in all).
    #[arg(last = true, value_name = "ARGS")]
    pub(super) args: Vec<String>,
}
