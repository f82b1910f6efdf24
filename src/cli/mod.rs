//! Command line: raw arguments (clap), their resolution into settings, and printing.
//! The only place besides `main` where `anyhow` is used.

mod bench;
mod completions;
mod env;
mod init;
mod lock;
mod preflight;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, anyhow, bail};
use clap::{ArgMatches, Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use ignite::data::policy;
use ignite::data::report::EXIT_IGNITE_ERROR;
use ignite::data::service::{self, Overrides};
use ignite::engine::{
    Engine, HostChoice, Input, LockCheck, NoProgress, OutputSink, PolicyChoice, PreflightGate, Program, Progress,
    Request, RunError, Settings, StderrProgress, Stream,
};

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

",
    exit_codes!()
);

const INSTALL_HELP: &str = "\
Dependencies are installed once per package.json + lockfile (production dependencies only, the
lockfile frozen, no lifecycle scripts unless service.yaml says `install: {scripts: true}`) in a
sandbox of their own with a user-mode network, and cached; `ignite run` then mounts them
read-only at /node_modules. Useful to warm the cache in CI.

EXAMPLES:
  ignite install svc/
  ignite install svc/ --json     # {\"service\":…,\"modules\":\"installed\",\"install\":{…}}";

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
pub struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Debug)]
struct GlobalArgs {
    /// Directory for per-run state and the OCI runtime's state.
    #[arg(long, global = true, env = "IGNITE_STATE_DIR", default_value = "/run/ignite")]
    state_dir: PathBuf,
    /// Directory for downloaded runtimes, built bundles and unpacked root filesystems.
    #[arg(long, global = true, env = "IGNITE_CACHE_DIR", default_value = "/var/lib/ignite")]
    cache_dir: PathBuf,
    /// OCI runtime: `runc`, `crun`, `youki` (looked up in PATH) or a path to one of them;
    /// which one it is comes from its `--version`.
    #[arg(long, global = true, env = "IGNITE_OCI_RUNTIME", default_value = "runc")]
    oci_runtime: String,
    /// Directory of custom runtimes, <DIR>/<name>/runtime.yaml (repeatable). Without it:
    /// $IGNITE_RUNTIMES_DIR (colon-separated; empty for none), else
    /// $XDG_CONFIG_HOME/ignite/runtimes or ~/.config/ignite/runtimes if that exists.
    #[arg(long = "runtimes-dir", global = true, value_name = "DIR")]
    runtimes_dirs: Vec<PathBuf>,
    /// CA certificates (PEM) the dependency install trusts besides Bun's own, e.g. a
    /// TLS-inspecting proxy's [default: /etc/ssl/certs/ca-certificates.crt if present].
    #[arg(long, global = true, env = "NODE_EXTRA_CA_CERTS", value_name = "PEM")]
    install_ca_file: Option<PathBuf>,
    /// Host environment variable that `${NAME}` in a service.yaml's `env:` may read
    /// (repeatable, or comma-separated in IGNITE_PASS_ENV). Nothing else is expanded: a
    /// service directory may come from an upload or a model, and must not be able to ask for
    /// the host's secrets. ignite's own IGNITE_* variables can never be passed.
    #[arg(long = "pass-env", global = true, env = "IGNITE_PASS_ENV", value_name = "NAME", value_delimiter = ',')]
    pass_env: Vec<String>,
}

impl GlobalArgs {
    /// The variables `--pass-env` names, with their values now.
    fn passed_env(&self) -> anyhow::Result<service::PassEnv> {
        service::PassEnv::from_process(&self.pass_env).map_err(|e| anyhow!(e))
    }
}

use ignite::engine::{RUNTIMES_DIR_ENV, SYSTEM_CA_FILE};

