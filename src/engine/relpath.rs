//! Relative paths that callers name files by — inline code's files, a session workspace's
//! files — checked by one rule: relative, no `..`, no backslash, no NUL or control character,
//! bounded in length, depth and component size. A path that passes can only mean a place
//! inside the directory it is relative to, and means the same to every reader.

/// Longest path, in bytes.
pub const MAX_PATH_BYTES: usize = 512;
/// Most components a path may have.
pub const MAX_DEPTH: usize = 16;
/// Longest component, in bytes (a file name's limit on Linux).
pub const MAX_COMPONENT_BYTES: usize = 255;

/// The components of `path`, `.` and empty ones dropped; an error says why `path` is refused,
/// naming `within` (what it is relative to, e.g. "the workspace") and giving `example` of a
/// good one. The message is meant to follow the path ("path \"/x\" is absolute; …").
pub fn components<'a>(path: &'a str, within: &str, example: &str) -> Result<Vec<&'a str>, String> {
    if path.is_empty() {
        return Err("is empty".into());
    }
    if path.len() > MAX_PATH_BYTES {
        return Err(format!("is {} bytes long; at most {MAX_PATH_BYTES} are accepted", path.len()));
    }
    if path.chars().any(char::is_control) {
        return Err("contains a NUL or control character".into());
    }
    if path.contains('\\') {
        return Err("contains a backslash; separate directories with '/'".into());
    }
    if path.starts_with('/') {
        return Err(format!("is absolute; give it relative to {within} (e.g. {example:?})"));
    }
    let mut parts = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err(format!("contains `..`; paths must stay inside {within}")),
            p if p.len() > MAX_COMPONENT_BYTES => {
                return Err(format!("has a component longer than {MAX_COMPONENT_BYTES} bytes"));
            }
            p => parts.push(p),
        }
    }
    if parts.is_empty() {
        return Err("names no file".into());
    }
    if parts.len() > MAX_DEPTH {
        return Err(format!("is {} levels deep; at most {MAX_DEPTH} are accepted", parts.len()));
    }
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_split_or_refused_with_the_reason() {
        fn ok(p: &str) -> Result<Vec<&str>, String> {
            components(p, "the workspace", "a/b.txt")
        }
        assert_eq!(ok("./src//a.ts").unwrap(), ["src", "a.ts"]);
        for (bad, why) in [
            ("", "is empty"),
            ("/etc/passwd", "is absolute; give it relative to the workspace (e.g. \"a/b.txt\")"),
            ("../x", "contains `..`; paths must stay inside the workspace"),
            ("a/../../x", "contains `..`"),
            ("a\\..\\x", "backslash"),
            ("a\0b", "NUL or control"),
            ("a\nb", "NUL or control"),
            ("a\u{85}b", "NUL or control"),
            (".", "names no file"),
            ("./", "names no file"),
        ] {
            let err = ok(bad).unwrap_err();
            assert!(err.contains(why), "{bad:?}: {err}");
        }
        assert!(ok(&"a/".repeat(MAX_DEPTH + 1)).unwrap_err().contains("levels deep"));
        assert!(ok(&"a".repeat(MAX_PATH_BYTES + 1)).unwrap_err().contains("bytes long"));
        assert!(ok(&"a".repeat(MAX_COMPONENT_BYTES + 1)).unwrap_err().contains("component"));
    }
}
