//! The command line, a thin edge over the engine: `main` parses the arguments (clap, in
//! [`args`]) and `dispatch` hands each command to the module that owns it. The only place
//! besides the binary's `main` where `anyhow` is used.
//!
//! - [`args`]: the clap definitions and help texts;
//! - [`settings`]: from the global flags to the engine's settings (and the root check);
//! - [`run`]: `run`, `exec`, `install`, and how signals cancel them;
//! - [`serve`], [`mcp`], [`runtime`], [`lock`], [`preflight`] (and `report`), [`policy`], [`host`]
//!   (`doctor`, `cleanup`), [`env`], [`init`], [`bench`], [`completions`] (and `man`): one
//!   command (or two) each;
//! - [`output`]: writing to stdout, error text, the log.

mod args;
mod bench;
mod completions;
mod env;
mod host;
mod init;
mod lock;
mod mcp;
mod output;
mod policy;
mod preflight;
mod run;
mod runtime;
mod serve;
mod settings;

use std::path::Path;
use std::process::ExitCode;

use clap::{ArgMatches, CommandFactory, FromArgMatches};

use ignite::data::report::EXIT_IGNITE_ERROR;
use ignite::data::service::Overrides;
use ignite::engine::{NoProgress, Progress, RunError, StderrProgress};

// What the command modules share, named here so that each can take it from `super`.
use args::{Cli, Command, GlobalArgs, PolicyCommand};
use output::{error_text, init_tracing, print_stdout};
use run::with_signals;
use settings::{find_init, runtimes_dirs, settings};

pub fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    // A server's request log is its normal output; other commands only say what went wrong.
    // rmcp logs every message it handles at info: that is the programs' output, not the server's.
    init_tracing(if matches!(cli.command, Command::Serve(_)) { "info,rmcp=warn" } else { "warn,rmcp=error" });
    // Commands that start sandboxes hold descriptors per connection, run and pipe: they get all
    // the open files the host allows them (the sandboxes' own limit fits under it).
    if matches!(
        cli.command,
        Command::Serve(_)
            | Command::Mcp(_)
            | Command::Run { .. }
            | Command::Exec { .. }
            | Command::Install { .. }
            | Command::Bench(_)
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

fn dispatch(cli: Cli, matches: &ArgMatches) -> anyhow::Result<i32> {
    match cli.command {
        Command::Run { dir, run } => run::run_service(&cli.global, &dir, true, None, run),
        Command::Exec { dir, entry, run } => run::run_service(&cli.global, &dir, false, entry, run),
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
        Command::Runtime { command } => runtime::runtime_command(&cli.global, command),
        Command::Policy { command: PolicyCommand::Show { dir, policy, audit, json } } => {
            policy::show(&dir, policy.as_deref(), audit, json)
        }
        Command::Install { dir, json, quiet, export, import } => {
            run::install_service(&cli.global, &dir, json, quiet, export.as_deref(), import.as_deref())
        }
        Command::Preflight { dir, json, strict, runtime, memory, timeout } => {
            let overrides = Overrides { runtime, memory_mb: memory, timeout_ms: timeout, ..Overrides::default() };
            preflight::preflight_command(&cli.global, &dir, &overrides, json, strict)
        }
        Command::Report { dir, json } => preflight::report_command(&cli.global, &dir, json),
        Command::Cleanup => host::cleanup(&cli.global),
        Command::Doctor { json } => host::doctor(&cli.global, json),
        Command::StripWorker => Ok(ignite::engine::internal::strip_worker::serve()),
        Command::ReadOut { pid } => Ok(ignite::engine::internal::read_out::serve(pid)),
        Command::OciHook { name } => {
            ignite::engine::internal::hook::run(&name, &mut std::io::stdin().lock())?;
            Ok(0)
        }
        Command::Serve(args) => serve::serve(&cli.global, args),
        Command::Mcp(args) => mcp::mcp(&cli.global, args),
        Command::Bench(args) => {
            let given = matches!(
                matches.value_source("oci_runtime"),
                Some(clap::parser::ValueSource::CommandLine | clap::parser::ValueSource::EnvVariable)
            );
            bench::bench(&cli.global, given, args)
        }
    }
}
