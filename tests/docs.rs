//! The documentation's own consistency: every relative link in README.md, SECURITY.md and
//! docs/*.md names a file that exists and, with `#anchor`, a heading that exists in it (as
//! GitHub derives anchors), and the README stays a short map whose first block holds the test
//! command CI runs. Reads files only: no network, no build, no sandbox.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
/// The README is the map; reference material belongs in docs/ (issue 14).
const README_MAX_LINES: usize = 300;

/// The Markdown files whose links are checked.
fn documents() -> Vec<PathBuf> {
    let root = Path::new(ROOT);
    let mut files = vec![root.join("README.md"), root.join("SECURITY.md")];
    let mut pages: Vec<PathBuf> = fs::read_dir(root.join("docs"))
        .expect("read docs/")
        .map(|e| e.expect("docs/ entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    pages.sort();
    files.extend(pages);
    files
}

/// The lines of `text` outside fenced code blocks (``` or ~~~), with their 1-based numbers.
fn prose_lines(text: &str) -> Vec<(usize, &str)> {
    let mut fence: Option<&str> = None;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let t = line.trim_start();
        match fence {
            Some(f) if t.starts_with(f) => fence = None,
            Some(_) => {}
            None if t.starts_with("```") => fence = Some("```"),
            None if t.starts_with("~~~") => fence = Some("~~~"),
            None => out.push((i + 1, line)),
        }
    }
    out
}

/// `line` with every inline code span blanked out (a link inside one is not a link).
fn without_code_spans(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(start) = rest.find('`') {
        let ticks = rest[start..].chars().take_while(|&c| c == '`').count();
        let fence = &rest[start..start + ticks];
        out.push_str(&rest[..start]);
        let after = &rest[start + ticks..];
        match after.find(fence) {
            Some(end) => {
                out.push_str(&" ".repeat(ticks * 2 + end));
                rest = &after[end + ticks..];
            }
            None => {
                out.push_str(fence);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Targets of inline links and images, `[text](target)` / `![alt](target "title")`.
fn link_targets(line: &str) -> Vec<String> {
    let line = without_code_spans(line);
    let mut out = Vec::new();
    let mut rest = line.as_str();
    while let Some(i) = rest.find("](") {
        let after = &rest[i + 2..];
        let end = after.find(')').unwrap_or(after.len());
        let target = after[..end].split_whitespace().next().unwrap_or("");
        let target = target.trim_start_matches('<').trim_end_matches('>');
        if !target.is_empty() {
            out.push(target.to_string());
        }
        rest = &after[end.min(after.len())..];
    }
    out
}

/// GitHub's anchor for a heading: lower case, punctuation dropped (letters, digits, `-`, `_`
/// and spaces kept), spaces turned into `-`.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == '-' || *c == '_' || *c == ' ')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// Every anchor a Markdown file's headings give, with GitHub's `-1`, `-2`… for repeats.
fn anchors(text: &str) -> HashSet<String> {
    let mut seen = HashSet::new();
    for (_, line) in prose_lines(text) {
        let hashes = line.chars().take_while(|&c| c == '#').count();
        if !(1..=6).contains(&hashes) || !line[hashes..].starts_with(' ') {
            continue;
        }
        let base = slug(&line[hashes..]);
        let mut anchor = base.clone();
        let mut n = 0;
        while seen.contains(&anchor) {
            n += 1;
            anchor = format!("{base}-{n}");
        }
        seen.insert(anchor);
    }
    seen
}

#[test]
fn relative_links_name_existing_files_and_headings() {
    let mut broken = Vec::new();
    let mut checked = 0;
    for doc in documents() {
        let text = fs::read_to_string(&doc).expect("read a document");
        let name = doc.strip_prefix(ROOT).unwrap_or(&doc).display().to_string();
        for (n, line) in prose_lines(&text) {
            for target in link_targets(line) {
                if target.contains("://") || target.starts_with("mailto:") {
                    continue;
                }
                checked += 1;
                let (path, anchor) = match target.split_once('#') {
                    Some((p, a)) => (p, Some(a)),
                    None => (target.as_str(), None),
                };
                let file = if path.is_empty() {
                    doc.clone()
                } else {
                    doc.parent().expect("a document's directory").join(path)
                };
                if !file.exists() {
                    broken.push(format!("{name}:{n}: {target}: no file {}", file.display()));
                    continue;
                }
                let Some(anchor) = anchor else { continue };
                if file.extension().is_none_or(|x| x != "md") {
                    broken.push(format!("{name}:{n}: {target}: an anchor into a file that is not Markdown"));
                    continue;
                }
                let target_text = fs::read_to_string(&file).expect("read a link's target");
                if !anchors(&target_text).contains(anchor) {
                    broken.push(format!("{name}:{n}: {target}: no heading with anchor #{anchor}"));
                }
            }
        }
    }
    assert!(checked > 100, "only {checked} relative links found: is the parser still finding them?");
    assert!(broken.is_empty(), "{} broken link(s):\n{}", broken.len(), broken.join("\n"));
}

#[test]
fn readme_is_a_short_map_that_starts_with_the_test_command() {
    let text = fs::read_to_string(Path::new(ROOT).join("README.md")).expect("read README.md");
    let lines = text.lines().count();
    assert!(
        lines <= README_MAX_LINES,
        "README.md has {lines} lines (at most {README_MAX_LINES}): move reference material to a page in docs/"
    );
    // CI (.ci/run) runs the README's test command: it stays in the first code block.
    let first_block: String = text
        .split("```")
        .nth(1)
        .expect("README.md opens with a code block")
        .lines()
        .skip(1)
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        first_block.lines().any(|l| l.trim() == "cargo test --locked"),
        "the README's first code block no longer holds `cargo test --locked`:\n{first_block}"
    );
}

#[test]
fn anchors_follow_github() {
    assert_eq!(slug(" Network: `security.network.enabled`"), "network-securitynetworkenabled");
    assert_eq!(slug(" Cold path: where the time goes"), "cold-path-where-the-time-goes");
    assert_eq!(slug(" service.yaml, preflight and lock files"), "serviceyaml-preflight-and-lock-files");
    let a = anchors("# A\n## Audit mode\n```\n# not a heading\n```\n### Audit mode\n");
    assert!(a.contains("audit-mode") && a.contains("audit-mode-1") && !a.contains("not-a-heading"));
    assert_eq!(link_targets("see [x](a.md#b) and `[y](c.md)` and ![i](d.svg \"t\")"), ["a.md#b", "d.svg"]);
}
