//! A program that embeds Ignite — a CI runner, an agent platform — and runs untrusted code
//! through the same engine façade as `ignite run` and the HTTP API: a service directory, then a
//! program sent as files. Every run gets the same gates (policy, lock, preflight) and sandbox.
//!
//! ```sh
//! cargo build --release && sudo target/release/ignite runtime pull bun
//! sudo cargo run --release --example embed -- examples/hello
//! ```
//!
//! The `ignite` and `ignite-init` binaries must be installed (the engine runs `ignite` as the
//! OCI runtime's hook and looks for `ignite-init` beside it): `IGNITE_BINARY` names `ignite`,
//! otherwise the one built beside this example is used.

use std::path::PathBuf;

use ignite::data::service::{Overrides, PassEnv};
use ignite::engine::{Engine, HostChoice, InlineProgram, InlineSource, Input, Program, Request, Settings};
use tokio_util::sync::CancellationToken;

fn ignite_binary() -> Result<PathBuf, Box<dyn std::error::Error>> {
    if let Some(p) = std::env::var_os("IGNITE_BINARY") {
        return Ok(PathBuf::from(p));
    }
    // target/<profile>/examples/embed → target/<profile>/ignite
    let exe = std::env::current_exe()?;
    let profile = exe.parent().and_then(|examples| examples.parent()).ok_or("cannot locate the build directory")?;
    Ok(profile.join("ignite"))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args().nth(1).unwrap_or_else(|| "examples/hello".to_string());
    let engine = Engine::new(Settings::detect(&HostChoice {
        state_dir: "/run/ignite".into(),
        cache_dir: "/var/lib/ignite".into(),
        oci_runtime: "runc".into(),
        ignite_binary: Some(ignite_binary()?),
        ..HostChoice::default()
    })?)?;

    // 1. A service directory: its service.yaml, its policy file, preflight first.
    let mut req = Request::new(Program::Dir {
        dir: dir.into(),
        required: true,
        overrides: Overrides::default(),
        pass_env: PassEnv::none(),
    });
    req.input = Input::Json(r#"{"name":"embedder"}"#.into());
    let outcome = engine.run(req, CancellationToken::new()).await?;
    println!(
        "service: {} in {:.0} ms: {}",
        outcome.report.status.as_str(),
        outcome.report.metrics.wall_time_ms,
        outcome.report.stdout.trim()
    );

    // 2. A program sent as files (model output, a CI step): written to a directory of its own
    //    for the run, the built-in policy only, removed when the run is over.
    const INDEX: &str = "import { greet } from \"./lib/greet.ts\";
console.log(greet(JSON.parse(process.env.IGNITE_INPUT!).name));
";
    const GREET: &str = "export const greet = (name: string) => `hello, ${name}`;\n";
    let files = vec![("index.ts".to_string(), INDEX.to_string()), ("lib/greet.ts".to_string(), GREET.to_string())];
    let program = InlineProgram {
        runtime: "bun".into(),
        source: InlineSource::Files(files),
        entry: None,
        memory_mb: Some(128),
        timeout_ms: Some(5_000),
        cpu: None,
    };
    let mut req = Request::new(Program::Inline(Box::new(program)));
    req.input = Input::Json(r#"{"name":"inline code"}"#.into());
    req.audit = true;
    let outcome = engine.run(req, CancellationToken::new()).await?;
    println!("inline: {}: {}", outcome.report.status.as_str(), outcome.report.stdout.trim());

    Ok(())
}
