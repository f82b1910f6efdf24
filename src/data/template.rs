//! `ignite init`: the starter service of each built-in runtime (data files in
//! `runtimes/<name>/template/`, embedded in the binary) and scaffolding a new service directory
//! from one, without ever touching an existing path.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::data::runtime::{Registry, RuntimeError};
use crate::data::service::validate_dns_label;
use crate::fsutil::Cleanup;
use crate::fsutil::{At, IoError};

/// Placeholders the templates hold: the service name, and the runtime spec as given.
const NAME: &str = "__NAME__";
const RUNTIME: &str = "__RUNTIME__";

/// One runtime's template: (file name, text).
pub struct Template {
    pub runtime: &'static str,
    pub files: &'static [(&'static str, &'static str)],
}

/// Every built-in runtime has one, TypeScript for all: bun and deno run it as it is, node and
/// quickjs get it with the types stripped by ignite.
pub const TEMPLATES: &[Template] = &[
    Template {
        runtime: "bun",
        files: &[
            ("service.yaml", include_str!("../../runtimes/bun/template/service.yaml")),
            ("index.ts", include_str!("../../runtimes/bun/template/index.ts")),
            ("package.json", include_str!("../../runtimes/bun/template/package.json")),
        ],
    },
    Template {
        runtime: "deno",
        files: &[
            ("service.yaml", include_str!("../../runtimes/deno/template/service.yaml")),
            ("index.ts", include_str!("../../runtimes/deno/template/index.ts")),
        ],
    },
    Template {
        runtime: "node",
        files: &[
            ("service.yaml", include_str!("../../runtimes/node/template/service.yaml")),
            ("index.ts", include_str!("../../runtimes/node/template/index.ts")),
            ("package.json", include_str!("../../runtimes/node/template/package.json")),
        ],
    },
    Template {
        runtime: "quickjs",
        files: &[
            ("service.yaml", include_str!("../../runtimes/quickjs/template/service.yaml")),
            ("index.ts", include_str!("../../runtimes/quickjs/template/index.ts")),
            ("package.json", include_str!("../../runtimes/quickjs/template/package.json")),
        ],
    },
];

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("service name {name:?}: {reason}")]
    BadName { name: String, reason: String },
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error("no template for runtime {runtime}; templates exist for: {available}")]
    NoTemplate { runtime: String, available: String },
    #[error("{path} already exists; choose another name or remove it")]
    Exists { path: PathBuf },
    #[error(transparent)]
    Io(#[from] IoError),
}

/// The template of a runtime, by name.
pub fn template(runtime: &str) -> Option<&'static Template> {
    TEMPLATES.iter().find(|t| t.runtime == runtime)
}

/// A created service directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scaffolded {
    pub dir: PathBuf,
    /// `name@version` the runtime spec resolves to now.
    pub runtime: String,
    pub files: Vec<&'static str>,
}