#[derive(Subcommand, Debug)]
enum Command {
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
    #[command(name = ignite::sandbox::oci::hook::HOOK_COMMAND, hide = true)]
    OciHook { name: String },
    /// Internal: strips TypeScript types for a parent ignite process (a request on stdin).
    #[command(name = ignite::store::stage::WORKER_COMMAND, hide = true)]
    StripWorker,
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
enum PolicyCommand {
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

POST /services/NAME/execute is served from a warm pool: sandboxes started ahead (container up,
entrypoint confined and waiting), one job each, replaced in the background. Each service keeps
--pool-min of them parked (started at launch) and grows up to --pool-max under load; idle ones
beyond the min go after --pool-idle-ttl. Every sandbox (parked or running, warm or cold) reserves
its memory limit; none is started ahead beyond --pool-memory-mb. Jobs that need a network, a
writable root or a session run cold, as do inline code and sessions.

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
  ignite runtime pull node@22              # ahead of the first run (download, verify, build, unpack)";

const CLEANUP_HELP: &str = "\
Needs root. Runs, sessions and inline code of a live ignite process (or server) are never
touched; those of one that died (even by SIGKILL) are removed.

EXAMPLES:
  ignite cleanup";

#[derive(Args, Debug)]
struct ServeArgs {
    /// Directory whose subdirectories (each with a service.yaml) are the services.
    #[arg(long, value_name = "DIR")]
    services: PathBuf,
    /// Address to listen on (an IP address).
    #[arg(long, default_value = "127.0.0.1")]
    host: std::net::IpAddr,
    /// Port to listen on; 0 picks a free one.
    #[arg(long, default_value_t = 3000)]
    port: u16,
    /// File of API keys, one per line (# comments); requests need `Authorization: Bearer KEY`.
    /// Keys in IGNITE_API_KEYS (comma-separated) are accepted too.
    #[arg(long, value_name = "FILE")]
    api_key_file: Option<PathBuf>,
    /// Serve a non-loopback address without API keys.
    #[arg(long)]
    insecure_no_auth: bool,
    /// Take the client address for rate limits from X-Forwarded-For (last entry); only behind
    /// a proxy that sets it.
    #[arg(long)]
    trust_proxy: bool,
    /// Requests per minute per key (per client address without keys); 0 turns it off.
    #[arg(long, value_name = "N", default_value_t = 600)]
    rate_limit: u32,
    /// Executions running at once [default: number of CPUs].
    #[arg(long, value_name = "N")]
    max_concurrent: Option<usize>,
    /// Executions waiting for a slot; beyond that requests get 503.
    #[arg(long, value_name = "N", default_value_t = 64)]
    queue: usize,
    /// Largest request body in bytes (413 beyond it).
    #[arg(long, value_name = "BYTES", default_value_t = 1024 * 1024)]
    max_body: usize,
    /// Largest `input` in bytes, serialised (413 beyond it; at most 131008, the kernel's limit
    /// on the environment variable that carries it).
    #[arg(long, value_name = "BYTES", default_value_t = 64 * 1024)]
    max_input: usize,
    /// Seconds running executions get to finish after SIGTERM/SIGINT before they are cancelled.
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    shutdown_timeout: u64,
    /// Seconds a session lives unless its creator asks for less or more (`ttlSeconds`).
    #[arg(long, value_name = "SECS", default_value_t = 600)]
    session_ttl: u64,
    /// The longest `ttlSeconds` a session may ask for.
    #[arg(long, value_name = "SECS", default_value_t = 3600)]
    session_max_ttl: u64,
    /// Size of each session's workspace (a tmpfs: it takes memory as it fills).
    #[arg(long, value_name = "MIB", default_value_t = 64)]
    session_quota_mb: u64,
    /// Sessions open at once; more are refused with 503.
    #[arg(long, value_name = "N", default_value_t = 16)]
    max_sessions: usize,
    /// Sessions one API key may hold at once; more are refused with 429 (without keys only
    /// --max-sessions applies).
    #[arg(long, value_name = "N", default_value_t = 4)]
    max_sessions_per_key: usize,
    /// Requests that may wait for a session's turn while one of its runs goes on; more are
    /// refused at once with 429. Waiting requests also count against --queue.
    #[arg(long, value_name = "N", default_value_t = 4)]
    session_max_waiting: usize,
    /// Connections open at once, all clients together; more are closed at once (logged).
    #[arg(long, value_name = "N", default_value_t = 1024)]
    max_connections: usize,
    /// Connections open at once from one client address (behind a proxy: the proxy's);
    /// more are closed at once (logged).
    #[arg(long, value_name = "N", default_value_t = 256)]
    max_connections_per_peer: usize,
    /// Seconds a client has to send a request's head: from connecting, or on a kept-alive
    /// connection from the head's first byte; then the connection is closed.
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    header_timeout: u64,
    /// Seconds a kept-alive connection may wait idle for its next request before it is closed.
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    idle_timeout: u64,
    /// Warm sandboxes each service keeps parked (started at launch); 0 starts them on demand.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pool_min: usize,
    /// Most warm sandboxes (parked or starting) per service; 0 turns the pool off.
    #[arg(long, value_name = "N", default_value_t = 4)]
    pool_max: usize,
    /// Seconds a warm sandbox may stay idle before it is removed (down to --pool-min).
    #[arg(long, value_name = "SECS", default_value_t = 300)]
    pool_idle_ttl: u64,
    /// Memory the sandboxes may reserve in all (each its memory limit; running jobs count)
    /// before no more are started ahead [default: half of MemAvailable at start].
    #[arg(long, value_name = "MIB")]
    pool_memory_mb: Option<u64>,
    /// Per-service sizing, SERVICE=MIN:MAX (repeatable), e.g. --pool hello=2:8.
    #[arg(long = "pool", value_name = "SERVICE=MIN:MAX")]
    pool_overrides: Vec<String>,
    /// Execute without the preflight checks (see `ignite preflight --help`); by default an
    /// execution whose check fails is refused with 422 `preflight_failed` and the checks.
    #[arg(long)]
    skip_preflight: bool,
    /// Execute a service that has an ignite.lock only while it matches it (see `ignite lock
    /// --help`); one that drifted is refused with 409 `lock_drift`. Services without one run.
    #[arg(long)]
    locked: bool,
}

#[derive(Subcommand, Debug)]
enum RuntimeCommand {
    /// Download, verify and unpack a runtime bundle (e.g. `bun`, `bun@1.4`, `bun@1.3.14`).
    #[command(
        after_help = "EXAMPLES:\n  ignite runtime pull bun\n  ignite runtime pull node@22\n  ignite runtime pull quickjs@0.15.1"
    )]
    Pull { spec: String },
    /// List runtimes (built-in and custom), their pinned versions, and which bundles are present locally.
    #[command(after_help = "EXAMPLES:\n  ignite runtime list\n  ignite runtime list --json | jq '.runtimes[].name'")]
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args, Debug, Clone)]
struct RunArgs {
    /// Input for the program, as JSON text or @FILE; the program reads it from $IGNITE_INPUT.
    #[arg(long, short = 'i', value_name = "JSON|@FILE")]
    input: Option<String>,
    /// Print one JSON report on stdout (program output is inside it) and nothing else.
    #[arg(long)]
    json: bool,
    /// Print the generated OCI config.json and exit without running.
    #[arg(long)]
    print_spec: bool,
    /// Runtime: bun, node, deno, quickjs or a custom one, optionally @MAJOR[.MINOR[.PATCH]], e.g.
    /// `node@22` (overrides service.yaml).
    #[arg(long, short = 'r')]
    runtime: Option<String>,
    /// Memory limit in MiB (overrides memoryMb).
    #[arg(long, value_name = "MB")]
    memory: Option<u32>,
    /// Time limit in milliseconds (overrides timeoutMs).
    #[arg(long, value_name = "MS")]
    timeout: Option<u64>,
    /// CPU limit in cores, e.g. 0.5 (overrides cpuLimit).
    #[arg(long, value_name = "CPUS")]
    cpu: Option<f64>,
    /// Extra environment variable for the program (repeatable).
    #[arg(long = "env", short = 'e', value_name = "KEY=VALUE")]
    env: Vec<String>,
    /// Cap on each of stdout and stderr, in bytes; a program that exceeds it is stopped
    /// (overrides the policy's security.output.maxBytes, 1 MiB by default).
    #[arg(long, value_name = "BYTES")]
    output_limit: Option<u64>,
    /// Security policy file (instead of the service directory's ignite.policy.yaml).
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// Audit mode: the strictest policy unless a policy file relaxes it, and a securityAudit in
    /// the report: the high-signal syscalls the kernel reported (always denied), OOM and pids
    /// events, time and output limit stops.
    #[arg(long)]
    audit: bool,
    /// Do not print the summary line (nor preflight warnings) on stderr.
    #[arg(long, short = 'q')]
    quiet: bool,
    /// Refuse to run unless the directory matches its ignite.lock (see `ignite lock --help`).
    #[arg(long)]
    locked: bool,
    /// Start without the preflight checks (see `ignite preflight --help`); a check that fails
    /// otherwise stops the run with exit code 125.
    #[arg(long)]
    skip_preflight: bool,
    /// Also write the full report (service, timestamp, preflight, execution, warnings) as JSON
    /// to FILE; `ignite report DIR` shows the last one.
    #[arg(long, value_name = "FILE")]
    report: Option<PathBuf>,
}

