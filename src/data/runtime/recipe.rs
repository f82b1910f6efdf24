//! Rootfs recipes: the bash scripts (with their shared `lib.sh` and auxiliary files) that turn
//! a runtime's package into a rootfs, the built-in ones embedded from `rootfs-scripts/`, the
//! checks on their file paths, and the digest that makes ignite rebuild a bundle whose recipe
//! changed.

use std::borrow::Cow;

use sha2::{Digest as _, Sha256};

/// Built-in recipe scripts, by recipe name.
pub(super) const BUILTIN_RECIPES: &[(&str, &str)] = &[
    ("bun", include_str!("../../../rootfs-scripts/bun.sh")),
    ("deno", include_str!("../../../rootfs-scripts/deno.sh")),
    ("node", include_str!("../../../rootfs-scripts/node.sh")),
    ("quickjs", include_str!("../../../rootfs-scripts/quickjs.sh")),
    ("rootfs", include_str!("../../../rootfs-scripts/rootfs.sh")),
];

/// Auxiliary files of built-in recipes, from `rootfs-scripts/<recipe>/`: (recipe, path relative
/// to that directory, contents). See [`Recipe::files`].
const BUILTIN_RECIPE_FILES: &[(&str, &str, &[u8])] = &[
    ("quickjs", "launcher.c", include_bytes!("../../../rootfs-scripts/quickjs/launcher.c")),
    ("quickjs", "bootstrap.js", include_bytes!("../../../rootfs-scripts/quickjs/bootstrap.js")),
];

/// Functions shared by every recipe; written beside the recipe as `lib.sh`, which it sources.
pub const RECIPE_LIB: &str = include_str!("../../../rootfs-scripts/lib.sh");

/// A rootfs recipe: a bash script that turns the package into a rootfs tarball (see
/// `rootfs-scripts/lib.sh` for its inputs), the shared library of functions it sources, and the
/// auxiliary files it uses (sources to compile, files to install).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipe {
    pub name: String,
    pub script: Cow<'static, str>,
    pub lib: Cow<'static, str>,
    /// Files kept in `rootfs-scripts/<name>/` beside the script, written to the directory named
    /// by `$IGNITE_RECIPE_FILES` when the recipe runs.
    pub files: Vec<RecipeFile>,
    /// Where the script runs.
    pub environment: BuildEnvironment,
}

/// Where a recipe runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuildEnvironment {
    /// On the host, with the host's tools (custom recipe scripts: their authors choose).
    Host,
    /// Inside the pinned Debian build environment (`runtimes/builder/builder.yaml`), so the
    /// tarball does not depend on the host: the built-in recipes.
    Debian,
}

/// Recipes that run on the host: `rootfs` only repacks a tarball the user supplied.
const HOST_RECIPES: &[&str] = &["rootfs"];

/// One auxiliary file of a recipe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecipeFile {
    /// Relative path inside the recipe's directory: `/`-separated components of ASCII letters,
    /// digits, `.`, `_` and `-`, none of them `.` or `..`.
    pub path: String,
    pub contents: Cow<'static, [u8]>,
}

impl RecipeFile {
    /// Checks that the path stays inside the recipe's directory and means the same file on
    /// every host.
    pub fn validate_path(path: &str) -> Result<(), String> {
        if path.is_empty() || path.len() > 255 {
            return Err(format!("recipe file path {path:?} must be 1 to 255 characters"));
        }
        for component in path.split('/') {
            let charset_ok = component.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
            if component.is_empty() || component == "." || component == ".." || !charset_ok {
                return Err(format!(
                    "recipe file path {path:?} must be relative, with components of letters, digits, '.', '_' and '-' (no empty, '.' or '..' components)"
                ));
            }
        }
        Ok(())
    }
}

impl Recipe {
    /// A recipe with auxiliary files, which must pass [`Recipe::check_files`].
    pub fn new(
        name: String,
        script: Cow<'static, str>,
        lib: Cow<'static, str>,
        mut files: Vec<RecipeFile>,
    ) -> Result<Recipe, String> {
        files.sort_by(|a, b| a.path.cmp(&b.path));
        let recipe = Recipe { name, script, lib, files, environment: BuildEnvironment::Host };
        recipe.check_files()?;
        Ok(recipe)
    }

