//! Custom runtimes: definitions a user drops into a runtimes directory, loaded beside the
//! built-in ones with the same schema and validation ([`RuntimeDef::parse`]), plus what only
//! files need: the directory layout, ownership and permissions (a recipe runs with ignite's
//! privileges), and paths that stay inside the runtime's own directory.
//!
//! ```text
//! <runtimes-dir>/<name>/runtime.yaml   the definition; its `name:` is the directory's name
//! <runtimes-dir>/<name>/build.sh       a recipe script, if `recipe: build.sh` (or ./build.sh)
//! <runtimes-dir>/<name>/<file>         a local package, if a version's url is `file:<file>`
//! ```
//!
//! Everything is checked when the directory is loaded, so a broken definition fails every
//! command with an error naming its file, not the first run that happens to use it.

use crate::fsutil::{At, IoError};
use std::borrow::Cow;
use std::fs::{self, File, Metadata, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Component, Path, PathBuf};

use super::recipe::builtin_recipe_names;
use super::schema::{is_name, is_script_path};
use super::{
    BuildEnvironment, FILE_SCHEME, Origin, PackageSource, RECIPE_LIB, Recipe, Registry, RuntimeDef, RuntimeError,
    builtin_recipe,
};

/// The definition file inside each runtime's directory.
pub const DEFINITION_FILE: &str = "runtime.yaml";

/// Larger than any sensible definition or recipe; stops a stray huge file from being read.
const MAX_TEXT_BYTES: u64 = 1 << 20;

/// Loads every runtime in `dir` into `registry`. Entries starting with `.` are ignored; every
/// other entry must be a runtime directory.
pub fn load_dir(registry: &mut Registry, dir: &Path) -> Result<(), RuntimeError> {
    let root = fs::canonicalize(dir).map_err(|source| match source.kind() {
        io::ErrorKind::NotFound => RuntimeError::Layout {
            path: dir.to_path_buf(),
            problem: "runtimes directory does not exist; create it, or stop naming it in --runtimes-dir / IGNITE_RUNTIMES_DIR".into(),
        },
        _ => RuntimeError::from(IoError::new("open runtimes directory", dir, source)),
    })?;
    let meta = fs::metadata(&root).at("stat", &root)?;
    if !meta.is_dir() {
        return Err(layout(&root, "is not a directory (a runtimes directory holds one directory per runtime)"));
    }
    check_protected(&root, &meta)?;

    let mut names = Vec::new();
    for entry in fs::read_dir(&root).at("read runtimes directory", &root)? {
        let entry = entry.at("read runtimes directory", &root)?;
        names.push(entry.file_name());
    }
    names.sort();
    for name in names {
        let path = root.join(&name);
        let Some(name) = name.to_str() else {
            return Err(layout(&path, "name is not UTF-8; a runtime directory is named like its runtime"));
        };
        if name.starts_with('.') {
            continue;
        }
        let meta = fs::metadata(&path).at("stat", &path)?;
        if !meta.is_dir() {
            let hint = if name.ends_with(".yaml") || name.ends_with(".yml") {
                format!("; move it to {}/<runtime name>/{DEFINITION_FILE}", root.display())
            } else {
                String::new()
            };
            return Err(layout(
                &path,
                &format!(
                    "is not a directory: a runtimes directory holds one directory per runtime, <name>/{DEFINITION_FILE}{hint}"
                ),
            ));
        }
        load_runtime(registry, &path, name)?;
    }
    Ok(())
}