pub fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    // A server's request log is its normal output; other commands only say what went wrong.
    init_tracing(if matches!(cli.command, Command::Serve(_)) { "info" } else { "warn" });
    // Commands that start sandboxes hold descriptors per connection, run and pipe: they get all
    // the open files the host allows them (the sandboxes' own limit fits under it).
    if matches!(
        cli.command,
        Command::Serve(_) | Command::Run { .. } | Command::Exec { .. } | Command::Install { .. } | Command::Bench(_)
    ) && let Err(e) = ignite::engine::raise_open_files()
    {
        tracing::warn!(error = %e, "keeping the open-file limit as it is");
    }
    // A server under too low a limit still starts (and /ready says why), but says so at once.
    if matches!(cli.command, Command::Serve(_))
        && let Err(e) = ignite::engine::sandbox_open_files()
    {
        tracing::warn!(error = %e, "no sandbox can start");
    }
    let json = match &cli.command {
        Command::Run { run, .. } | Command::Exec { run, .. } => run.json,
        Command::Install { json, .. }
        | Command::Doctor { json }
        | Command::Lock { json, .. }
        | Command::Env { json, .. }
        | Command::Preflight { json, .. }
        | Command::Report { json, .. } => *json,
        Command::Policy { command: PolicyCommand::Show { json, .. } } => *json,
        Command::Bench(args) => args.json(),
        _ => false,
    };
    let result = dispatch(cli, &matches);
    // The report is out; slirp4netns processes stopped on the way are reaped before exiting.
    ignite::engine::wait_for_helpers();
    match result {
        Ok(code) => ExitCode::from(code.clamp(0, 255) as u8),
        Err(err) => {
            if json {
                let v = match err.downcast_ref::<RunError>().and_then(RunError::preflight) {
                    Some(checks) => serde_json::json!({
                        "error": { "code": "preflight_failed", "message": error_text(&err) },
                        "preflight": checks,
                    }),
                    None => serde_json::json!({ "error": { "code": "ignite_error", "message": error_text(&err) } }),
                };
                println!("{v}");
            }
            eprintln!("ignite: error: {}", error_text(&err));
            ExitCode::from(EXIT_IGNITE_ERROR as u8)
        }
    }
}