/// Creates `<parent>/<name>/` from the template of `runtime_spec`'s runtime (`node`,
/// `node@22`, …); service.yaml gets the spec as given, so `node@22` stays on the 22 line.
/// Refuses an existing path (file, directory or symlink); on failure removes what it created.
pub fn scaffold(
    parent: &Path,
    name: &str,
    runtime_spec: &str,
    registry: &Registry,
) -> Result<Scaffolded, TemplateError> {
    validate_dns_label(name).map_err(|reason| TemplateError::BadName { name: name.to_string(), reason })?;
    let runtime = registry.resolve(runtime_spec)?;
    let template = template(&runtime.name).ok_or_else(|| TemplateError::NoTemplate {
        runtime: runtime.name.clone(),
        available: TEMPLATES.iter().map(|t| t.runtime).collect::<Vec<_>>().join(", "),
    })?;
    let dir = parent.join(name);
    // create_dir fails on anything already there, a dangling symlink included: no check-then-act.
    match fs::create_dir(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Err(TemplateError::Exists { path: dir }),
        Err(source) => return Err(TemplateError::from(IoError::new("create", dir, source))),
    }
    let created = Cleanup::new(dir.clone());
    // The sandbox user reads the service directory: make it readable whatever the umask.
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).at("set permissions of", &dir)?;
    for (file, text) in template.files {
        let path = dir.join(file);
        let text = text.replace(NAME, name).replace(RUNTIME, runtime_spec);
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(&path)
            .and_then(|mut f| {
                f.set_permissions(fs::Permissions::from_mode(0o644))?;
                f.write_all(text.as_bytes())
            })
            .at("write", &path)?;
    }
    created.keep();
    Ok(Scaffolded { dir, runtime: runtime.key(), files: template.files.iter().map(|(f, _)| *f).collect() })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registry() -> Registry {
        Registry::builtin().expect("registry")
    }

    #[test]
    fn every_builtin_runtime_has_a_typescript_template_that_reads_the_input() {
        for (def, _) in registry().definitions() {
            let t = template(&def.name).unwrap_or_else(|| panic!("no template for {}", def.name));
            let names: Vec<&str> = t.files.iter().map(|(f, _)| *f).collect();
            assert!(names.contains(&"service.yaml") && names.contains(&"index.ts"), "{}: {names:?}", def.name);
            let index = t.files.iter().find(|(f, _)| *f == "index.ts").map(|(_, s)| *s).unwrap_or_default();
            assert!(index.contains("IGNITE_INPUT") && index.contains("JSON.stringify"), "{}", def.name);
            assert!(index.contains("interface Input"), "{}: TypeScript", def.name);
        }
    }

    #[test]
    fn scaffolds_with_the_spec_as_given_and_a_parseable_service_yaml() {
        let t = tempfile::tempdir().expect("tempdir");
        let made = scaffold(t.path(), "adder", "node@22", &registry()).expect("scaffold");
        assert_eq!(made.files, ["service.yaml", "index.ts", "package.json"]);
        assert!(made.runtime.starts_with("node@22."), "{}", made.runtime);
        let yaml_path = made.dir.join("service.yaml");
        let yaml = fs::read_to_string(&yaml_path).expect("read");
        let raw = crate::data::service::parse(&yaml, &yaml_path).expect("parses");
        assert_eq!(raw.name.as_deref(), Some("adder"));
        assert_eq!(raw.runtime.as_deref(), Some("node@22"));
        let pkg = fs::read_to_string(made.dir.join("package.json")).expect("read");
        let pkg: serde_json::Value = serde_json::from_str(&pkg).expect("package.json is JSON");
        assert_eq!(pkg["name"], "adder");
        assert!(!fs::read_to_string(made.dir.join("index.ts")).expect("read").contains(NAME));
    }

    #[test]
    fn refuses_existing_paths_bad_names_and_unknown_runtimes() {
        let t = tempfile::tempdir().expect("tempdir");
        fs::create_dir(t.path().join("taken")).expect("mkdir");
        fs::write(t.path().join("taken/index.ts"), "mine").expect("write");
        let e = scaffold(t.path(), "taken", "bun", &registry()).expect_err("exists");
        assert!(matches!(e, TemplateError::Exists { .. }), "{e}");
        assert_eq!(fs::read_to_string(t.path().join("taken/index.ts")).expect("read"), "mine");
        std::os::unix::fs::symlink("/nonexistent", t.path().join("dangling")).expect("symlink");
        assert!(matches!(scaffold(t.path(), "dangling", "bun", &registry()), Err(TemplateError::Exists { .. })));
        let e = scaffold(t.path(), "Bad_Name", "bun", &registry()).expect_err("name").to_string();
        assert!(e.contains("Bad_Name") && e.contains("DNS label"), "{e}");
        let e = scaffold(t.path(), "x", "cobol", &registry()).expect_err("runtime").to_string();
        assert!(e.contains("cobol"), "{e}");
        let e = scaffold(t.path(), "y", "node@18", &registry()).expect_err("version").to_string();
        assert!(e.contains("18") && e.contains("24."), "{e}");
        for name in ["x", "y"] {
            assert!(!t.path().join(name).exists(), "nothing is left behind on an error");
        }
    }
}