    /// Every file path is safe ([`RecipeFile::validate_path`]), none is listed twice, and none
    /// is also used as a directory by another (`a` and `a/b`), so all of them can be written.
    pub fn check_files(&self) -> Result<(), String> {
        let mut paths: Vec<&str> = self.files.iter().map(|f| f.path.as_str()).collect();
        paths.sort_unstable();
        for (i, path) in paths.iter().enumerate() {
            RecipeFile::validate_path(path).map_err(|e| format!("recipe {}: {e}", self.name))?;
            if i > 0 && paths[i - 1] == *path {
                return Err(format!("recipe {}: file {path:?} is listed twice", self.name));
            }
        }
        for path in &paths {
            if paths.iter().any(|other| {
                other.len() > path.len() && other.starts_with(path) && other.as_bytes()[path.len()] == b'/'
            }) {
                return Err(format!("recipe {}: {path:?} is both a file and a directory", self.name));
            }
        }
        Ok(())
    }

    /// `sha256:<hex>` over the recipe, its library, its files and, for one that runs in the
    /// Debian build environment, that environment's definition. Stored beside every built
    /// bundle, so that changing any of them makes ignite rebuild the bundles it produced.
    pub fn digest(&self) -> String {
        let mut hasher = Sha256::new();
        hasher.update(self.lib.as_bytes());
        hasher.update([0u8]);
        hasher.update(self.script.as_bytes());
        // Length-prefixed and in path order, so no two different sets of files hash alike; a
        // recipe without files keeps the digest it had before recipes could have files.
        let mut files: Vec<&RecipeFile> = self.files.iter().collect();
        files.sort_by(|a, b| a.path.cmp(&b.path));
        for file in files {
            hasher.update([0u8]);
            hasher.update((file.path.len() as u64).to_le_bytes());
            hasher.update(file.path.as_bytes());
            hasher.update((file.contents.len() as u64).to_le_bytes());
            hasher.update(&file.contents);
        }
        // The build environment's definition, as embedded: new pins mean new bundles.
        if self.environment == BuildEnvironment::Debian {
            hasher.update(b"\0debian\0");
            hasher.update(super::builder::BUILTIN_BUILDER.as_bytes());
        }
        format!("sha256:{}", hex::encode(hasher.finalize()))
    }
}

/// `bun, rootfs, …` for error messages.
pub(super) fn builtin_recipe_names() -> String {
    BUILTIN_RECIPES.iter().map(|(name, _)| *name).collect::<Vec<_>>().join(", ")
}