/// An error and its causes on one line, each cause said once: many typed errors already include
/// their cause's text in their own message (`failed to read X: <io error>`), and repeating it
/// from the chain would print it twice.
fn error_text(err: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in err.chain() {
        let part = cause.to_string();
        if text.contains(&part) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&part);
    }
    text
}

/// stderr for log lines, whose write errors are dropped: a server whose stderr was closed (its
/// supervisor went away) must still drain on SIGTERM, and a failed log write would otherwise be
/// reported by a panic inside whichever task logged.
struct LogWriter(std::io::Stderr);

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let _ = self.0.write_all(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let _ = self.0.flush();
        Ok(())
    }
}

fn init_tracing(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("IGNITE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| LogWriter(std::io::stderr()))
        .with_target(false)
        // Escape codes only for a person at a terminal, not in a server's log files.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

fn dispatch(cli: Cli, matches: &ArgMatches) -> anyhow::Result<i32> {
    match cli.command {
        Command::Run { dir, run } => run_service(&cli.global, &dir, true, None, run),
        Command::Exec { dir, entry, run } => run_service(&cli.global, &dir, false, entry, run),
        // Relative to the current directory, so messages show the name as typed.
        Command::Init { name, runtime } => init::init(Path::new(""), &name, &runtime),
        Command::Lock { dir, check, runtime, json, quiet } => {
            let progress: Box<dyn Progress> =
                if quiet { Box::new(NoProgress) } else { Box::new(StderrProgress::new()) };
            lock::lock(&cli.global, &dir, runtime.as_deref(), check, json, progress.as_ref())
        }
        Command::Env { dir, json } => env::env(&cli.global, matches, dir, json),
        Command::Completions { shell } => completions::completions(shell),
        Command::Man { out } => completions::man(out.as_deref()),
        Command::Runtime { command } => runtime_command(&cli.global, command),
        Command::Policy { command: PolicyCommand::Show { dir, policy, audit, json } } => {
            if !dir.is_dir() {
                bail!("{} is not a directory", dir.display());
            }
            let effective = policy::resolve(&dir, policy.as_deref(), audit)?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&effective.to_json()).context("failed to serialise the policy")?
                );
            } else {
                let file = effective.file.as_ref().map_or_else(|| "none".to_string(), |f| f.display().to_string());
                println!("policy file: {file}{}", if audit { " (audit mode)" } else { "" });
                print!("{}", effective.describe());
            }
            Ok(0)
        }
        Command::Install { dir, json, quiet } => install_service(&cli.global, &dir, json, quiet),
        Command::Preflight { dir, json, strict, runtime, memory, timeout } => {
            let overrides = Overrides { runtime, memory_mb: memory, timeout_ms: timeout, ..Overrides::default() };
            preflight::preflight_command(&cli.global, &dir, &overrides, json, strict)
        }
        Command::Report { dir, json } => preflight::report_command(&cli.global, &dir, json),
        Command::Cleanup => {
            require_root()?;
            // Cleaning up needs no runtime: a broken custom definition must not block it.
            let engine = Engine::new(Settings { runtimes_dirs: Vec::new(), ..settings(&cli.global)? })?;
            let reaped = tokio_rt()?.block_on(engine.reap_stale());
            eprintln!("ignite: removed {} leftover run(s){}", reaped.len(), list_suffix(&reaped));
            let left = engine.reap_server_dirs();
            eprintln!(
                "ignite: removed {} session workspace(s){} and {} inline code director{}{}",
                left.sessions.len(),
                list_suffix(&left.sessions),
                left.inline.len(),
                if left.inline.len() == 1 { "y" } else { "ies" },
                list_suffix(&left.inline)
            );
            let staged = engine.clear_staged();
            eprintln!("ignite: removed {staged} staged TypeScript cop{}", if staged == 1 { "y" } else { "ies" });
            Ok(0)
        }
        Command::Doctor { json } => doctor(&cli.global, json),
        Command::StripWorker => Ok(ignite::store::stage::serve_worker()),
        Command::OciHook { name } => {
            ignite::sandbox::oci::hook::run(&name, &mut std::io::stdin().lock(), std::path::Path::new("/proc"))?;
            Ok(0)
        }
        Command::Serve(args) => serve(&cli.global, args),
        Command::Bench(args) => {
            let given = matches!(
                matches.value_source("oci_runtime"),
                Some(clap::parser::ValueSource::CommandLine | clap::parser::ValueSource::EnvVariable)
            );
            bench::bench(&cli.global, given, args)
        }
    }
}