/// Loads `<dir>/runtime.yaml`, its recipe and its local packages.
fn load_runtime(registry: &mut Registry, dir: &Path, dir_name: &str) -> Result<(), RuntimeError> {
    if !is_name(dir_name) {
        return Err(layout(
            dir,
            "directory name must be its runtime's name: lower-case letters, digits and '-', starting with a letter",
        ));
    }
    let rdir = fs::canonicalize(dir).at("open", dir)?;
    let meta = fs::metadata(&rdir).at("stat", &rdir)?;
    check_protected(&rdir, &meta)?;

    let yaml_path = rdir.join(DEFINITION_FILE);
    let text = match read_protected_text(&yaml_path) {
        Err(RuntimeError::Io(e)) if e.kind() == io::ErrorKind::NotFound => {
            return Err(layout(
                &rdir,
                &format!(
                    "has no {DEFINITION_FILE}; every directory in a runtimes directory defines one runtime (remove it if it is not one)"
                ),
            ));
        }
        other => other?,
    };
    let origin = yaml_path.display().to_string();
    let mut def = RuntimeDef::parse(&text, &origin)?;
    if def.name != dir_name {
        return Err(RuntimeError::Invalid {
            origin,
            field: "name".into(),
            problem: format!("{:?} differs from its directory's name {dir_name:?}; they must be the same", def.name),
        });
    }
    // Said before anything else about the file: the fix is a rename, whatever else is wrong.
    if registry.is_builtin(&def.name) {
        return Err(RuntimeError::ShadowsBuiltin { name: def.name, path: yaml_path });
    }

    let recipe = if is_script_path(&def.recipe) {
        let script = resolve_inside(&rdir, &def.recipe, &origin, "recipe")?;
        // The script runs as ignite's user: it gets the same protection as the definition.
        let text = read_protected_text(&script)?;
        Recipe {
            name: def.name.clone(),
            script: Cow::Owned(text),
            lib: Cow::Borrowed(RECIPE_LIB),
            files: Vec::new(),
            environment: BuildEnvironment::Host,
        }
    } else {
        builtin_recipe(&def.recipe).ok_or_else(|| RuntimeError::UnknownRecipe {
            origin: origin.clone(),
            recipe: def.recipe.clone(),
            known: builtin_recipe_names(),
        })?
    };

    for (i, version) in def.versions.iter_mut().enumerate() {
        let PackageSource::File(relative) = version.package.source() else {
            continue;
        };
        let relative = relative.to_string_lossy().into_owned();
        let field = format!("versions[{i}].package.url");
        let path = resolve_inside(&rdir, &relative, &origin, &field)?;
        // The store reads the package from this absolute path; integrity still decides
        // whether it is used.
        let path = path.to_str().ok_or_else(|| layout(&path, "path is not UTF-8"))?;
        version.package.url = format!("{FILE_SCHEME}{path}");
    }
    registry.add(def, recipe, Origin::Custom(yaml_path))
}

/// `rdir/relative`, which must exist, be a regular file, and stay inside `rdir` after
/// symlinks are resolved. `relative` was already checked to have no `..` and not be absolute.
fn resolve_inside(rdir: &Path, relative: &str, origin: &str, field: &str) -> Result<PathBuf, RuntimeError> {
    let invalid =
        |problem: String| RuntimeError::Invalid { origin: origin.to_string(), field: field.to_string(), problem };
    // `./x` and `x` name the same file; show it without the `.`.
    let joined: PathBuf =
        rdir.join(Path::new(relative).components().filter(|c| *c != Component::CurDir).collect::<PathBuf>());
    let path = fs::canonicalize(&joined).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => invalid(format!("{relative:?}: {} does not exist", joined.display())),
        _ => RuntimeError::from(IoError::new("resolve", &joined, e)),
    })?;
    if !path.starts_with(rdir) {
        return Err(invalid(format!(
            "{relative:?} leads to {} through a symlink, outside the runtime's directory {}; keep the file inside it",
            path.display(),
            rdir.display()
        )));
    }
    let meta = fs::metadata(&path).at("stat", &path)?;
    if !meta.is_file() {
        return Err(invalid(format!("{relative:?} ({}) is not a regular file", path.display())));
    }
    Ok(path)
}

