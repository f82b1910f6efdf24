use super::*;
use std::os::unix::fs::symlink;
use std::time::UNIX_EPOCH;

struct Fixture {
    svc: tempfile::TempDir,
    cache: tempfile::TempDir,
}

impl Fixture {
    fn new(files: &[(&str, &str)]) -> Fixture {
        let svc = tempfile::tempdir().expect("svc");
        fs::set_permissions(svc.path(), fs::Permissions::from_mode(0o755)).expect("chmod");
        let cache = tempfile::tempdir().expect("cache");
        let f = Fixture { svc, cache };
        for (path, text) in files {
            f.write(path, text);
        }
        f
    }

    fn write(&self, rel: &str, text: &str) {
        let p = self.svc.path().join(rel);
        fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        fs::write(p, text).expect("write");
    }

    fn stager(&self) -> Stager {
        Stager::new(self.cache.path(), Stripper::InProcess)
    }

    fn stage(&self, entry: &str) -> Result<StagedApp, StageError> {
        self.stager().stage(self.svc.path(), entry, "node@24.0.0")
    }

    fn apps(&self) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(self.cache.path().join(APPS_DIR))
            .expect("apps dir")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| !n.ends_with(".lock"))
            .collect();
        names.sort();
        names
    }
}

fn mode_of(p: &Path) -> u32 {
    fs::symlink_metadata(p).expect("stat").permissions().mode() & 0o7777
}

const MAIN: &str = "import { double, type Shape } from \"./lib/math.ts\";\nconst s: Shape = { side: 2 };\nconsole.log(double(s.side));\n";
const MATH: &str =
    "export type Shape = { side: number };\nexport function double(x: number): number { return x * 2 }\n";

#[test]
fn stages_a_stripped_mirror_of_the_service() {
    let f = Fixture::new(&[
        ("index.ts", MAIN),
        ("lib/math.ts", MATH),
        ("lib/types.d.ts", "declare const x: number;\n"),
        ("lib/mod.mts", "export const m: number = 1;\n"),
        ("data.json", "{\"a\":1}"),
        ("plain.js", "const x = 1; // : number\n"),
        ("node_modules/dep/index.js", "module.exports = 1;\n"),
        (".git/HEAD", "ref: x\n"),
    ]);
    symlink("lib/math.ts", f.svc.path().join("alias.ts")).expect("symlink");
    symlink("/etc/passwd", f.svc.path().join("abs-link")).expect("symlink");
    let app = f.stage("index.ts").expect("stage");
    assert!(!app.cached);
    assert_eq!(app.entry, "index.js");
    assert_eq!(app.node_modules.as_deref(), Some(f.svc.path().join("node_modules").as_path()));

    let d = &app.dir;
    let main = fs::read_to_string(d.join("index.js")).expect("index.js");
    assert_eq!(main.len(), MAIN.len(), "positions are kept");
    assert!(main.contains("from \"./lib/math.js\""), "{main}");
    assert!(!main.contains("Shape"), "{main}");
    assert!(fs::read_to_string(d.join("lib/math.js")).expect("math.js").contains("function double(x        )"));
    assert!(d.join("lib/mod.mjs").is_file());
    assert!(!d.join("lib/types.d.ts").exists() && !d.join("lib/types.d.js").exists());
    assert!(!d.join("index.ts").exists() && !d.join("lib/math.ts").exists());
    assert_eq!(fs::read_to_string(d.join("data.json")).expect("json"), "{\"a\":1}");
    assert_eq!(fs::read_to_string(d.join("plain.js")).expect("js"), "const x = 1; // : number\n");
    assert_eq!(fs::read_link(d.join("alias.js")).expect("link"), Path::new("lib/math.js"));
    assert_eq!(fs::read_link(d.join("abs-link")).expect("link"), Path::new("/etc/passwd"));
    assert!(!d.join(".git").exists());
    // node_modules is a mount point only: the service's own directory is mounted there.
    assert!(d.join("node_modules").is_dir());
    assert_eq!(fs::read_dir(d.join("node_modules")).expect("mount point").count(), 0);
    assert_eq!(mode_of(d), 0o755);
    assert_eq!(mode_of(&d.join("lib")), 0o755);
    assert_eq!(mode_of(&d.join("index.js")), 0o644);
}