/// `ignite doctor`: the OCI runtime and entrypoint are resolved exactly as a run resolves them.
fn doctor(g: &GlobalArgs, json: bool) -> anyhow::Result<i32> {
    // Resolved but not judged: the doctor's own checks say what this host does to it.
    let path_env = std::env::var_os("PATH");
    let oci = ignite::host::doctor::select::resolve(&g.oci_runtime, path_env.as_deref(), None)
        .map(|s| (s.kind, s.path))
        .map_err(|e| e.to_string());
    let entrypoint = find_init().map_err(|e| error_text(&e));
    let opts = ignite::host::doctor::DoctorOptions::host(
        g.cache_dir.clone(),
        g.state_dir.clone(),
        g.oci_runtime.clone(),
        oci,
        entrypoint,
    );
    let report = ignite::host::doctor::run(&opts);
    let text = if json {
        serde_json::to_string_pretty(&report).context("failed to serialise the doctor's report")? + "\n"
    } else {
        report.table()
    };
    print_stdout(&text)?;
    Ok(report.exit_code())
}

fn serve(g: &GlobalArgs, a: ServeArgs) -> anyhow::Result<i32> {
    require_root()?;
    let env_keys = ignite::server::Keys::take_env()?;
    let keys = ignite::server::Keys::load(a.api_key_file.as_deref(), env_keys.as_deref())?;
    let pass_env = g.passed_env()?;
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    if a.pool_idle_ttl == 0 {
        anyhow::bail!("--pool-idle-ttl must be at least 1 second");
    }
    let mut overrides = std::collections::BTreeMap::new();
    for text in &a.pool_overrides {
        let (name, sizing) = ignite::engine::pool::parse_override(text)?;
        overrides.insert(name, sizing);
    }
    let memory_budget_mb = match a.pool_memory_mb {
        Some(mb) => mb,
        None => {
            let meminfo = std::fs::read_to_string("/proc/meminfo").context("failed to read /proc/meminfo")?;
            ignite::engine::pool::default_budget_mb(&meminfo)
        }
    };
    let pool = ignite::engine::pool::PoolConfig {
        default: ignite::engine::pool::Sizing { min: a.pool_min, max: a.pool_max },
        overrides,
        idle_ttl: std::time::Duration::from_secs(a.pool_idle_ttl),
        memory_budget_mb,
    };
    let config = ignite::server::Config {
        services_dir: a.services,
        addr: std::net::SocketAddr::new(a.host, a.port),
        keys,
        pass_env,
        insecure_no_auth: a.insecure_no_auth,
        trust_proxy: a.trust_proxy,
        rate_limit: a.rate_limit,
        max_concurrent: a.max_concurrent.unwrap_or(cpus),
        queue: a.queue,
        max_body: a.max_body,
        max_input: a.max_input,
        shutdown_timeout: std::time::Duration::from_secs(a.shutdown_timeout),
        sessions: ignite::server::SessionConfig {
            default_ttl: std::time::Duration::from_secs(a.session_ttl),
            max_ttl: std::time::Duration::from_secs(a.session_max_ttl),
            quota_mb: a.session_quota_mb,
            max_sessions: a.max_sessions,
            max_per_key: a.max_sessions_per_key,
            max_waiting: a.session_max_waiting,
        },
        connections: ignite::server::ConnLimits {
            max_connections: a.max_connections,
            max_per_peer: a.max_connections_per_peer,
            header_timeout: std::time::Duration::from_secs(a.header_timeout),
            idle_timeout: std::time::Duration::from_secs(a.idle_timeout),
        },
        pool,
        skip_preflight: a.skip_preflight,
        locked: a.locked,
    };
    let engine = engine(g)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("failed to start the async runtime")?;
    rt.block_on(ignite::server::serve(config, engine))?;
    Ok(0)
}

