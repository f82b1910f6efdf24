use super::*;
use crate::data::runtime::Registry;

fn d(byte: u8) -> Digest {
    Digest::from_sha256([byte; 32])
}

fn bun() -> ResolvedRuntime {
    Registry::builtin().expect("registry").resolve("bun").expect("bun")
}

fn sources() -> Sources {
    Sources {
        manifests: [("package.json".to_string(), d(1))].into(),
        lockfiles: [("bun.lock".to_string(), d(2))].into(),
        files: [("index.ts".to_string(), d(3)), ("lib/a.ts".to_string(), d(4))].into(),
        symlinks: [("alias.ts".to_string(), "index.ts".to_string())].into(),
    }
}

fn lock() -> LockFile {
    LockFile::new(&bun(), d(9), sources())
}

fn parse_err(text: &str) -> String {
    parse(text, Path::new("/svc/ignite.lock"), "/svc").expect_err("malformed").to_string()
}

#[test]
fn renders_deterministically_and_parses_back() {
    let text = lock().render();
    assert_eq!(text, lock().render());
    assert!(text.starts_with("# ignite.lock"), "{text}");
    let body: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
    let expected = format!(
        "version: 1
runtime:
  name: bun
  version: {}
  bundle: {}
manifests:
  package.json: {}
lockfiles:
  bun.lock: {}
files:
  index.ts: {}
  lib/a.ts: {}
symlinks:
  alias.ts: index.ts",
        bun().version,
        d(9),
        d(1),
        d(2),
        d(3),
        d(4)
    );
    assert_eq!(body.join("\n"), expected);
    assert_eq!(parse(&text, Path::new("ignite.lock"), ".").expect("parses"), lock());
    // Empty sections are written out, and read back.
    let empty = LockFile::new(&bun(), d(9), Sources::default());
    let text = empty.render();
    assert!(text.contains("files: {}"), "{text}");
    assert_eq!(parse(&text, Path::new("ignite.lock"), ".").expect("parses"), empty);
}

#[test]
fn a_walk_is_sorted_into_sections_by_top_level_name() {
    let tree = Tree {
        files: [
            ("package.json", 1),
            ("deno.json", 2),
            ("bun.lockb", 3),
            ("deno.lock", 4),
            ("lib/package.json", 5),
            ("index.ts", 6),
        ]
        .into_iter()
        .map(|(p, b)| (p.to_string(), d(b)))
        .collect(),
        symlinks: [("bun.lock".to_string(), "elsewhere".to_string())].into(),
    };
    let s = Sources::from_tree(tree);
    assert_eq!(s.manifests.keys().collect::<Vec<_>>(), ["deno.json", "package.json"]);
    assert_eq!(s.lockfiles.keys().collect::<Vec<_>>(), ["bun.lockb", "deno.lock"]);
    assert_eq!(s.files.keys().collect::<Vec<_>>(), ["index.ts", "lib/package.json"]);
    assert_eq!(s.symlinks.keys().collect::<Vec<_>>(), ["bun.lock"]);
    // Every lockfile the dependency install reads is a lockfile here too.
    for name in crate::store::deps::LOCKFILES {
        assert!(LOCKFILES.contains(name), "{name}");
    }
    assert!(MANIFESTS.contains(&crate::store::deps::MANIFEST));
}

#[test]
fn malformed_lock_files_are_precise_errors() {
    let good = lock().render();
    // Not YAML at all.
    let e = parse_err("runtime: [\n");
    assert!(e.contains("/svc/ignite.lock") && e.contains("ignite lock /svc"), "{e}");
    // Not a mapping, no version, another version.
    assert!(parse_err("- 1\n").contains("`version: 1`"));
    assert!(parse_err("runtime: {}\n").contains("field `version` is missing"));
    let e = parse(&good.replace("version: 1\n", "version: 2\n"), Path::new("/svc/ignite.lock"), "/svc")
        .expect_err("v2")
        .to_string();
    assert!(e.contains("format version 2") && e.contains("reads version 1"), "{e}");
    // A bad digest names the field and the line.
    let e = parse_err(&good.replace(&d(3).to_string(), "sha256:abc"));
    assert!(e.contains("files.index.ts") && e.contains("64 lower-case hex") && e.contains("line 15"), "{e}");
    // A bad runtime version.
    let e = parse_err(&good.replace(&format!("version: {}", bun().version), "version: latest"));
    assert!(e.contains("runtime.version") && e.contains("latest"), "{e}");
    // Unknown and missing fields.
    let e = parse_err(&good.replace("symlinks:", "extra: 1\nsymlinks:"));
    assert!(e.contains("unknown field `extra`"), "{e}");
    let e = parse_err(&good.replace("lockfiles:\n  bun.lock", "other:\n  bun.lock"));
    assert!(e.contains("unknown field `other`") || e.contains("missing field `lockfiles`"), "{e}");
    let cut: String = good.lines().take_while(|l| !l.starts_with("symlinks")).map(|l| format!("{l}\n")).collect();
    assert!(parse_err(&cut).contains("missing field `symlinks`"), "{}", parse_err(&cut));
    // Paths the walk could not have recorded.
    for (bad, needle) in [
        ("../x.ts", "plain relative path"),
        ("/etc/passwd", "relative"),
        ("a//b.ts", "plain relative path"),
        ("node_modules/x/index.js", "never part of a lock"),
        ("ignite.lock", "does not record itself"),
    ] {
        let e = parse_err(&good.replace("lib/a.ts:", &format!("{bad:?}:")));
        assert!(e.contains("field `files.") && e.contains(needle), "{bad}: {e}");
    }
    let e = parse_err(&good.replace("  bun.lock:", "  notes.txt:"));
    assert!(e.contains("lockfiles.\"notes.txt\"") && e.contains("is not one of"), "{e}");
    // One path in two sections.
    let e = parse_err(&good.replace("alias.ts: index.ts", "index.ts: other.ts"));
    assert!(e.contains("symlinks.\"index.ts\"") && e.contains("also listed under `files`"), "{e}");
}