#[test]
fn second_run_is_a_cache_hit_without_stripping() {
    let f = Fixture::new(&[("index.ts", MAIN), ("lib/math.ts", MATH)]);
    let first = f.stage("index.ts").expect("stage");
    drop(first);
    // A stripper that cannot run proves nothing is stripped on a hit.
    let broken = Stager::new(f.cache.path(), Stripper::Subprocess { exe: "/nonexistent".into() });
    let second = broken.stage(f.svc.path(), "index.ts", "node").expect("cache hit");
    assert!(second.cached);
    assert_eq!(f.apps().len(), 1);

    // Any change to the content, a mode, or a new file is a new entry.
    f.write("lib/math.ts", &MATH.replace("x * 2", "x + x"));
    let third = f.stage("index.ts").expect("stage");
    assert!(!third.cached);
    assert_ne!(third.dir, second.dir);
    fs::set_permissions(f.svc.path().join("index.ts"), fs::Permissions::from_mode(0o600)).expect("chmod");
    let fourth = f.stage("index.ts").expect("stage");
    assert!(!fourth.cached);
    assert_eq!(mode_of(&fourth.dir.join("index.js")), 0o600, "unreadable stays unreadable for the sandbox");
    assert_eq!(f.apps().len(), 3);
}

#[test]
fn parse_errors_name_file_line_column_and_show_the_line() {
    let f =
        Fixture::new(&[("index.ts", MAIN), ("lib/math.ts", "export function double(x: number) {\n  return x *;\n}\n")]);
    let err = f.stage("index.ts").expect_err("syntax error");
    let msg = err.to_string();
    let path = f.svc.path().join("lib/math.ts");
    assert!(msg.contains(&format!("{}:2:13: ", path.display())), "{msg}");
    assert!(msg.contains("     2 |   return x *;\n       |             ^"), "{msg}");
    assert!(msg.contains("node@24.0.0"), "{msg}");
    // Nothing is cached, nothing is left half-built.
    assert!(f.apps().is_empty(), "{:?}", f.apps());
}

#[test]
fn unsupported_syntax_is_explained() {
    let f = Fixture::new(&[("index.ts", "enum Color { Red }\nconsole.log(Color.Red);\n")]);
    let msg = f.stage("index.ts").expect_err("enum").to_string();
    assert!(msg.contains("index.ts:1:1: TypeScript enum is not supported in strip-only mode"), "{msg}");
    assert!(msg.contains("hint: node@24.0.0 gets TypeScript's erasable syntax only"), "{msg}");
}

#[test]
fn decorators_are_explained() {
    let f = Fixture::new(&[("index.ts", "function dec(t: any) { return t }\n@dec class A {}\n")]);
    let msg = f.stage("index.ts").expect_err("decorator").to_string();
    assert!(msg.contains("index.ts:2:1: ") && msg.contains("decorators are not supported"), "{msg}");
}

#[test]
fn collisions_and_declaration_entries_are_refused() {
    let f = Fixture::new(&[("index.ts", "export {}\n"), ("index.js", "")]);
    let err = f.stage("index.ts").expect_err("collision");
    assert!(matches!(err, StageError::Collision { .. }), "{err}");
    assert!(err.to_string().contains("index.js"), "{err}");
    let f = Fixture::new(&[("types.d.ts", "declare const x: number;\n")]);
    assert!(matches!(f.stage("types.d.ts"), Err(StageError::DeclarationEntry { .. })));
}

#[test]
fn only_typescript_and_declaration_entries_are_staged() {
    for entry in ["index.ts", "src/main.mts", "a.cts", "types.d.ts"] {
        assert!(needs_staging(entry), "{entry}");
    }
    for entry in ["index.js", "main.mjs", "app.tsx", "x.json"] {
        assert!(!needs_staging(entry), "{entry}");
    }
}

#[test]
fn non_utf8_sources_are_refused() {
    let f = Fixture::new(&[]);
    fs::write(f.svc.path().join("index.ts"), b"const a = '\xff';\n").expect("write");
    let err = f.stage("index.ts").expect_err("not utf-8");
    assert!(matches!(err, StageError::NotUtf8 { .. }), "{err}");
}