fn list_suffix(ids: &[String]) -> String {
    if ids.is_empty() { String::new() } else { format!(": {}", ids.join(", ")) }
}

fn tokio_rt() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread().enable_all().build().context("failed to start the async runtime")
}

fn settings(g: &GlobalArgs) -> anyhow::Result<Settings> {
    Ok(Settings::detect(&host_choice(g))?)
}

fn host_choice(g: &GlobalArgs) -> HostChoice {
    HostChoice {
        state_dir: g.state_dir.clone(),
        cache_dir: g.cache_dir.clone(),
        oci_runtime: g.oci_runtime.clone(),
        runtimes_dirs: g.runtimes_dirs.clone(),
        install_ca_file: g.install_ca_file.clone(),
        ignite_binary: None,
    }
}

/// The custom runtimes directories the engine would use (see [`ignite::engine::runtimes_dirs`]).
fn runtimes_dirs(g: &GlobalArgs) -> Vec<PathBuf> {
    ignite::engine::runtimes_dirs(&g.runtimes_dirs)
}

fn engine(g: &GlobalArgs) -> anyhow::Result<Engine> {
    Ok(Engine::new(settings(g)?)?)
}

/// The entrypoint ships beside the `ignite` binary; `IGNITE_INIT` overrides.
fn find_init() -> anyhow::Result<PathBuf> {
    ignite::engine::find_init().map_err(|e| anyhow!(e))
}

fn parse_env(pairs: &[String]) -> anyhow::Result<Vec<(String, String)>> {
    pairs
        .iter()
        .map(|p| {
            p.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .ok_or_else(|| anyhow!("--env {p:?}: expected KEY=VALUE"))
        })
        .collect()
}

/// Streams the program's output to ours as it arrives.
struct LiveOutput;

impl OutputSink for LiveOutput {
    fn chunk(&self, stream: Stream, bytes: &[u8]) {
        // A closed terminal or pipe must not stop the run; the report still has the output.
        let _ = match stream {
            Stream::Stdout => {
                let mut o = std::io::stdout().lock();
                o.write_all(bytes).and_then(|()| o.flush())
            }
            Stream::Stderr => std::io::stderr().lock().write_all(bytes),
        };
    }
}