/// The built-in recipe of that name, if any.
pub fn builtin_recipe(name: &str) -> Option<Recipe> {
    let (name, script) = BUILTIN_RECIPES.iter().find(|(n, _)| *n == name)?;
    let mut files: Vec<RecipeFile> = BUILTIN_RECIPE_FILES
        .iter()
        .filter(|(recipe, _, _)| recipe == name)
        .map(|(_, path, contents)| RecipeFile { path: (*path).to_string(), contents: Cow::Borrowed(*contents) })
        .collect();
    // The paths are constants (a unit test puts them through `Recipe::new`), and the recipe
    // runner checks every path again before it writes anything.
    files.sort_by(|a, b| a.path.cmp(&b.path));
    let environment = if HOST_RECIPES.contains(name) { BuildEnvironment::Host } else { BuildEnvironment::Debian };
    Some(Recipe {
        name: (*name).to_string(),
        script: Cow::Borrowed(*script),
        lib: Cow::Borrowed(RECIPE_LIB),
        files,
        environment,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recipe_digest_covers_every_file() {
        let file = |path: &str, contents: &str| RecipeFile {
            path: path.to_string(),
            contents: Cow::Owned(contents.as_bytes().to_vec()),
        };
        let base = Recipe { environment: BuildEnvironment::Host, ..builtin_recipe("bun").expect("recipe") };
        // Without files the digest is the one recipes had before they could have files.
        let mut legacy = Sha256::new();
        legacy.update(base.lib.as_bytes());
        legacy.update([0u8]);
        legacy.update(base.script.as_bytes());
        assert_eq!(base.digest(), format!("sha256:{}", hex::encode(legacy.finalize())));
        // Running in the Debian build environment, the environment's pins are part of it.
        let in_debian = Recipe { environment: BuildEnvironment::Debian, ..base.clone() };
        assert_ne!(in_debian.digest(), base.digest());
        assert_eq!(builtin_recipe("bun").expect("recipe").digest(), in_debian.digest());
        assert_eq!(builtin_recipe("rootfs").expect("recipe").environment, BuildEnvironment::Host);

        let with = |files: Vec<RecipeFile>| Recipe { files, ..base.clone() }.digest();
        let one = with(vec![file("a.c", "x")]);
        assert_ne!(one, base.digest());
        assert_ne!(one, with(vec![file("a.c", "y")]), "contents");
        assert_ne!(one, with(vec![file("b.c", "x")]), "path");
        assert_ne!(with(vec![file("a", "bc")]), with(vec![file("ab", "c")]), "boundaries");
        assert_eq!(
            with(vec![file("a.c", "x"), file("b.c", "y")]),
            with(vec![file("b.c", "y"), file("a.c", "x")]),
            "order"
        );
        // The quickjs recipe's launcher and bootstrap are part of its digest.
        let qjs = builtin_recipe("quickjs").expect("quickjs");
        let mut changed = qjs.clone();
        changed.files[0].contents = Cow::Owned(b"changed".to_vec());
        assert_ne!(qjs.digest(), changed.digest());
    }

    #[test]
    fn builtin_recipe_files_are_the_source_tree() {
        // Every file under rootfs-scripts/<recipe>/ is embedded, byte for byte, and nothing else.
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("rootfs-scripts");
        fn walk(dir: &std::path::Path, prefix: &str, out: &mut Vec<(String, Vec<u8>)>) {
            for entry in std::fs::read_dir(dir).expect("read_dir") {
                let entry = entry.expect("entry");
                let name = format!("{prefix}{}", entry.file_name().to_string_lossy());
                if entry.file_type().expect("type").is_dir() {
                    walk(&entry.path(), &format!("{name}/"), out);
                } else {
                    out.push((name, std::fs::read(entry.path()).expect("read")));
                }
            }
        }
        for (name, _) in BUILTIN_RECIPES {
            let mut on_disk = Vec::new();
            let dir = root.join(name);
            if dir.is_dir() {
                walk(&dir, "", &mut on_disk);
            }
            on_disk.sort();
            let embedded: Vec<(String, Vec<u8>)> = builtin_recipe(name)
                .expect("recipe")
                .files
                .iter()
                .map(|f| (f.path.clone(), f.contents.to_vec()))
                .collect();
            assert_eq!(embedded, on_disk, "rootfs-scripts/{name}/ and BUILTIN_RECIPE_FILES differ");
        }
    }

    #[test]
    fn recipe_file_paths_are_checked() {
        let file = |path: &str| RecipeFile { path: path.to_string(), contents: Cow::Borrowed(b"") };
        let new = |paths: &[&str]| {
            Recipe::new("r".into(), Cow::Borrowed(""), Cow::Borrowed(""), paths.iter().map(|p| file(p)).collect())
        };
        assert!(new(&["launcher.c", "js/boot.js", "a-b_c.1"]).is_ok());
        for bad in ["", "/abs", "../up", "a/../b", "a//b", "./a", "a/", "a b", "ä", "a\\b"] {
            let err = new(&[bad]).expect_err(bad);
            assert!(err.contains("recipe file path"), "{bad:?}: {err}");
        }
        assert!(new(&["a.c", "a.c"]).expect_err("dup").contains("listed twice"));
        assert!(new(&["a", "a/b"]).expect_err("conflict").contains("both a file and a directory"));
        let sorted = new(&["z", "a"]).expect("ok");
        assert_eq!(sorted.files[0].path, "a");
    }

    #[test]
    fn recipe_digest_changes_with_the_script() {
        let a = builtin_recipe("bun").expect("recipe");
        let mut b = a.clone();
        b.script = Cow::Owned(format!("{}\n# changed\n", a.script));
        assert_ne!(a.digest(), b.digest());
        assert!(a.digest().starts_with("sha256:"));
    }
}
