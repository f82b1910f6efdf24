//! Offline archives through the binary: `ignite runtime export|import` and
//! `ignite install DIR --export|--import`. A round trip into an empty cache; a tampered bundle
//! and hostile archives refused with nothing entering the cache; and air-gapped runs: ignite in
//! a network namespace of its own (`unshare --net`, loopback only), where a pull fails, runs
//! examples/hello — and a service with npm dependencies — after importing what the shared
//! cache exported.

mod common;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::*;

/// `ignite ARGS` with `cache` as the bundle cache, through `unshare --net` when `air_gapped`
/// (a network namespace with only a loopback that is down: no registry, no DNS).
fn ignite_in(sb: &Sandbox, cache: &Path, air_gapped: bool, args: &[&str]) -> Output {
    let mut cmd = if air_gapped {
        let mut c = Command::new("unshare");
        c.arg("--net").arg("--").arg(ignite_bin());
        c
    } else {
        Command::new(ignite_bin())
    };
    cmd.args(args)
        .env("IGNITE_CACHE_DIR", cache)
        .env("IGNITE_STATE_DIR", sb.state.path())
        .env("IGNITE_OCI_RUNTIME", &sb.oci_runtime)
        .env_remove("IGNITE_LOG")
        .output()
        .expect("spawn ignite (unshare is in util-linux)")
}

/// Exports `specs` from the shared cache (pulling what is missing, as `.ci/run` pulls them) to
/// `out`, and returns the `--json` summary.
fn export_from_shared(sb: &Sandbox, specs: &[&str], out: &Path) -> serde_json::Value {
    let mut args = vec!["runtime", "export"];
    args.extend(specs);
    let out_s = out.to_str().unwrap();
    args.extend(["-o", out_s, "--json"]);
    let o = ignite_in(sb, &shared_cache(), false, &args);
    assert!(o.status.success(), "export: {}", stderr_of(&o));
    serde_json::from_slice(&o.stdout).expect("export --json")
}

/// Names under `cache/<dir>`, sorted (empty if the directory does not exist).
fn names(cache: &Path, dir: &str) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(cache.join(dir))
        .map(|rd| rd.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

/// Nothing entered the cache: no index record, bundle, rootfs or dependency tree, and no
/// staging file left.
fn assert_cache_empty(cache: &Path) {
    for dir in ["index", "bundles", "rootfs", "tmp"] {
        assert!(names(cache, dir).is_empty(), "{dir}/ of {}: {:?}", cache.display(), names(cache, dir));
    }
    let trees: Vec<String> = names(cache, "deps").into_iter().filter(|n| n.starts_with("sha256-")).collect();
    assert!(trees.is_empty(), "deps/: {trees:?}");
    assert!(names(&cache.join("deps"), "tmp").is_empty(), "deps/tmp/: {:?}", names(&cache.join("deps"), "tmp"));
}

fn scratch(prefix: &str) -> tempfile::TempDir {
    tempfile::Builder::new().prefix(prefix).tempdir().expect("tempdir")
}

#[test]
fn bundles_carried_into_an_air_gapped_cache_run_hello() {
    if !require_sandbox() {
        return;
    }
    let sb = Sandbox::new();
    let dir = scratch("ignite-offline-");
    let archive = dir.path().join("runtimes.tar");
    let exported = export_from_shared(&sb, &["bun"], &archive);
    let digest = exported["bundles"][0]["digest"].as_str().expect("digest").to_string();
    assert_eq!(exported["bundles"][0]["runtime"].as_str().map(|r| r.starts_with("bun@")), Some(true), "{exported}");
    assert_eq!(exported["compressed"], false);

    let cache = dir.path().join("cache");
    // The air gap is real: without the import, the bundle cannot be fetched.
    let pull = ignite_in(&sb, &cache, true, &["runtime", "pull", "bun"]);
    assert!(!pull.status.success(), "a pull succeeded without a network: {}", stderr_of(&pull));
    assert!(stderr_of(&pull).contains("failed to download"), "{}", stderr_of(&pull));

    let import = ignite_in(&sb, &cache, true, &["runtime", "import", archive.to_str().unwrap(), "--json"]);
    assert!(import.status.success(), "import: {}", stderr_of(&import));
    let imported: serde_json::Value = serde_json::from_slice(&import.stdout).expect("import --json");
    assert_eq!(imported["bundles"][0]["digest"], digest.as_str(), "{imported}");
    assert_eq!(imported["bundles"][0]["outcome"], "added", "{imported}");
    // The index record keeps the provenance the exporting cache recorded.
    let index = names(&cache, "index");
    assert_eq!(index.len(), 1, "{index:?}");
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(cache.join("index").join(&index[0])).unwrap()).unwrap();
    assert_eq!(record["source"], "imported");
    assert_eq!(record["digest"], digest.as_str());
    assert!(record["package"]["integrity"].as_str().is_some_and(|i| i.starts_with("sha512-")), "{record}");

    let run = ignite_in(&sb, &cache, true, &["run", repo().join("examples/hello").to_str().unwrap(), "--json"]);
    let report: serde_json::Value = serde_json::from_slice(&run.stdout)
        .unwrap_or_else(|e| panic!("run --json ({e}): {}\n{}", stdout_of(&run), stderr_of(&run)));
    assert_eq!(report["status"], "ok", "{report}");
    assert_eq!(report["stdout"], "hello, world\n", "{report}");
    assert!(!stderr_of(&run).contains("download"), "{}", stderr_of(&run));

    // Importing again changes nothing.
    let again = ignite_in(&sb, &cache, true, &["runtime", "import", archive.to_str().unwrap(), "--json"]);
    assert!(again.status.success(), "{}", stderr_of(&again));
    let again: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(again["bundles"][0]["outcome"], "unchanged", "{again}");
    sb.assert_no_leaks();
}

