//! The build environment of the built-in rootfs recipes (`runtimes/builder/builder.yaml`):
//! Debian packages pinned by pool path, size and sha256, their validation, and the digest that
//! names the environment (and goes into the digest of every recipe that runs in it).

use serde::Deserialize;
use sha2::{Digest as _, Sha256};

use super::RuntimeError;
use super::schema::Integrity;

/// The embedded definition, from the source tree.
pub(super) const BUILTIN_BUILDER: &str = include_str!("../../../runtimes/builder/builder.yaml");
const BUILTIN_ORIGIN: &str = "runtimes/builder/builder.yaml";

/// Largest package accepted (gcc-12 is about 19 MB).
const MAX_PACKAGE_BYTES: u64 = 512 << 20;

/// A build environment: the Debian packages its root filesystem is unpacked from.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Builder {
    /// The Debian release the pins come from (informational).
    pub release: String,
    /// Base URL of the Debian archive the pool paths are relative to.
    pub mirror: String,
    /// Variables set for every recipe run in this environment (e.g. which compiler `cc` is:
    /// no maintainer script runs, so Debian's alternatives are not set up).
    #[serde(default)]
    pub environment: std::collections::BTreeMap<String, String>,
    pub packages: Vec<DebPackage>,
}

/// One pinned Debian package.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DebPackage {
    pub name: String,
    /// The Debian version (informational: the path and the digest pin the file).
    pub version: String,
    /// Path below the mirror, `pool/…/<name>_<version>_<arch>.deb`.
    pub path: String,
    pub size: u64,
    /// Lower-case hex sha256 of the .deb, as the archive's `Packages` index lists it.
    pub sha256: String,
}

impl DebPackage {
    /// The pin as an integrity value the downloader checks.
    pub fn integrity(&self) -> Integrity {
        let mut sha256 = [0u8; 32];
        // Validated as 64 hex digits when the definition was loaded.
        if hex::decode_to_slice(&self.sha256, &mut sha256).is_err() {
            sha256 = [0u8; 32];
        }
        Integrity::from_sha256(sha256)
    }

    /// The file name the package is cached under.
    pub fn file_name(&self) -> &str {
        self.path.rsplit('/').next().unwrap_or(&self.path)
    }
}

impl Builder {
    /// The built-in build environment.
    pub fn builtin() -> Result<Builder, RuntimeError> {
        Builder::parse(BUILTIN_BUILDER, BUILTIN_ORIGIN)
    }

    /// Parses and validates a definition; errors name `origin` and the field.
    pub fn parse(text: &str, origin: &str) -> Result<Builder, RuntimeError> {
        let de = serde_yaml_ng::Deserializer::from_str(text);
        let builder: Builder = serde_path_to_error::deserialize(de)
            .map_err(|e| RuntimeError::Parse { origin: origin.to_string(), message: super::parse_message(e) })?;
        builder.validate().map_err(|(field, problem)| RuntimeError::Invalid {
            origin: origin.to_string(),
            field,
            problem,
        })?;
        Ok(builder)
    }

