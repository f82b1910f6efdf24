//! `ignite init NAME --runtime R`: scaffold a service directory from the runtime's template.

use std::path::Path;

use ignite::data::runtime::Registry;

pub fn init(parent: &Path, name: &str, runtime: &str) -> anyhow::Result<i32> {
    let made = ignite::data::template::scaffold(parent, name, runtime, &Registry::builtin()?)?;
    eprintln!("ignite: created {}/ ({}) for {}", made.dir.display(), made.files.join(", "), made.runtime);
    eprintln!("  run it:  ignite run {} --input '{{\"data\":[1,2,3],\"operation\":\"sum\"}}'", made.dir.display());
    Ok(0)
}
