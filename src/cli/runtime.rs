//! `ignite runtime pull|list|export|import`: the runtime bundles outside any run (no root, no
//! OCI runtime needed).

use anyhow::Context;

use ignite::data::runtime::Registry;
use ignite::engine::{RUNTIMES_DIR_ENV, StderrProgress};
use ignite::host::inventory::Inventory;

use super::args::RuntimeCommand;
use super::{GlobalArgs, print_stdout, runtimes_dirs};

/// `ignite runtime pull SPEC`, `list`, `export SPEC… -o FILE` and `import FILE`.
pub(super) fn runtime_command(g: &GlobalArgs, cmd: RuntimeCommand) -> anyhow::Result<i32> {
    let dirs = runtimes_dirs(g);
    let registry = Registry::load(&dirs)?;
    match cmd {
        RuntimeCommand::Pull { spec } => {
            let pulled = ignite::engine::pull_runtime(&registry, &spec, &g.cache_dir, &StderrProgress::new())?;
            eprintln!("ignite: {} ready: {} ({})", pulled.runtime, pulled.digest, pulled.path.display());
            Ok(0)
        }
        RuntimeCommand::List { json } => {
            let inventory = ignite::engine::runtime_inventory(&registry, &g.cache_dir, &dirs);
            let text = if json {
                serde_json::to_string_pretty(&inventory).context("failed to serialise the list")? + "\n"
            } else {
                runtime_table(&inventory)
            };
            print_stdout(&text)?;
            Ok(0)
        }
        RuntimeCommand::Export { specs, output, json } => {
            let exported =
                ignite::engine::export_runtimes(&registry, &specs, &g.cache_dir, &output, &StderrProgress::new())?;
            if json {
                print_stdout(&(serde_json::to_string_pretty(&exported).context("failed to serialise")? + "\n"))?;
            } else {
                for b in &exported.bundles {
                    eprintln!("ignite: {}: {} ({})", b.runtime, b.digest, megabytes(b.bytes));
                }
                eprintln!("ignite: wrote {} ({})", exported.archive.display(), megabytes(exported.bytes));
            }
            Ok(0)
        }
        RuntimeCommand::Import { file, json } => {
            let imported = ignite::engine::import_runtimes(&registry, &file, &g.cache_dir, &StderrProgress::new())?;
            if json {
                print_stdout(&(serde_json::to_string_pretty(&imported).context("failed to serialise")? + "\n"))?;
            } else {
                for b in &imported.bundles {
                    let note = match &b.previous {
                        Some(previous) => format!("replaced {previous}"),
                        None => b.outcome.to_string(),
                    };
                    eprintln!("ignite: {}: {} {note} ({})", b.runtime, b.digest, b.path.display());
                }
            }
            Ok(0)
        }
    }
}

/// `ignite runtime list` for people: one row per version, then where the list came from.
fn runtime_table(inv: &Inventory) -> String {
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
