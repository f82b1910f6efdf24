//! Runtime registry: the pinned runtime definitions (`runtimes/<name>/runtime.yaml`), their
//! rootfs recipes (`rootfs-scripts/`), validation, and resolution of specs like `bun@1.4`.
//!
//! The built-in definitions and recipes are embedded into the binary with `include_str!`, so
//! ignite works from any directory. Custom runtimes come from runtimes directories
//! ([`custom`]): the same schema, parsed by the same [`RuntimeDef::parse`], added with
//! [`Registry::add`] beside the built-ins.
//!
//! - `version` — exact versions and the partial ones a spec names;
//! - `schema` — runtime.yaml's types and their validation;
//! - `recipe` — rootfs recipes, the built-in ones, their digest;
//! - `builder` — the pinned Debian packages the built-in recipes run in;
//! - `resolved` — a definition narrowed to one version: bundle key, entry checks, argv;
//! - `registry` — the runtimes by name, and resolution.

mod builder;
pub mod custom;
#[cfg(test)]
mod fixtures;
mod recipe;
mod registry;
mod resolved;
mod schema;
mod version;

use std::path::PathBuf;

use crate::fsutil::IoError;

pub use builder::{Builder, DebPackage, check_mirror};
pub use recipe::{BuildEnvironment, RECIPE_LIB, Recipe, RecipeFile, builtin_recipe};
pub use registry::{Origin, Registry};
pub use resolved::{APP_DIR, ResolvedRuntime};
pub(crate) use schema::parse_message;
pub use schema::{
    COMMANDS_PLACEHOLDER, ENTRY_PLACEHOLDER, FILE_SCHEME, Integrity, Package, PackageSource, PolicyArgs, RuntimeDef,
    TypeScript, VersionDef,
};
pub use version::Version;

/// Errors from loading, validating and resolving runtime definitions.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The YAML does not fit the schema; `message` names the field and, where the parser
    /// knows it, the line.
    #[error("invalid runtime definition {origin}: {message}")]
    Parse { origin: String, message: String },
    #[error("invalid runtime definition {origin}: field `{field}`: {problem}")]
    Invalid { origin: String, field: String, problem: String },
    #[error("runtime {name:?} is defined twice ({first} and {second}); remove or rename one of them")]
    Duplicate { name: String, first: Origin, second: Origin },
    #[error(
        "invalid runtime definition {path}: runtime {name:?} has the name of a built-in runtime, and a custom runtime cannot replace a built-in one; rename it (its directory and `name:`), e.g. to {name}-custom"
    )]
    ShadowsBuiltin { name: String, path: PathBuf },
    #[error(
        "invalid runtime definition {origin}: field `recipe`: {recipe:?} is neither a built-in recipe ({known}) nor a script path ending in .sh"
    )]
    UnknownRecipe { origin: String, recipe: String, known: String },
    #[error(transparent)]
    Io(#[from] IoError),
    /// A runtimes directory or a file in it is not laid out or protected as required.
    #[error("{path}: {problem}")]
    Layout { path: PathBuf, problem: String },
    #[error("invalid runtime spec {spec:?}: {problem} (expected NAME or NAME@VERSION, e.g. bun or bun@1.4)")]
    BadSpec { spec: String, problem: String },
    #[error("unknown runtime {name:?} (available: {available})")]
    UnknownRuntime { name: String, available: String },
    #[error("runtime {name} has no version matching {wanted:?} (available: {available})")]
    UnknownVersion { name: String, wanted: String, available: String },
    #[error("invalid entry {entry:?}: {problem}")]
    BadEntry { entry: String, problem: String },
}