/// Replaces `len` bytes at the middle of the member whose name starts with `prefix` (same
/// size, so only the digest can tell).
fn tamper(archive: &Path, prefix: &str) {
    let mut bytes = std::fs::read(archive).unwrap();
    let mut offset = 0;
    let at = loop {
        let header = &bytes[offset..offset + 512];
        let name = String::from_utf8_lossy(&header[..100]).trim_end_matches('\0').to_string();
        let size = usize::from_str_radix(String::from_utf8_lossy(&header[124..135]).trim_matches(['\0', ' ']), 8)
            .expect("octal size");
        if name.starts_with(prefix) {
            break offset + 512 + size / 2;
        }
        offset += 512 + size.div_ceil(512) * 512;
        assert!(offset < bytes.len(), "no member {prefix}");
    };
    for b in &mut bytes[at..at + 16] {
        *b ^= 0x5a;
    }
    std::fs::write(archive, bytes).unwrap();
}

#[test]
fn a_tampered_bundle_is_refused_and_nothing_enters_the_cache() {
    if !require_sandbox() {
        return;
    }
    let sb = Sandbox::new();
    let dir = scratch("ignite-offline-");
    let archive = dir.path().join("runtimes.tar");
    let exported = export_from_shared(&sb, &["bun"], &archive);
    let digest = exported["bundles"][0]["digest"].as_str().unwrap().to_string();
    tamper(&archive, "bundles/");
    let cache = dir.path().join("cache");
    let o = ignite_in(&sb, &cache, false, &["runtime", "import", archive.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(125), "{}", stderr_of(&o));
    let err = stderr_of(&o);
    assert!(
        err.contains(&format!("does not match its recorded digest: expected {digest}, found sha256:"))
            && err.contains("nothing was imported"),
        "{err}"
    );
    assert_cache_empty(&cache);
}

/// A member of a hand-made archive: raw name, type, content.
type Member<'a> = (&'a [u8], tar::EntryType, &'a [u8]);

/// A plain tar: the manifest `json`, then `members`.
fn hand_made(path: &Path, json: &str, members: &[Member]) {
    let mut b = tar::Builder::new(Vec::new());
    let mut raw = |name: &[u8], kind: tar::EntryType, data: &[u8]| {
        let mut header = tar::Header::new_gnu();
        header.as_gnu_mut().unwrap().name[..name.len()].copy_from_slice(name);
        header.set_entry_type(kind);
        header.set_mode(0o644);
        header.set_size(data.len() as u64);
        if matches!(kind, tar::EntryType::Symlink | tar::EntryType::Link) {
            header.as_gnu_mut().unwrap().linkname[..11].copy_from_slice(b"/etc/shadow");
        }
        header.set_cksum();
        b.append(&header, data).unwrap();
    };
    raw(b"ignite-archive.json", tar::EntryType::Regular, json.as_bytes());
    for (name, kind, data) in members {
        raw(name, *kind, data);
    }
    std::fs::write(path, b.into_inner().unwrap()).unwrap();
}

#[test]
fn hostile_archives_are_refused_with_precise_errors() {
    // Needs neither root nor a sandbox: the archive is refused before anything runs.
    use tar::EntryType::{Link, Regular, Symlink};
    let dir = scratch("ignite-offline-");
    let registry_bun = {
        let o = Command::new(ignite_bin()).args(["runtime", "list", "--json"]).output().unwrap();
        let list: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        list["runtimes"].as_array().unwrap().iter().find(|r| r["name"] == "bun").unwrap()["versions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["default"] == true)
            .unwrap()["version"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let data = b"not really a bundle";
    let digest = {
        use sha2::Digest as _;
        format!("sha256:{}", hex::encode(sha2::Sha256::digest(data)))
    };
    let member = format!("bundles/sha256-{}.tar.gz", &digest[7..]);
    // The package this ignite pins for bun, as `runtime list` does not show it: taken from the
    // error the import gives for a wrong one.
    let manifest_of = |package_integrity: &str, digest: &str, member: &str, size: usize| {
        serde_json::json!({
            "format": "ignite-archive/1",
            "contents": "bundles",
            "entries": [{
                "member": member, "digest": digest, "size": size,
                "record": {
                    "runtime": "bun", "version": registry_bun, "digest": digest, "source": "built",
                    "package": { "name": "@oven/bun-linux-x64", "version": registry_bun,
                                 "url": "https://registry.npmjs.org/x.tgz", "integrity": package_integrity },
                    "recipeDigest": null, "size": size, "createdUnix": 0, "buildMillis": 0
                }
            }]
        })
        .to_string()
    };
    let manifest = |package_integrity: &str, size: usize| manifest_of(package_integrity, &digest, &member, size);
    let bogus = format!("sha512-{}", "A".repeat(86) + "==");
    let import = |archive: &Path| {
        let cache = dir.path().join(format!("cache-{}", nonce()));
        let o = Command::new(ignite_bin())
            .args(["runtime", "import", archive.to_str().unwrap()])
            .env("IGNITE_CACHE_DIR", &cache)
            .env_remove("IGNITE_LOG")
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(125), "{}", stderr_of(&o));
        assert_cache_empty(&cache);
        stderr_of(&o)
    };

    // The package check comes first (before any member is read); learn the pinned integrity.
    let path = dir.path().join("wrong-package.tar");
    hand_made(&path, &manifest(&bogus, data.len()), &[(member.as_bytes(), Regular, data)]);
    let err = import(&path);
    assert!(
        err.contains("was built from package @oven/bun-linux-x64") && err.contains("but this ignite pins"),
        "{err}"
    );
    let pinned = err.split("but this ignite pins ").nth(1).unwrap();
    let pinned = pinned[pinned.find("(sha512-").unwrap() + 1..].split(')').next().unwrap().to_string();
    let good = manifest(&pinned, data.len());

    let cases: Vec<(&str, Vec<Member>, String)> = vec![
        (
            "symlink",
            vec![(member.as_bytes(), Symlink, b"")],
            "is a symbolic link; an ignite archive holds regular files only".into(),
        ),
        ("hardlink", vec![(member.as_bytes(), Link, b"")], "is a hard link".into()),
        ("dotdot", vec![(b"bundles/../../../etc/cron.d/x", Regular, data)], "its name contains '..'".into()),
        (
            "absolute",
            vec![(b"/etc/cron.d/x", Regular, data)],
            "refusing member \"/etc/cron.d/x\": its name is absolute".into(),
        ),
        (
            "unlisted",
            vec![(b"bundles/extra", Regular, data)],
            "refusing member \"bundles/extra\": the manifest does not list it".into(),
        ),
        (
            "oversized",
            vec![(member.as_bytes(), Regular, b"not really a bundle, and longer")],
            format!("it is 31 bytes, but the manifest records {}", data.len()),
        ),
        ("missing", vec![], "is listed in the manifest but missing".into()),
    ];
    for (name, members, needle) in cases {
        let path = dir.path().join(format!("{name}.tar"));
        hand_made(&path, &good, &members);
        let err = import(&path);
        assert!(err.contains(&needle) && err.contains("nothing was imported"), "{name}: expected {needle:?} in: {err}");
    }
    // A bundle that matches its digest but is itself hostile (a `..` entry): the unpacker
    // refuses it, and neither the tarball nor an index record stays.
    let evil = {
        let mut b = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.as_gnu_mut().unwrap().name[..9].copy_from_slice(b"../escape");
        header.set_size(0);
        header.set_cksum();
        b.append(&header, &b""[..]).unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&b.into_inner().unwrap()).unwrap();
        gz.finish().unwrap()
    };
    let evil_digest = {
        use sha2::Digest as _;
        format!("sha256:{}", hex::encode(sha2::Sha256::digest(&evil)))
    };
    let evil_member = format!("bundles/sha256-{}.tar.gz", &evil_digest[7..]);
    let path = dir.path().join("evil-bundle.tar");
    let evil_manifest = manifest_of(&pinned, &evil_digest, &evil_member, evil.len());
    hand_made(&path, &evil_manifest, &[(evil_member.as_bytes(), Regular, &evil)]);
    let err = import(&path);
    assert!(err.contains("refusing tar entry \"../escape\""), "{err}");
    assert!(!dir.path().join("escape").exists());

    // A runtime this ignite does not define, and a dependency archive given to `runtime import`.
    let path = dir.path().join("unknown.tar");
    hand_made(
        &path,
        &good.replace("\"runtime\":\"bun\"", "\"runtime\":\"bunx\""),
        &[(member.as_bytes(), Regular, data)],
    );
    let err = import(&path);
    assert!(err.contains(&format!("bunx@{registry_bun} is not a runtime version this ignite defines")), "{err}");
    let path = dir.path().join("deps.tar");
    hand_made(&path, &good.replace("\"contents\":\"bundles\"", "\"contents\":\"deps\""), &[]);
    let err = import(&path);
    assert!(
        err.contains("holds a service's dependencies (import it with `ignite install DIR --import FILE`)"),
        "{err}"
    );
    // Not an archive at all.
    let path = dir.path().join("text.tar");
    let mut f = std::fs::File::create(&path).unwrap();
    f.write_all(b"just some text, not a tar file").unwrap();
    let err = import(&path);
    assert!(err.contains("is not"), "{err}");
}

/// A service with one npm dependency whose cache key no earlier test run used.
fn service_with_lodash(sb: &Sandbox) -> PathBuf {
    let code = "import chunk from 'lodash/chunk.js';\nconsole.log(JSON.stringify(chunk([1, 2, 3, 4, 5], 2)));\n";
    let dir = sb.ts_service("carried", "", code);
    let package = format!(
        r#"{{"name":"carried","private":true,"description":"{}","dependencies":{{"lodash":"4.17.21"}}}}"#,
        nonce()
    );
    std::fs::write(dir.join("package.json"), package).unwrap();
    dir
}

#[test]
fn dependencies_carried_into_an_air_gapped_cache_run_without_an_install() {
    if !require_sandbox() {
        return;
    }
    let sb = Sandbox::new();
    let svc = service_with_lodash(&sb);
    let dir = scratch("ignite-offline-");
    let deps = dir.path().join("deps.tar.gz");
    // Installed from the registry into the shared cache, then exported.
    let o = ignite_in(
        &sb,
        &shared_cache(),
        false,
        &["install", svc.to_str().unwrap(), "--export", deps.to_str().unwrap(), "--json"],
    );
    assert!(o.status.success(), "install --export: {}", stderr_of(&o));
    let exported: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let key = exported["install"]["key"].as_str().unwrap().to_string();
    assert_eq!(exported["exported"]["key"], key.as_str(), "{exported}");
    let runtimes = dir.path().join("runtimes.tar");
    export_from_shared(&sb, &["bun"], &runtimes);

    // Another package.json gives another key: refused, nothing enters the cache.
    let cache = dir.path().join("cache");
    let other = sb.ts_service("other", "", "console.log(1);\n");
    std::fs::write(other.join("package.json"), r#"{"name":"other","dependencies":{"lodash":"4.17.20"}}"#).unwrap();
    let o = ignite_in(&sb, &cache, true, &["install", other.to_str().unwrap(), "--import", deps.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(125), "{}", stderr_of(&o));
    assert!(
        stderr_of(&o).contains(&format!("holds the dependencies of another package.json or lockfile (key {key})")),
        "{}",
        stderr_of(&o)
    );
    assert_cache_empty(&cache);
    // A tampered tree: refused too.
    let tampered = dir.path().join("tampered.tar");
    {
        let mut gz = flate2::read::GzDecoder::new(std::fs::File::open(&deps).unwrap());
        let mut plain = Vec::new();
        std::io::Read::read_to_end(&mut gz, &mut plain).unwrap();
        std::fs::write(&tampered, plain).unwrap();
    }
    tamper(&tampered, "deps/");
    let o = ignite_in(&sb, &cache, true, &["install", svc.to_str().unwrap(), "--import", tampered.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(125), "{}", stderr_of(&o));
    assert!(stderr_of(&o).contains("does not match its recorded digest"), "{}", stderr_of(&o));
    assert_cache_empty(&cache);

    // The air-gapped host: bundles and dependencies imported, then the run installs nothing.
    let o = ignite_in(&sb, &cache, true, &["runtime", "import", runtimes.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr_of(&o));
    let o =
        ignite_in(&sb, &cache, true, &["install", svc.to_str().unwrap(), "--import", deps.to_str().unwrap(), "--json"]);
    assert!(o.status.success(), "install --import: {}", stderr_of(&o));
    let imported: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(imported["imported"]["key"], key.as_str(), "{imported}");
    assert_eq!(imported["imported"]["digest"], exported["exported"]["digest"], "{imported}");
    assert_eq!(imported["imported"]["unchanged"], false, "{imported}");
    assert!(cache.join("deps").join(format!("sha256-{key}/node_modules/lodash/chunk.js")).is_file());

    let run = ignite_in(&sb, &cache, true, &["run", svc.to_str().unwrap(), "--json"]);
    let report: serde_json::Value = serde_json::from_slice(&run.stdout)
        .unwrap_or_else(|e| panic!("run --json ({e}): {}\n{}", stdout_of(&run), stderr_of(&run)));
    assert_eq!(report["status"], "ok", "{report}");
    assert_eq!(report["stdout"], "[[1,2],[3,4],[5]]\n", "{report}");
    assert_eq!(report["install"]["cached"], true, "{report}");
    sb.assert_no_leaks();
}
