//! `ignite policy show DIR`: the effective policy and where each value comes from.

use std::path::Path;

use anyhow::{Context, bail};

use ignite::data::policy;

pub(super) fn show(dir: &Path, policy: Option<&Path>, audit: bool, json: bool) -> anyhow::Result<i32> {
    if !dir.is_dir() {
        bail!("{} is not a directory", dir.display());
    }
    let effective = policy::resolve(dir, policy, audit)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&effective.to_json()).context("failed to serialise the policy")?);
    } else {
        let file = effective.file.as_ref().map_or_else(|| "none".to_string(), |f| f.display().to_string());
        println!("policy file: {file}{}", if audit { " (audit mode)" } else { "" });
        print!("{}", effective.describe());
    }
    Ok(0)
}