#[test]
fn limits_apply_before_anything_is_written() {
    let f = Fixture::new(&[("index.ts", MAIN), ("lib/math.ts", MATH)]);
    let stager = f.stager().with_limits(crate::fsutil::walk::Limits { max_entries: 2, ..LIMITS });
    let err = stager.stage(f.svc.path(), "index.ts", "node").expect_err("limit");
    assert!(err.to_string().contains("more than 2 files"), "{err}");
    assert!(!f.cache.path().join(APPS_DIR).exists());
}

#[test]
fn pruning_keeps_the_most_recent_and_everything_in_use() {
    let f = Fixture::new(&[("index.ts", "console.log(0);\n")]);
    let mut held = Vec::new();
    for i in 1..=3 {
        f.write("index.ts", &format!("console.log({i});\n"));
        let app = f.stage("index.ts").expect("stage");
        // Distinct, increasing last-use times without sleeping.
        let lock = f
            .cache
            .path()
            .join(APPS_DIR)
            .join(format!("{}.lock", app.dir.file_name().expect("name").to_string_lossy()));
        File::options()
            .write(true)
            .open(&lock)
            .expect("lock")
            .set_modified(UNIX_EPOCH + Duration::from_secs(1_000_000 + i))
            .expect("touch");
        held.push(app);
    }
    let stager = f.stager();
    // All three in use: nothing can go.
    assert_eq!(stager.prune(1, MAX_AGE), 0);
    assert_eq!(f.apps().len(), 3);
    // The oldest is released: it is beyond the newest one and goes; the middle one is in use.
    let newest = held.pop().expect("newest");
    let middle = held.pop().expect("middle");
    drop(held);
    assert_eq!(stager.prune(1, Duration::from_secs(u64::MAX / 4)), 1);
    assert!(middle.dir.is_dir() && newest.dir.is_dir());
    drop(middle);
    // Everything is older than a zero max age, but a run still holds the newest.
    assert_eq!(stager.clear(), 1);
    assert_eq!(f.apps(), [newest.dir.file_name().expect("name").to_string_lossy()]);
    drop(newest);
    assert_eq!(stager.clear(), 1);
    assert!(f.apps().is_empty());
    let left: Vec<_> = fs::read_dir(f.cache.path().join(APPS_DIR)).expect("dir").flatten().collect();
    assert!(left.is_empty(), "lock files are removed with their entries: {left:?}");
}

#[test]
fn stale_temps_are_pruned_and_fresh_ones_kept() {
    let f = Fixture::new(&[("index.ts", "console.log(1);\n")]);
    drop(f.stage("index.ts").expect("stage"));
    let apps = f.cache.path().join(APPS_DIR);
    let stale = apps.join(".tmp-dead-1-0-0");
    let fresh = apps.join(".tmp-live-2-0-0");
    fs::create_dir(&stale).expect("mkdir");
    fs::create_dir(&fresh).expect("mkdir");
    File::open(&stale).expect("open").set_modified(UNIX_EPOCH + Duration::from_secs(1)).expect("touch");
    f.stager().prune(KEEP_ENTRIES, MAX_AGE);
    assert!(!stale.exists());
    assert!(fresh.exists());
}

#[test]
fn concurrent_stagers_agree() {
    let f = Fixture::new(&[("index.ts", MAIN), ("lib/math.ts", MATH)]);
    let dirs: Vec<PathBuf> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4).map(|_| s.spawn(|| f.stage("index.ts").expect("stage").dir)).collect();
        handles.into_iter().map(|h| h.join().expect("thread")).collect()
    });
    assert!(dirs.windows(2).all(|w| w[0] == w[1]), "{dirs:?}");
    assert_eq!(f.apps().len(), 1, "no temp left behind: {:?}", f.apps());
}

#[test]
fn report_aligns_the_caret_under_tabs_and_wide_text() {
    let source = Source { name: "a.ts".into(), text: "\tconst é: = 1;\n".into() };
    let diags = [strip::Diagnostic { offset: "\tconst é: ".len(), message: "boom".into() }];
    let r = report(Path::new("/svc"), &source, &diags, "node@24");
    assert!(r.contains("/svc/a.ts:1:11: boom\n     1 | \tconst é: = 1;\n       | \t         ^"), "{r}");
}
