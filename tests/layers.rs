//! The crate's structure as docs/architecture.md draws it, checked on the source: districts
//! use only the districts below them (edges → engine → host → store → sandbox → data → fsutil,
//! sys), and the modules of a district do not import each other in a cycle. Test modules are
//! left out (a test may reach anywhere), and so are comments.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Each district of `src/` and its rank: a module may name modules of its own rank or lower.
const DISTRICTS: &[(&str, u8)] = &[
    ("fsutil", 0),
    ("sys", 0),
    ("data", 1),
    ("sandbox", 2),
    ("store", 3),
    ("host", 4),
    ("engine", 5),
    ("server", 6),
    ("bench", 6),
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let p = entry.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

/// The code of a file without its `#[cfg(test)]` modules and without comment lines.
fn code_of(text: &str) -> Vec<(usize, String)> {
    let mut lines = Vec::new();
    let mut skip_depth: Option<i32> = None;
    let mut depth = 0i32;
    let mut pending_test = false;
    for (n, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("//") {
            continue;
        }
        if trimmed.starts_with("#[cfg(test)]") {
            pending_test = true;
            continue;
        }
        let opens = line.matches('{').count() as i32;
        let closes = line.matches('}').count() as i32;
        if pending_test {
            pending_test = false;
            // `#[cfg(test)] mod x;` (a file of its own, which is skipped by name below) or an
            // inline module / item whose body is skipped.
            if opens > 0 {
                skip_depth = Some(depth);
            }
            depth += opens - closes;
            continue;
        }
        depth += opens - closes;
        if let Some(d) = skip_depth {
            if depth <= d {
                skip_depth = None;
            }
            continue;
        }
        lines.push((n + 1, line.to_string()));
    }
    lines
}

/// `src/sandbox/spec/build.rs` → `["sandbox", "spec"]`: a district and its module (the unit a
/// cycle is looked for between).
fn unit_of(rel: &Path) -> Option<(String, String)> {
    let parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().trim_end_matches(".rs").to_string()).collect();
    let district = parts.first()?.clone();
    let module = match parts.get(1) {
        Some(m) if m != "mod" => m.clone(),
        _ => String::new(),
    };
    Some((district, module))
}

fn is_test_file(rel: &Path) -> bool {
    let name = rel.file_stem().unwrap().to_string_lossy();
    name == "tests" || name == "fixtures" || name == "test_support" || rel.iter().any(|p| p == "fixtures")
}

#[test]
fn districts_use_only_those_below_them_and_modules_form_no_cycle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let rank: BTreeMap<&str, u8> = DISTRICTS.iter().copied().collect();
    let mut files = Vec::new();
    for (d, _) in DISTRICTS {
        let p = src.join(d);
        if p.is_dir() {
            rust_files(&p, &mut files);
        }
    }
    assert!(files.len() > 50, "found only {} files under src/", files.len());
    let path_re = |line: &str| -> Vec<(String, String)> {
        // `crate::district::module` (or `crate::district` alone).
        let mut found = Vec::new();
        let mut rest = line;
        while let Some(i) = rest.find("crate::") {
            rest = &rest[i + "crate::".len()..];
            let seg: Vec<&str> = rest.split("::").take(2).collect();
            let word = |s: &str| s.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect::<String>();
            let district = word(seg[0]);
            let module = seg.get(1).map(|s| word(s)).unwrap_or_default();
            found.push((district, module));
        }
        found
    };
    let mut upward = Vec::new();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut is_module: BTreeSet<String> = BTreeSet::new();
    for file in &files {
        let rel = file.strip_prefix(&src).unwrap();
        if let Some((d, m)) = unit_of(rel) {
            is_module.insert(format!("{d}::{m}"));
        }
    }
    for file in &files {
        let rel = file.strip_prefix(&src).unwrap();
        if is_test_file(rel) {
            continue;
        }
        let Some((district, module)) = unit_of(rel) else { continue };
        let from = format!("{district}::{module}");
        let text = std::fs::read_to_string(file).unwrap();
        for (n, line) in code_of(&text) {
            for (d, m) in path_re(&line) {
                let Some(&r) = rank.get(d.as_str()) else { continue };
                if r > rank[district.as_str()] {
                    upward.push(format!("src/{}:{n}: {district} uses {d}: {}", rel.display(), line.trim()));
                }
                let to = format!("{d}::{m}");
                if d == district && !m.is_empty() && !module.is_empty() && m != module && is_module.contains(&to) {
                    graph.entry(from.clone()).or_default().insert(to);
                }
            }
        }
    }
    assert!(upward.is_empty(), "a district uses one above it:\n{}", upward.join("\n"));

    // Depth-first search for a cycle among the modules of each district.
    fn visit(
        n: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, u8>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        state.insert(n.to_string(), 1);
        stack.push(n.to_string());
        for next in graph.get(n).into_iter().flatten() {
            match state.get(next.as_str()).copied().unwrap_or(0) {
                1 => {
                    let start = stack.iter().position(|s| s == next).unwrap();
                    let mut cycle = stack[start..].to_vec();
                    cycle.push(next.clone());
                    return Some(cycle);
                }
                0 => {
                    if let Some(c) = visit(next, graph, state, stack) {
                        return Some(c);
                    }
                }
                _ => {}
            }
        }
        stack.pop();
        state.insert(n.to_string(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for n in graph.keys() {
        if state.get(n.as_str()).copied().unwrap_or(0) == 0 {
            let cycle = visit(n, &graph, &mut state, &mut Vec::new());
            assert!(cycle.is_none(), "modules import each other: {}", cycle.unwrap().join(" → "));
        }
    }
}