    fn validate(&self) -> Result<(), (String, String)> {
        check_mirror(&self.mirror).map_err(|p| ("mirror".to_string(), p))?;
        for (name, value) in &self.environment {
            let name_ok = !name.is_empty()
                && name.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
                && !name.as_bytes()[0].is_ascii_digit();
            if !name_ok
                || name.starts_with("IGNITE_")
                || ["PATH", "LC_ALL", "TZ", "SOURCE_DATE_EPOCH"].contains(&name.as_str())
            {
                return Err((
                    format!("environment.{name}"),
                    "must be an upper-case variable name that is not PATH, LC_ALL, TZ, SOURCE_DATE_EPOCH or IGNITE_*"
                        .into(),
                ));
            }
            if value.contains('\0') || value.len() > 4096 {
                return Err((format!("environment.{name}"), "must be at most 4096 bytes without NUL".into()));
            }
        }
        if self.packages.is_empty() {
            return Err(("packages".into(), "the list is empty".into()));
        }
        let mut names: Vec<&str> = Vec::new();
        for (i, pkg) in self.packages.iter().enumerate() {
            let field = |f: &str| format!("packages[{i}].{f}");
            let name_ok = pkg.name.len() >= 2
                && pkg.name.len() <= 100
                && pkg.name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+-.".contains(&b))
                && pkg.name.as_bytes()[0].is_ascii_alphanumeric();
            if !name_ok {
                return Err((field("name"), format!("{:?} is not a Debian package name", pkg.name)));
            }
            if names.contains(&pkg.name.as_str()) {
                return Err((field("name"), format!("{} is listed twice", pkg.name)));
            }
            names.push(&pkg.name);
            if pkg.version.is_empty() || pkg.version.len() > 100 || pkg.version.contains(char::is_whitespace) {
                return Err((field("version"), format!("{:?} is not a Debian version", pkg.version)));
            }
            check_pool_path(&pkg.path).map_err(|p| (field("path"), p))?;
            if pkg.size == 0 || pkg.size > MAX_PACKAGE_BYTES {
                return Err((field("size"), format!("{} is not between 1 and {MAX_PACKAGE_BYTES} bytes", pkg.size)));
            }
            if pkg.sha256.len() != 64 || !pkg.sha256.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
                return Err((field("sha256"), "must be 64 lower-case hex digits".into()));
            }
        }
        Ok(())
    }

    /// `sha256:<hex>` naming this environment: over every package's path, size and sha256, in
    /// name order, and the environment variables (the order of the list and the informational
    /// fields do not matter).
    pub fn digest(&self) -> String {
        let mut pins: Vec<&DebPackage> = self.packages.iter().collect();
        pins.sort_by(|a, b| a.name.cmp(&b.name));
        let mut hasher = Sha256::new();
        for pkg in pins {
            hasher.update(format!("{}\0{}\0{}\0{}\n", pkg.name, pkg.path, pkg.size, pkg.sha256));
        }
        for (name, value) in &self.environment {
            hasher.update(format!("env\0{name}\0{value}\n"));
        }
        format!("sha256:{}", hex::encode(hasher.finalize()))
    }

    /// The URL of `pkg` below `mirror` (this definition's, or the operator's replacement).
    pub fn url(mirror: &str, pkg: &DebPackage) -> String {
        format!("{}/{}", mirror.trim_end_matches('/'), pkg.path)
    }
}

/// An `https://` or `http://` base URL (the packages are checked by digest, not by transport).
pub fn check_mirror(mirror: &str) -> Result<(), String> {
    let rest = mirror.strip_prefix("https://").or_else(|| mirror.strip_prefix("http://"));
    match rest {
        Some(rest)
            if !rest.is_empty()
                && !rest.starts_with('/')
                && rest.bytes().all(|b| b.is_ascii_graphic() && !b"?#\"'\\<>`".contains(&b)) =>
        {
            Ok(())
        }
        _ => Err(format!(
            "{mirror:?} is not an http:// or https:// base URL of a Debian archive (e.g. https://deb.debian.org/debian)"
        )),
    }
}