/// Reads a definition or recipe: a regular file (not a symlink), protected like its
/// directory, UTF-8, at most [`MAX_TEXT_BYTES`].
fn read_protected_text(path: &Path) -> Result<String, RuntimeError> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .map_err(|source| match source.raw_os_error() {
            Some(libc::ELOOP) => layout(
                path,
                "is a symbolic link; a definition and its recipe must be regular files in the runtime's directory (symlink the whole directory instead)",
            ),
            _ => RuntimeError::from(IoError::new("read", path, source)),
        })?;
    let meta = file.metadata().at("stat", path)?;
    if !meta.is_file() {
        return Err(layout(path, "is not a regular file"));
    }
    check_protected(path, &meta)?;
    read_text(file, path)
}

fn read_text(file: File, path: &Path) -> Result<String, RuntimeError> {
    let mut bytes = Vec::new();
    file.take(MAX_TEXT_BYTES + 1).read_to_end(&mut bytes).at("read", path)?;
    if bytes.len() as u64 > MAX_TEXT_BYTES {
        return Err(layout(path, &format!("is larger than {MAX_TEXT_BYTES} bytes")));
    }
    String::from_utf8(bytes).map_err(|e| {
        layout(path, &format!("is not UTF-8 text (invalid byte at offset {})", e.utf8_error().valid_up_to()))
    })
}

/// A recipe runs with ignite's privileges (usually root), so whoever can change a runtimes
/// directory, a definition or a recipe can run code as ignite. Only ignite's own user and
/// root may own them, and neither group nor others may write them (like sshd's StrictModes).
fn check_protected(path: &Path, meta: &Metadata) -> Result<(), RuntimeError> {
    let euid = nix::unistd::geteuid().as_raw();
    if meta.uid() != euid && meta.uid() != 0 {
        return Err(layout(
            path,
            &format!(
                "is owned by uid {}, but ignite runs as uid {euid}: a custom runtime's recipe runs with ignite's privileges, so its files must belong to uid {euid} or root (chown them)",
                meta.uid()
            ),
        ));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(layout(
            path,
            &format!(
                "is writable by group or others (mode {:04o}): a custom runtime's recipe runs with ignite's privileges, so nobody else may change it (chmod go-w)",
                meta.mode() & 0o7777
            ),
        ));
    }
    Ok(())
}

