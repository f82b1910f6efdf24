//! `ignite completions SHELL` and `ignite man`: generated from the same clap definition that
//! parses the command line, so they cannot fall behind it.

use std::path::Path;

use anyhow::Context;
use clap::{Command, CommandFactory};
use clap_complete::Shell;

use super::{Cli, print_stdout};

pub fn completions(shell: Shell) -> anyhow::Result<i32> {
    let mut cmd = without_hidden_commands(Cli::command());
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut cmd, "ignite", &mut script);
    print_stdout(&String::from_utf8_lossy(&script))?;
    Ok(0)
}

/// The command tree minus internal commands (the stripping worker): the generators list hidden
/// subcommands, and a user should not be offered one.
fn without_hidden_commands(cmd: Command) -> Command {
    let visible: Vec<Command> = cmd.get_subcommands().filter(|s| !s.is_hide_set()).cloned().collect();
    let mut out = Command::new("ignite").args(cmd.get_arguments().cloned()).subcommands(visible);
    if let Some(about) = cmd.get_about() {
        out = out.about(about.clone());
    }
    if cmd.get_version().is_some() {
        out = out.version(env!("CARGO_PKG_VERSION"));
    }
    out
}

/// The ignite(1) page on stdout, or with `out` one page per command written there
/// (ignite.1, ignite-run.1, …).
pub fn man(out: Option<&Path>) -> anyhow::Result<i32> {
    let cmd = Cli::command();
    match out {
        Some(dir) => {
            std::fs::create_dir_all(dir).with_context(|| format!("failed to create {}", dir.display()))?;
            clap_mangen::generate_to(cmd, dir)
                .with_context(|| format!("failed to write man pages to {}", dir.display()))?;
            eprintln!("ignite: wrote man pages to {}", dir.display());
        }
        None => {
            let mut page = Vec::new();
            clap_mangen::Man::new(cmd).render(&mut page).context("failed to render the man page")?;
            print_stdout(&String::from_utf8_lossy(&page))?;
        }
    }
    Ok(0)
}