fn run_service(g: &GlobalArgs, dir: &Path, required: bool, entry: Option<String>, a: RunArgs) -> anyhow::Result<i32> {
    let overrides = Overrides {
        runtime: a.runtime.clone(),
        entry,
        memory_mb: a.memory,
        timeout_ms: a.timeout,
        cpu_limit: a.cpu,
        env: parse_env(&a.env)?,
    };
    let engine = engine(g)?;
    let progress: Arc<dyn Progress> = if a.quiet { Arc::new(NoProgress) } else { Arc::new(StderrProgress::new()) };
    let mut req = Request::new(Program::Dir { dir: dir.to_path_buf(), required, overrides, pass_env: g.passed_env()? });
    req.input = match a.input.as_deref() {
        None => Input::Json("{}".to_string()),
        Some(s) => match s.strip_prefix('@') {
            Some(file) => Input::File(PathBuf::from(file)),
            None => Input::Json(s.to_string()),
        },
    };
    req.policy = PolicyChoice::Service { file: a.policy.clone() };
    req.audit = a.audit;
    req.output_limit = a.output_limit.map(|bytes| (bytes, "--output-limit"));
    req.lock = if a.locked { LockCheck::Required } else { LockCheck::Off };
    req.progress = progress;
    if a.print_spec {
        let spec = engine.spec(req)?;
        let text = serde_json::to_string_pretty(&spec).context("failed to serialise the spec")?;
        println!("{text}");
        return Ok(0);
    }
    require_root()?;
    req.preflight = if a.skip_preflight { PreflightGate::Skip } else { PreflightGate::Enforce };
    if !a.quiet {
        req.on_preflight = Some(Box::new(preflight::print_warnings));
    }
    if !a.json {
        req.sink = Some(Arc::new(LiveOutput));
    }
    let (outcome, signal) = with_signals(|cancel| engine.run(req, cancel))?;
    let outcome = match outcome {
        Ok(o) => o,
        Err(RunError::Preflight { full }) => {
            preflight::write_report_file(&full, a.report.as_deref())?;
            return Err(RunError::Preflight { full }.into());
        }
        Err(e) => return interrupted_or(e, signal),
    };
    preflight::write_report_file(&outcome.full, a.report.as_deref())?;
    let report = outcome.report;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report).context("failed to serialise the report")?);
    } else if !a.quiet {
        eprintln!("{}", report.summary());
    }
    Ok(match signal {
        Some(sig) => 128 + sig,
        None => report.cli_exit_code(),
    })
}

/// Runs `work` to completion with SIGINT/SIGTERM wired to its cancellation token; returns its
/// output and the signal that cut it short, if any.
fn with_signals<F: std::future::Future>(
    work: impl FnOnce(CancellationToken) -> F,
) -> anyhow::Result<(F::Output, Option<i32>)> {
    let rt = tokio_rt()?;
    let cancel = CancellationToken::new();
    Ok(rt.block_on(async {
        let watcher = tokio::spawn(watch_signals(cancel.clone()));
        let output = work(cancel.clone()).await;
        let signal = if cancel.is_cancelled() { watcher.await.ok().flatten() } else { None };
        (output, signal)
    }))
}

/// An error from interrupted work (e.g. killed while installing dependencies) still ends with
/// the documented 128+N, after saying what was cut short; any other error is ignite's own.
fn interrupted_or(e: impl Into<anyhow::Error>, signal: Option<i32>) -> anyhow::Result<i32> {
    let e = e.into();
    match signal {
        Some(sig) => {
            eprintln!("ignite: {}", error_text(&e));
            Ok(128 + sig)
        }
        None => Err(e),
    }
}

fn require_root() -> anyhow::Result<()> {
    if !nix::unistd::geteuid().is_root() {
        bail!(
            "running sandboxes needs root (the OCI runtime creates namespaces and cgroups); run ignite as root or with sudo"
        );
    }
    Ok(())
}

