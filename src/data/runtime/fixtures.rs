//! Test fixtures shared by the registry's unit tests: a small definition with versions that
//! tell whole-component matching from string prefixes, and a registry holding only it.

use super::{Origin, Registry, RuntimeDef, builtin_recipe};

pub const MINIMAL: &str = r#"
name: demo
description: a test runtime
default: "1.4.5"
recipe: bun
command: ["/usr/local/bin/demo", "{entry}"]
entryExtensions: [js]
typescript: native
versions:
  - version: "1.4.5"
    package: { name: demo, version: "1.4.5", url: "https://example.invalid/demo-1.4.5.tgz", integrity: "sha512-IWX9BELoGHAUtMonkeSaNaZwXzRk+oDw6Mk+HBFXd3KHYIBNBsIGRupMZPcgNoDbJpLu6gAJjIoIVPZtt1aJ1g==" }
  - version: "1.45.0"
    package: { name: demo, version: "1.45.0", url: "https://example.invalid/demo-1.45.0.tgz", integrity: "sha512-IWX9BELoGHAUtMonkeSaNaZwXzRk+oDw6Mk+HBFXd3KHYIBNBsIGRupMZPcgNoDbJpLu6gAJjIoIVPZtt1aJ1g==" }
  - version: "1.4.10"
    package: { name: demo, version: "1.4.10", url: "https://example.invalid/demo-1.4.10.tgz", integrity: "sha512-IWX9BELoGHAUtMonkeSaNaZwXzRk+oDw6Mk+HBFXd3KHYIBNBsIGRupMZPcgNoDbJpLu6gAJjIoIVPZtt1aJ1g==" }
  - version: "2.0.0"
    package: { name: demo, version: "2.0.0", url: "https://example.invalid/demo-2.0.0.tgz", integrity: "sha512-IWX9BELoGHAUtMonkeSaNaZwXzRk+oDw6Mk+HBFXd3KHYIBNBsIGRupMZPcgNoDbJpLu6gAJjIoIVPZtt1aJ1g==" }
"#;

pub fn demo_registry() -> Registry {
    let mut registry = Registry::empty();
    let def = RuntimeDef::parse(MINIMAL, "test").expect("parse");
    registry.add(def, builtin_recipe("bun").expect("recipe"), Origin::BuiltIn("test")).expect("add");
    registry
}