/// `pool/…/<file>.deb`, with components of letters, digits and `+-._~`, none `.` or `..`.
fn check_pool_path(path: &str) -> Result<(), String> {
    let bad = || format!("{path:?} must be a path in the archive's pool: pool/<component>/…/<file>.deb");
    if !path.starts_with("pool/") || !path.ends_with(".deb") || path.len() > 255 {
        return Err(bad());
    }
    for component in path.split('/') {
        let ok = !component.is_empty()
            && component != "."
            && component != ".."
            && component.bytes().all(|b| b.is_ascii_alphanumeric() || b"+-._~".contains(&b));
        if !ok {
            return Err(bad());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builtin_environment_loads_and_pins_what_the_recipes_need() {
        let builder = Builder::builtin().expect("runtimes/builder/builder.yaml is valid");
        assert_eq!(builder.release, "bookworm");
        // The tools the recipes run, the libraries the runtimes load, the compiler QuickJS needs.
        for needed in [
            "bash",
            "coreutils",
            "tar",
            "gzip",
            "libc-bin",
            "libc6",
            "libstdc++6",
            "libgcc-s1",
            "gcc-12",
            "libc6-dev",
            "binutils-x86-64-linux-gnu",
        ] {
            assert!(builder.packages.iter().any(|p| p.name == needed), "{needed} is not pinned");
        }
        for pkg in &builder.packages {
            assert!(pkg.file_name().starts_with(&format!("{}_", pkg.name)), "{}", pkg.path);
            assert!(pkg.integrity().to_string().starts_with("sha256-"));
        }
        assert!(builder.digest().starts_with("sha256:") && builder.digest().len() == 71);
    }

    #[test]
    fn the_digest_follows_the_pins_and_nothing_else() {
        let builder = Builder::builtin().expect("valid");
        let mut reordered = builder.clone();
        reordered.packages.reverse();
        reordered.release = "something else".into();
        reordered.packages[0].version = "0".into();
        assert_eq!(reordered.digest(), builder.digest());
        let mut moved = builder.clone();
        moved.packages[3].sha256 = "0".repeat(64);
        assert_ne!(moved.digest(), builder.digest());
        let mut resized = builder.clone();
        resized.packages[0].size += 1;
        assert_ne!(resized.digest(), builder.digest());
    }

    #[test]
    fn bad_definitions_are_refused_with_the_field() {
        let good = "release: bookworm\nmirror: https://deb.debian.org/debian\npackages:\n  - name: bash\n    version: \"5.2\"\n    path: pool/main/b/bash/bash_5.2_amd64.deb\n    size: 10\n    sha256: ";
        let hex = "a".repeat(64);
        Builder::parse(&format!("{good}{hex}\n"), "t").expect("good one parses");
        let cases: &[(&str, &str)] = &[
            ("mirror: https://deb.debian.org/debian", "mirror: ftp://x"),
            ("mirror: https://deb.debian.org/debian", "mirror: https://"),
            ("path: pool/main/b/bash/bash_5.2_amd64.deb", "path: pool/../../etc/passwd.deb"),
            ("path: pool/main/b/bash/bash_5.2_amd64.deb", "path: /pool/main/bash.deb"),
            ("path: pool/main/b/bash/bash_5.2_amd64.deb", "path: pool/main/b/bash/bash.tar"),
            ("size: 10", "size: 0"),
            ("name: bash", "name: Bash"),
            ("release: bookworm", "release: bookworm\nextra: 1"),
            ("release: bookworm", "release: bookworm\nenvironment:\n  PATH: /x"),
            ("release: bookworm", "release: bookworm\nenvironment:\n  IGNITE_OUT: /x"),
            ("release: bookworm", "release: bookworm\nenvironment:\n  cc: gcc"),
        ];
        for (from, to) in cases {
            let text = format!("{good}{hex}\n").replace(from, to);
            let err = Builder::parse(&text, "t").expect_err(to).to_string();
            assert!(err.starts_with("invalid runtime definition t"), "{to}: {err}");
        }
        let err = Builder::parse(&format!("{good}{}\n", "A".repeat(64)), "t").expect_err("upper hex").to_string();
        assert!(err.contains("packages[0].sha256"), "{err}");
        let twice = format!(
            "{good}{hex}\n  - name: bash\n    version: \"1\"\n    path: pool/a/bash_1.deb\n    size: 1\n    sha256: {hex}\n"
        );
        let err = Builder::parse(&twice, "t").expect_err("twice").to_string();
        assert!(err.contains("packages[1].name") && err.contains("listed twice"), "{err}");
    }
}