/// `ignite install DIR`: only the dependency step.
fn install_service(g: &GlobalArgs, dir: &Path, json: bool, quiet: bool) -> anyhow::Result<i32> {
    let svc = service::load(dir, false, &Overrides::default(), &g.passed_env()?)?;
    require_root()?;
    let engine = engine(g)?;
    let progress: Box<dyn Progress> = if quiet { Box::new(NoProgress) } else { Box::new(StderrProgress::new()) };
    let (result, signal) = with_signals(|cancel| engine.install(&svc, progress.as_ref(), cancel))?;
    let (modules, report) = match result {
        Ok(r) => r,
        Err(e) => return interrupted_or(e, signal),
    };
    let kind = match &modules {
        ignite::store::deps::Modules::None => "none",
        ignite::store::deps::Modules::Vendored(_) => "vendored",
        ignite::store::deps::Modules::Install(_) => "installed",
    };
    if json {
        let v = serde_json::json!({ "service": svc.name, "modules": kind, "install": report });
        println!("{v}");
    } else if !quiet {
        let line = match (&modules, &report) {
            (_, Some(r)) => format!(
                "{} package{} ready ({}{}, {})",
                r.packages,
                if r.packages == 1 { "" } else { "s" },
                if r.cached { "cached" } else { "installed" },
                r.lockfile.as_ref().map(|l| format!(" from {l}")).unwrap_or_default(),
                r.installer
            ),
            (ignite::store::deps::Modules::Vendored(p), None) => {
                format!("uses its own {} as it is; nothing to install", p.display())
            }
            _ => "no dependencies to install".to_string(),
        };
        eprintln!("ignite: {}: {line}", svc.name);
    }
    Ok(0)
}

/// Cancels the run on SIGINT or SIGTERM; returns the signal number received.
async fn watch_signals(cancel: CancellationToken) -> Option<i32> {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut int), Ok(mut term)) = (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) else {
        return None;
    };
    let sig = tokio::select! {
        _ = int.recv() => 2,
        _ = term.recv() => 15,
        _ = cancel.cancelled() => return None,
    };
    cancel.cancel();
    Some(sig)
}

fn runtime_command(g: &GlobalArgs, cmd: RuntimeCommand) -> anyhow::Result<i32> {
    let dirs = runtimes_dirs(g);
    let registry = ignite::data::runtime::Registry::load(&dirs)?;
    let store = ignite::store::bundle::BundleStore::new(g.cache_dir.clone());
    match cmd {
        RuntimeCommand::Pull { spec } => {
            let rt = registry.resolve(&spec)?;
            let rootfs = store.pull(&rt, &StderrProgress::new())?;
            eprintln!("ignite: {} ready: {} ({})", rt.key(), rootfs.digest, rootfs.path.display());
            Ok(0)
        }
        RuntimeCommand::List { json } => {
            let inventory = ignite::host::inventory::inventory(&registry, &store, &dirs);
            let text = if json {
                serde_json::to_string_pretty(&inventory).context("failed to serialise the list")? + "\n"
            } else {
                runtime_table(&inventory)
            };
            print_stdout(&text)?;
            Ok(0)
        }
    }
}

/// Writes to stdout; a reader that went away (`| head`) is not an error.
fn print_stdout(text: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e).context("failed to write to stdout"),
        _ => Ok(()),
    }
}

/// `ignite runtime list` for people: one row per version, then where the list came from.
fn runtime_table(inv: &ignite::host::inventory::Inventory) -> String {
    let mut rows = vec![["RUNTIME", "VERSION", "DEFAULT", "TYPESCRIPT", "LOCAL BUNDLE", "ORIGIN"].map(String::from)];
    for rt in &inv.runtimes {
        let typescript = serde_json::to_value(rt.typescript).ok().and_then(|v| v.as_str().map(String::from));
        for v in &rt.versions {
            let bundle = match &v.bundle {
                // 12 hex digits identify a bundle among the few a cache holds; --json has all.
                Some(b) => format!("{} {}", b.digest.get(..19).unwrap_or(&b.digest), megabytes(b.unpacked_bytes)),
                None => "not pulled".to_string(),
            };
            rows.push([
                rt.name.clone(),
                v.version.clone(),
                if v.default { "yes".into() } else { String::new() },
                typescript.clone().unwrap_or_default(),
                bundle,
                rt.origin.clone(),
            ]);
        }
    }
    let widths: Vec<usize> = (0..6).map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0)).collect();
    let mut out = String::new();
    for row in &rows {
        let cells: Vec<String> = row.iter().zip(&widths).map(|(cell, w)| format!("{cell:<w$}")).collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    let dirs = if inv.runtimes_dirs.is_empty() {
        format!("none (--runtimes-dir, {RUNTIMES_DIR_ENV} or ~/.config/ignite/runtimes add some)")
    } else {
        inv.runtimes_dirs.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(", ")
    };
    out.push_str(&format!("\ncustom runtimes directories: {dirs}\nbundle cache: {}\n", inv.cache_dir.display()));
    out
}

/// "98.1 MB" (decimal, as the download progress prints).
fn megabytes(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}