#[test]
fn duplicate_paths_are_refused() {
    let good = lock().render();
    let dup = good.replace("  lib/a.ts:", &format!("  index.ts: {}\n  lib/a.ts:", d(7)));
    let e = parse_err(&dup);
    assert!(e.contains("duplicate") && e.contains("index.ts"), "{e}");
}

#[test]
fn no_drift_when_nothing_changed() {
    assert_eq!(diff(&lock(), &bun(), Some(&d(9)), &sources()), []);
    assert_eq!(diff(&lock(), &bun(), None, &sources()), [], "an unknown bundle is not drift");
}

#[test]
fn runtime_and_bundle_drift() {
    let registry = Registry::builtin().expect("registry");
    let older = registry.resolve("bun@1.3").expect("bun 1.3");
    let drift = diff(&lock(), &older, None, &sources());
    assert_eq!(
        drift,
        [Drift::RuntimeVersion {
            runtime: "bun".into(),
            locked: bun().version.to_string(),
            current: older.version.to_string()
        }]
    );
    assert!(drift[0].to_string().starts_with("runtime version changed: bun locked at 1."), "{}", drift[0]);
    let node = registry.resolve("node").expect("node");
    let drift = diff(&lock(), &node, None, &sources());
    assert!(matches!(&drift[..], [Drift::Runtime { .. }]), "{drift:?}");
    let drift = diff(&lock(), &bun(), Some(&d(8)), &sources());
    assert_eq!(drift, [Drift::BundleDigest { runtime: bun().key(), locked: d(9), current: d(8) }]);
    assert!(drift[0].to_string().contains(&d(8).to_string()), "{}", drift[0]);
}

#[test]
fn every_kind_of_source_change_is_drift() {
    let mut now = sources();
    now.manifests.insert("package.json".into(), d(11));
    now.manifests.insert("deno.json".into(), d(12));
    now.lockfiles.clear();
    now.files.insert("index.ts".into(), d(13));
    now.files.remove("lib/a.ts");
    now.files.insert("lib/b.ts".into(), d(14));
    now.symlinks.insert("alias.ts".into(), "lib/b.ts".into());
    now.symlinks.insert("more.ts".into(), "x".into());
    let drift = diff(&lock(), &bun(), Some(&d(9)), &now);
    let lines: Vec<String> = drift.iter().map(Drift::to_string).collect();
    assert_eq!(
        lines,
        [
            "manifest added: deno.json",
            "manifest modified: package.json",
            "lockfile removed: bun.lock",
            "file modified: index.ts",
            "file removed: lib/a.ts",
            "file added: lib/b.ts",
            "symlink modified: alias.ts -> lib/b.ts (locked -> index.ts)",
            "symlink added: more.ts -> x",
        ]
    );
    let json = serde_json::to_value(&drift[4]).expect("json");
    assert_eq!(
        json,
        serde_json::json!({"kind": "file", "change": "removed", "path": "lib/a.ts", "locked": d(4).to_string()})
    );
    let json = serde_json::to_value(Drift::BundleDigest { runtime: "bun@1.4.5".into(), locked: d(1), current: d(2) })
        .expect("json");
    assert_eq!(json["kind"], "bundleDigest");
}

#[test]
fn writes_atomically_and_leaves_an_unchanged_lock_alone() {
    let t = tempfile::tempdir().expect("tempdir");
    let written = write(t.path(), &lock()).expect("write");
    assert!(written.changed);
    assert_eq!(read(t.path()).expect("read"), lock());
    let again = write(t.path(), &lock()).expect("write");
    assert!(!again.changed, "same bytes are not rewritten");
    let names: Vec<_> = fs::read_dir(t.path()).expect("ls").flatten().map(|e| e.file_name()).collect();
    assert_eq!(names, [LOCK_FILE], "no temp file is left");
}

#[test]
fn a_missing_or_linked_lock_file_is_refused() {
    let t = tempfile::tempdir().expect("tempdir");
    let e = read(t.path()).expect_err("missing").to_string();
    assert!(e.contains("no lock file") && e.contains("ignite lock"), "{e}");
    let outside = tempfile::tempdir().expect("outside");
    fs::write(outside.path().join("x"), lock().render()).expect("write");
    std::os::unix::fs::symlink(outside.path().join("x"), t.path().join(LOCK_FILE)).expect("symlink");
    let e = read(t.path()).expect_err("symlink").to_string();
    assert!(e.contains("is a symbolic link"), "{e}");
}

#[test]
fn the_runtime_spec_comes_from_the_flag_then_service_yaml_without_expanding_env() {
    let t = tempfile::tempdir().expect("tempdir");
    assert_eq!(runtime_spec(t.path(), None).expect("default"), DEFAULT_RUNTIME);
    fs::write(
        t.path().join(SERVICE_FILE),
        "service:\n  name: x\n  runtime: node@22\n  env:\n    K: \"${UNSET_SECRET}\"\n",
    )
    .expect("write");
    assert_eq!(runtime_spec(t.path(), None).expect("file"), "node@22");
    assert_eq!(runtime_spec(t.path(), Some("deno")).expect("flag"), "deno");
    fs::write(t.path().join(SERVICE_FILE), "service:\n  runtime: [\n").expect("write");
    assert!(runtime_spec(t.path(), None).expect_err("bad yaml").to_string().contains("service.yaml"));
}
