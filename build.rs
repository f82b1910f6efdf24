//! Build script: converts the built-in YAML data files (the seccomp profile and the runtime
//! definitions) to JSON, embedded beside the YAML. Every `ignite` invocation loads them, and
//! parsing the YAML cost about 1 ms per process (measured with perf on a release build) where
//! the same document as JSON parses in a few tens of microseconds. The YAML stays the one
//! source: the JSON is derived from it at each build, and a unit test checks that both
//! forms load to the same values.

// A build script reports a broken input by panicking: cargo shows the message and stops.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::path::Path;

/// Built-in YAML files (relative to the crate root) converted to `$OUT_DIR/<same path>.json`.
const CONVERTED: &[&str] = &[
    "policies/seccomp/default.yaml",
    "runtimes/bun/runtime.yaml",
    "runtimes/deno/runtime.yaml",
    "runtimes/node/runtime.yaml",
    "runtimes/quickjs/runtime.yaml",
];

fn main() {
    let out_dir = std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR for build scripts");
    for rel in CONVERTED {
        println!("cargo:rerun-if-changed={rel}");
        let text = std::fs::read_to_string(rel).unwrap_or_else(|e| panic!("failed to read {rel}: {e}"));
        let value: serde_json::Value =
            serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("{rel} is not valid YAML: {e}"));
        let out = Path::new(&out_dir).join(format!("{rel}.json"));
        if let Some(parent) = out.parent() {
            std::fs::create_dir_all(parent).unwrap_or_else(|e| panic!("failed to create {}: {e}", parent.display()));
        }
        let json = serde_json::to_string(&value).expect("a YAML value serialises as JSON");
        std::fs::write(&out, json).unwrap_or_else(|e| panic!("failed to write {}: {e}", out.display()));
    }
    println!("cargo:rerun-if-changed=build.rs");
}
