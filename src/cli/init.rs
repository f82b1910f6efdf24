//! `ignite init NAME`: scaffold a service directory from the runtime's template.

use std::path::Path;

use anyhow::{Context, bail};

const BUN_INDEX: &str = include_str!("../../runtimes/bun/template/index.ts");
const BUN_PACKAGE: &str = include_str!("../../runtimes/bun/template/package.json");

/// Creates `<parent>/<name>/` with service.yaml, index.ts and package.json. Refuses to
/// touch an existing path.
pub fn scaffold(parent: &Path, name: &str, runtime: &str) -> anyhow::Result<()> {
    ignite::service::validate_dns_label(name).map_err(|r| anyhow::anyhow!("service name: {r}"))?;
    let registry = ignite::runtime::Registry::builtin()?;
    let rt = registry.resolve(runtime)?;
    if rt.name != "bun" {
        bail!("no template for runtime {} yet; available: bun", rt.name);
    }
    let dir = parent.join(name);
    if dir.symlink_metadata().is_ok() {
        bail!("{} already exists; choose another name or remove it", dir.display());
    }
    std::fs::create_dir(&dir).with_context(|| format!("failed to create {}", dir.display()))?;
    let service_yaml = format!(
        "# Ignite service definition. Fields: name, runtime, entry, memoryMb, timeoutMs, cpuLimit, env, dependencies.\n\
service:\n  name: {name}\n  runtime: {runtime}\n  entry: index.ts\n  memoryMb: 128\n  timeoutMs: 10000\n"
    );
    let files = [
        ("service.yaml", service_yaml),
        ("index.ts", BUN_INDEX.replace("__NAME__", name)),
        ("package.json", BUN_PACKAGE.replace("__NAME__", name)),
    ];
    for (file, text) in files {
        let path = dir.join(file);
        std::fs::write(&path, text).with_context(|| format!("failed to write {}", path.display()))?;
    }
    eprintln!("ignite: created {}/ (service.yaml, index.ts, package.json)", dir.display());
    eprintln!("  run it:  ignite run {} --input '{{\"data\":[1,2,3],\"operation\":\"sum\"}}'", dir.display());
    Ok(())
}
