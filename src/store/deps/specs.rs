//! Which dependency specs of package.json ignite installs: only packages from the npm
//! registry — a version, a range, a dist-tag, or an `npm:` alias of a registry package. Local
//! paths, tarballs, git repositories (including `user/repo` shorthands) and URLs are refused
//! here, before any sandbox starts, instead of failing inside the install sandbox.

/// What a refused spec points at, said in the error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotRegistry {
    /// `file:`, `link:`, `workspace:`, `portal:`, or a path (`./x`, `../x`, `/x`, `~/x`).
    LocalPath,
    /// A name ending in `.tgz`, `.tar.gz` or `.tar`: the installer reads it from the disk.
    Tarball,
    /// `git+…`, `git://`, `git@host:…`, `ssh://`, `github:`, `gitlab:`, `bitbucket:`, `gist:`.
    Git,
    /// `user/repo` (with an optional `#ref`): the installer's shorthand for a GitHub repository.
    GitHubShorthand,
    /// `http://` or `https://`: a tarball downloaded from anywhere.
    Url,
    /// Another `scheme:` the installer might understand (`patch:`, `catalog:`, …).
    Protocol,
    /// `npm:` without a valid package name after it.
    BadAlias,
    /// Characters no version range or dist-tag has.
    NotARange,
}

impl NotRegistry {
    /// What the spec is, as a phrase for "… is …".
    pub fn describe(self) -> &'static str {
        match self {
            NotRegistry::LocalPath => "a local path",
            NotRegistry::Tarball => "a tarball file",
            NotRegistry::Git => "a git repository",
            NotRegistry::GitHubShorthand => "a GitHub repository (the user/repo shorthand)",
            NotRegistry::Url => "a URL",
            NotRegistry::Protocol => "a protocol other than the npm registry",
            NotRegistry::BadAlias => "an npm: alias without a valid package name",
            NotRegistry::NotARange => "neither a version range nor a dist-tag",
        }
    }
}

const GIT_PREFIXES: &[&str] = &["git+", "git://", "git@", "ssh://", "github:", "gitlab:", "bitbucket:", "gist:"];
const LOCAL_PREFIXES: &[&str] = &["file:", "link:", "workspace:", "portal:", "./", "../", "/", "~/", ".\\", "..\\"];
const TARBALL_SUFFIXES: &[&str] = &[".tgz", ".tar.gz", ".tar"];

/// `Ok` when `spec` names a package of the npm registry; else what it names instead.
pub fn classify(spec: &str) -> Result<(), NotRegistry> {
    let s = spec.trim();
    if let Some(alias) = s.strip_prefix("npm:") {
        let (name, range) = split_alias(alias);
        if !valid_name(name) {
            return Err(NotRegistry::BadAlias);
        }
        // The aliased package's own spec follows the same rule (`npm:x@github:u/r` is git).
        return if range.starts_with("npm:") { Err(NotRegistry::BadAlias) } else { classify(range) };
    }
    let lower = s.to_ascii_lowercase();
    if GIT_PREFIXES.iter().any(|p| lower.starts_with(p)) {
        return Err(NotRegistry::Git);
    }
    if lower.starts_with("http://") || lower.starts_with("https://") {
        return Err(NotRegistry::Url);
    }
    if LOCAL_PREFIXES.iter().any(|p| lower.starts_with(p)) || s == "." || s == ".." || s == "~" {
        return Err(NotRegistry::LocalPath);
    }
    if TARBALL_SUFFIXES.iter().any(|x| lower.ends_with(x)) {
        return Err(NotRegistry::Tarball);
    }
    if has_scheme(s) {
        return Err(NotRegistry::Protocol);
    }
    if s.contains('/') {
        return Err(NotRegistry::GitHubShorthand);
    }
    // What remains is a version, a range (`^1.2`, `>=1 <2 || 3.x`, `*`, ``) or a dist-tag
    // (`latest`, `next`, `beta-2`): nothing else the registry answers has other characters.
    if s.chars().all(|c| c.is_ascii_alphanumeric() || " .-+_^~<>=|*".contains(c)) {
        Ok(())
    } else {
        Err(NotRegistry::NotARange)
    }
}