fn layout(path: &Path, problem: &str) -> RuntimeError {
    RuntimeError::Layout { path: path.to_path_buf(), problem: problem.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    const INTEGRITY: &str =
        "sha512-IWX9BELoGHAUtMonkeSaNaZwXzRk+oDw6Mk+HBFXd3KHYIBNBsIGRupMZPcgNoDbJpLu6gAJjIoIVPZtt1aJ1g==";

    /// A valid definition named `name` with a script recipe and a local package.
    fn yaml(name: &str) -> String {
        format!(
            r#"# a test runtime
name: {name}
description: a test runtime
default: "1.0.0"
recipe: ./build.sh
command: ["/usr/local/bin/tool", "{{entry}}"]
entryExtensions: [js]
typescript: strip
versions:
  - version: "1.0.0"
    package:
      name: tool
      version: "1.0.0"
      url: file:dist/tool.tgz
      integrity: {INTEGRITY}
  - version: "1.2.0"
    package:
      name: tool
      version: "1.2.0"
      url: https://example.invalid/tool-1.2.0.tgz
      integrity: {INTEGRITY}
"#
        )
    }

    /// Writes `path` (relative to `root`) with mode 0644 (0755 for its new directories),
    /// whatever the test process's umask.
    fn write(root: &Path, path: &str, text: &str) {
        let path = root.join(path);
        let parent = path.parent().expect("parent");
        fs::create_dir_all(parent).expect("mkdir");
        let mut dir = parent;
        while dir.starts_with(root) {
            fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).expect("chmod dir");
            match dir.parent() {
                Some(p) => dir = p,
                None => break,
            }
        }
        fs::write(&path, text).expect("write");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).expect("chmod");
    }

    /// A runtimes directory holding one valid runtime `name`.
    fn runtimes_dir(name: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        add_runtime(dir.path(), name, &yaml(name));
        dir
    }

    fn add_runtime(root: &Path, name: &str, yaml: &str) {
        write(root, &format!("{name}/runtime.yaml"), yaml);
        write(root, &format!("{name}/build.sh"), "echo building\n");
        write(root, &format!("{name}/dist/tool.tgz"), "not really a tarball");
    }

    fn load(dirs: &[&Path]) -> Result<Registry, RuntimeError> {
        let dirs: Vec<PathBuf> = dirs.iter().map(|d| d.to_path_buf()).collect();
        Registry::load(&dirs)
    }

    fn error(dirs: &[&Path]) -> String {
        match load(dirs) {
            Ok(_) => panic!("expected an error"),
            Err(e) => e.to_string(),
        }
    }

    fn assert_has(msg: &str, needles: &[&str]) {
        for n in needles {
            assert!(msg.contains(n), "expected {n:?} in: {msg}");
        }
    }

    #[test]
    fn a_custom_runtime_loads_beside_the_builtins() {
        let dir = runtimes_dir("tool");
        let root = fs::canonicalize(dir.path()).expect("canonical");
        let registry = load(&[dir.path()]).expect("load");
        assert!(registry.resolve("bun").is_ok(), "built-ins stay");

        let rt = registry.resolve("tool").expect("tool");
        assert_eq!(rt.version.to_string(), "1.0.0");
        assert!(rt.is_default);
        assert_eq!(rt.typescript, super::super::TypeScript::Strip);
        // The local package became an absolute path inside the runtime's directory.
        let expected = root.join("tool/dist/tool.tgz");
        assert_eq!(rt.package.url, format!("file:{}", expected.display()));
        assert_eq!(rt.package.source(), PackageSource::File(&expected));
        // The recipe is the script's text, run with ignite's lib.sh.
        assert_eq!(rt.recipe.script, "echo building\n");
        assert_eq!(rt.recipe.lib, RECIPE_LIB);
        assert_eq!(rt.command_for("main.js").expect("command"), ["/usr/local/bin/tool", "/app/main.js"]);

        let https = registry.resolve("tool@1.2").expect("tool@1.2");
        assert_eq!(https.package.source(), PackageSource::Https("https://example.invalid/tool-1.2.0.tgz"));
        let origin = registry.definitions().find(|(d, _)| d.name == "tool").map(|(_, o)| o.clone());
        assert_eq!(origin, Some(Origin::Custom(root.join("tool/runtime.yaml"))));
    }

    #[test]
    fn unknown_names_and_versions_list_custom_runtimes_too() {
        let dir = runtimes_dir("tool");
        let registry = load(&[dir.path()]).expect("load");
        let msg = registry.resolve("tool@2").expect_err("no 2.x").to_string();
        assert_has(&msg, &["tool has no version matching \"2\"", "1.2.0, 1.0.0"]);
        let msg = registry.resolve("nope").expect_err("unknown").to_string();
        assert_has(&msg, &["unknown runtime \"nope\"", "bun (", "tool (1.2.0, 1.0.0)"]);
    }

    #[test]
    fn the_recipe_digest_covers_the_script() {
        let dir = runtimes_dir("tool");
        let before = load(&[dir.path()]).expect("load").resolve("tool").expect("tool").recipe.digest();
        write(dir.path(), "tool/build.sh", "echo building differently\n");
        let after = load(&[dir.path()]).expect("load").resolve("tool").expect("tool").recipe.digest();
        assert_ne!(before, after);
    }

    #[test]
    fn a_builtin_recipe_can_be_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        add_runtime(dir.path(), "bun-custom", &yaml("bun-custom").replace("./build.sh", "bun"));
        let rt = load(&[dir.path()]).expect("load").resolve("bun-custom").expect("resolve");
        assert_eq!(rt.recipe, builtin_recipe("bun").expect("bun recipe"));
    }

    #[test]
    fn an_empty_runtimes_dir_adds_nothing_and_dot_entries_are_ignored() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(dir.path(), ".git/config", "x");
        write(dir.path(), ".hidden.yaml", "x");
        let registry = load(&[dir.path()]).expect("load");
        assert_eq!(registry.definitions().count(), Registry::builtin().expect("builtin").definitions().count());
    }

    #[test]
    fn unknown_fields_and_bad_values_name_file_field_and_line() {
        let dir = runtimes_dir("tool");
        let file = fs::canonicalize(dir.path()).expect("canonical").join("tool/runtime.yaml");
        let file = file.display().to_string();

        write(dir.path(), "tool/runtime.yaml", &yaml("tool").replace("recipe:", "colour: red\nrecipe:"));
        assert_has(&error(&[dir.path()]), &[&file, "field `colour`", "unknown field `colour`", "line "]);

        write(
            dir.path(),
            "tool/runtime.yaml",
            &yaml("tool")
                .replace("name: tool\n      version: \"1.0.0\"", "name: tool\n      version: \"1.0.0\"\n      sha: x"),
        );
        assert_has(
            &error(&[dir.path()]),
            &[&file, "field `versions[0].package.sha`", "unknown field `sha`", "line 14"],
        );

        write(dir.path(), "tool/runtime.yaml", &yaml("tool").replace("- version: \"1.2.0\"", "- version: \"1.2\""));
        assert_has(&error(&[dir.path()]), &[&file, "field `versions[1].version`", "MAJOR.MINOR.PATCH", "line "]);

        write(dir.path(), "tool/runtime.yaml", &yaml("tool").replace("default: \"1.0.0\"", "default: \"9.9.9\""));
        assert_has(
            &error(&[dir.path()]),
            &[&file, "field `default`", "9.9.9 is not among the versions (1.2.0, 1.0.0)"],
        );

        write(dir.path(), "tool/runtime.yaml", &yaml("tool").replace("typescript: strip", "typescript: maybe"));
        assert_has(&error(&[dir.path()]), &[&file, "field `typescript`", "unknown variant `maybe`"]);

        write(dir.path(), "tool/runtime.yaml", "name: [\n");
        assert_has(&error(&[dir.path()]), &[&file, "field `name`", "invalid type: sequence", "line 1"]);

        write(dir.path(), "tool/runtime.yaml", "name: tool\ndescription: \"unterminated\n");
        assert_has(&error(&[dir.path()]), &[&file, "line 2"]);
    }

    #[test]
    fn bad_integrity_is_rejected() {
        let dir = runtimes_dir("tool");
        let cases = [
            ("sha512-IWX9", "sha256-IWX9", "must be a single sha512-<base64> value"),
            ("1aJ1g==", "1aJ1", "integrity"),
            ("IWX9BEL", "IWX9B!L", "base64"),
        ];
        for (from, to, needle) in cases {
            write(dir.path(), "tool/runtime.yaml", &yaml("tool").replacen(from, to, 1));
            assert_has(&error(&[dir.path()]), &["tool/runtime.yaml", "field `versions[0].package.integrity`", needle]);
        }
    }

    #[test]
    fn package_urls_must_be_https_or_a_file_inside_the_directory() {
        let dir = runtimes_dir("tool");
        let field = "field `versions[1].package.url`";
        let https = "https://example.invalid/tool-1.2.0.tgz";
        for (url, needle) in [
            ("http://example.invalid/tool-1.2.0.tgz", "must start with https://"),
            ("ftp://example.invalid/tool.tgz", "must start with https://"),
            ("https://", "must name a host and a file"),
            ("file:../outside.tgz", "without '..'"),
            ("file:/etc/passwd", "relative to the definition's directory"),
            ("file:///etc/passwd", "relative to the definition's directory"),
            ("file:", "relative to the definition's directory"),
        ] {
            write(dir.path(), "tool/runtime.yaml", &yaml("tool").replace(https, &format!("{url:?}")));
            assert_has(&error(&[dir.path()]), &["tool/runtime.yaml", field, needle]);
        }

        write(dir.path(), "tool/runtime.yaml", &yaml("tool").replace(https, "file:missing.tgz"));
        assert_has(&error(&[dir.path()]), &[field, "\"missing.tgz\"", "does not exist"]);

        write(dir.path(), "tool/runtime.yaml", &yaml("tool").replace(https, "file:dist"));
        assert_has(&error(&[dir.path()]), &[field, "is not a regular file"]);

        let outside = tempfile::tempdir().expect("outside");
        write(outside.path(), "secret.tgz", "x");
        std::os::unix::fs::symlink(outside.path().join("secret.tgz"), dir.path().join("tool/link.tgz"))
            .expect("symlink");
        write(dir.path(), "tool/runtime.yaml", &yaml("tool").replace(https, "file:link.tgz"));
        assert_has(&error(&[dir.path()]), &[field, "through a symlink, outside the runtime's directory"]);
    }

    #[test]
    fn recipe_scripts_must_exist_inside_the_directory() {
        let dir = runtimes_dir("tool");
        write(dir.path(), "tool/runtime.yaml", &yaml("tool").replace("./build.sh", "./missing.sh"));
        assert_has(
            &error(&[dir.path()]),
            &["tool/runtime.yaml", "field `recipe`", "\"./missing.sh\"", "does not exist"],
        );

        write(dir.path(), "tool/runtime.yaml", &yaml("tool").replace("./build.sh", "../other/build.sh"));
        assert_has(&error(&[dir.path()]), &["field `recipe`", "without '..'"]);

        write(dir.path(), "tool/runtime.yaml", &yaml("tool").replace("./build.sh", "/usr/local/build.sh"));
        assert_has(&error(&[dir.path()]), &["field `recipe`", "relative to the definition's directory"]);

        write(dir.path(), "tool/runtime.yaml", &yaml("tool").replace("./build.sh", "no-such-recipe"));
        assert_has(
            &error(&[dir.path()]),
            &["field `recipe`", "\"no-such-recipe\" is neither a built-in recipe (bun", "script path"],
        );

        let outside = tempfile::tempdir().expect("outside");
        write(outside.path(), "evil.sh", "rm -rf /\n");
        std::os::unix::fs::symlink(outside.path().join("evil.sh"), dir.path().join("tool/evil.sh")).expect("symlink");
        write(dir.path(), "tool/runtime.yaml", &yaml("tool").replace("./build.sh", "evil.sh"));
        assert_has(&error(&[dir.path()]), &["field `recipe`", "through a symlink, outside the runtime's directory"]);
    }

    #[test]
    fn names_must_be_unique_across_directories_and_not_shadow_builtins() {
        let a = runtimes_dir("tool");
        let b = runtimes_dir("tool");
        let msg = error(&[a.path(), b.path()]);
        let first = fs::canonicalize(a.path()).expect("a").join("tool/runtime.yaml");
        let second = fs::canonicalize(b.path()).expect("b").join("tool/runtime.yaml");
        assert_has(
            &msg,
            &["runtime \"tool\" is defined twice", &first.display().to_string(), &second.display().to_string()],
        );

        let dir = runtimes_dir("bun");
        assert_has(&error(&[dir.path()]), &["bun/runtime.yaml", "name of a built-in runtime", "bun-custom"]);

        let dir = tempfile::tempdir().expect("tempdir");
        add_runtime(dir.path(), "tool", &yaml("other"));
        assert_has(
            &error(&[dir.path()]),
            &["tool/runtime.yaml", "field `name`", "\"other\" differs from its directory's name \"tool\""],
        );
    }

    #[test]
    fn the_layout_is_checked() {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::create_dir(dir.path().join("empty")).expect("mkdir");
        assert_has(&error(&[dir.path()]), &["empty: has no runtime.yaml"]);

        let dir = tempfile::tempdir().expect("tempdir");
        write(dir.path(), "runtime.yaml", &yaml("tool"));
        assert_has(&error(&[dir.path()]), &["runtime.yaml: is not a directory", "<runtime name>/runtime.yaml"]);

        let dir = runtimes_dir("tool");
        fs::rename(dir.path().join("tool"), dir.path().join("Tool")).expect("rename");
        assert_has(&error(&[dir.path()]), &["Tool: directory name must be its runtime's name"]);

        assert_has(&error(&[Path::new("/nonexistent/runtimes")]), &["/nonexistent/runtimes", "does not exist"]);

        let file = tempfile::NamedTempFile::new().expect("file");
        fs::set_permissions(file.path(), fs::Permissions::from_mode(0o644)).expect("chmod");
        assert_has(&error(&[file.path()]), &["is not a directory"]);
    }

    #[test]
    fn unreadable_definitions_are_explained() {
        let dir = runtimes_dir("tool");
        fs::remove_file(dir.path().join("tool/runtime.yaml")).expect("rm");
        fs::create_dir(dir.path().join("tool/runtime.yaml")).expect("mkdir");
        fs::set_permissions(dir.path().join("tool/runtime.yaml"), fs::Permissions::from_mode(0o755)).expect("chmod");
        assert_has(&error(&[dir.path()]), &["tool/runtime.yaml: is not a regular file"]);

        let dir = runtimes_dir("tool");
        fs::write(dir.path().join("tool/runtime.yaml"), b"name: \xff\xfe\n").expect("write");
        assert_has(&error(&[dir.path()]), &["tool/runtime.yaml: is not UTF-8 text"]);

        let dir = runtimes_dir("tool");
        write(dir.path(), "tool/real.yaml", &yaml("tool"));
        fs::remove_file(dir.path().join("tool/runtime.yaml")).expect("rm");
        std::os::unix::fs::symlink("real.yaml", dir.path().join("tool/runtime.yaml")).expect("symlink");
        assert_has(&error(&[dir.path()]), &["tool/runtime.yaml: is a symbolic link"]);

        let dir = runtimes_dir("tool");
        write(dir.path(), "tool/runtime.yaml", &"#".repeat(MAX_TEXT_BYTES as usize + 1));
        assert_has(&error(&[dir.path()]), &["tool/runtime.yaml: is larger than"]);
    }

    #[test]
    fn files_others_could_change_are_refused() {
        for path in ["", "tool", "tool/runtime.yaml", "tool/build.sh"] {
            let dir = runtimes_dir("tool");
            let target = dir.path().join(path);
            let mode = fs::metadata(&target).expect("stat").permissions().mode();
            fs::set_permissions(&target, fs::Permissions::from_mode(mode | 0o020)).expect("chmod g+w");
            assert_has(&error(&[dir.path()]), &["is writable by group or others", "chmod go-w"]);
            fs::set_permissions(&target, fs::Permissions::from_mode((mode & !0o022) | 0o002)).expect("chmod o+w");
            assert_has(&error(&[dir.path()]), &["is writable by group or others"]);
        }
        // A local package is pinned by its integrity, so its mode does not matter.
        let dir = runtimes_dir("tool");
        fs::set_permissions(dir.path().join("tool/dist/tool.tgz"), fs::Permissions::from_mode(0o666)).expect("chmod");
        load(&[dir.path()]).expect("package modes are not checked");
    }

    #[test]
    fn files_owned_by_another_user_are_refused() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("SKIPPED: needs root to chown");
            return;
        }
        let dir = runtimes_dir("tool");
        let script = dir.path().join("tool/build.sh");
        nix::unistd::chown(&script, Some(nix::unistd::Uid::from_raw(1000)), None).expect("chown");
        assert_has(&error(&[dir.path()]), &["build.sh: is owned by uid 1000, but ignite runs as uid 0"]);
    }
}