/// `name@range` (the name may be scoped: `@scope/name@range`); a missing range is `""` (any).
fn split_alias(alias: &str) -> (&str, &str) {
    let from = usize::from(alias.starts_with('@'));
    match alias[from..].find('@') {
        Some(i) => (&alias[..from + i], &alias[from + i + 1..]),
        None => (alias, ""),
    }
}

/// An npm package name: `name` or `@scope/name`, lower-case URL-safe characters.
fn valid_name(name: &str) -> bool {
    let ok = |part: &str| {
        !part.is_empty()
            && !part.starts_with('.')
            && !part.starts_with('_')
            && part.len() <= 214
            && part.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-._~".contains(c))
    };
    match name.strip_prefix('@') {
        Some(scoped) => scoped.split_once('/').is_some_and(|(scope, pkg)| ok(scope) && ok(pkg)),
        None => ok(name),
    }
}

/// `word:` at the start, as in a URL scheme or an installer protocol.
fn has_scheme(s: &str) -> bool {
    s.split_once(':').is_some_and(|(scheme, _)| {
        !scheme.is_empty() && scheme.chars().all(|c| c.is_ascii_alphanumeric() || "+.-".contains(c))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_specs_are_accepted() {
        for spec in [
            "",
            "*",
            "latest",
            "next",
            "beta-2",
            "1.2.3",
            "4.17.21",
            "^1.2.3",
            "~1.2",
            "1.x",
            ">=1.0.0 <2.0.0",
            "1 || 2",
            "1.2.3 - 2.3.4",
            "1.0.0-rc.1+build.5",
            " ^1 ",
            "npm:lodash@^4",
            "npm:@types/node@22",
            "npm:left-pad",
            "npm:@scope/pkg",
        ] {
            assert_eq!(classify(spec), Ok(()), "{spec:?}");
        }
    }

    #[test]
    fn local_git_url_and_other_specs_are_refused_with_what_they_are() {
        use NotRegistry::*;
        for (spec, what) in [
            ("evil.tgz", Tarball),
            ("x.tar.gz", Tarball),
            ("pkg.TAR", Tarball),
            ("file:../x", LocalPath),
            ("file:evil.tgz", LocalPath),
            ("link:../x", LocalPath),
            ("workspace:*", LocalPath),
            ("portal:../x", LocalPath),
            ("./x", LocalPath),
            ("../x", LocalPath),
            ("/abs/x", LocalPath),
            ("~/x", LocalPath),
            (".", LocalPath),
            ("git+https://github.com/u/r.git", Git),
            ("git+ssh://git@github.com/u/r.git", Git),
            ("git://github.com/u/r.git", Git),
            ("git@github.com:u/r.git", Git),
            ("ssh://git@host/r", Git),
            ("github:user/repo", Git),
            ("GitHub:user/repo", Git),
            ("gitlab:user/repo", Git),
            ("bitbucket:user/repo", Git),
            ("gist:11081aaa", Git),
            ("user/repo", GitHubShorthand),
            ("user/repo#v1.0.0", GitHubShorthand),
            ("https://example.com/x.tgz", Url),
            ("http://example.com/x", Url),
            ("patch:x@1#./p.patch", Protocol),
            ("catalog:", Protocol),
            ("C:\\x", Protocol),
            ("npm:", BadAlias),
            ("npm:@x", BadAlias),
            ("npm:Bad Name@1", BadAlias),
            ("npm:x@npm:y@1", BadAlias),
            ("npm:x@github:u/r", Git),
            ("npm:x@file:../y", LocalPath),
            ("npm:x@u/r", GitHubShorthand),
            ("1.0.0#frag", NotARange),
            ("%2e%2e", NotARange),
        ] {
            assert_eq!(classify(spec), Err(what), "{spec:?}");
        }
    }
}
