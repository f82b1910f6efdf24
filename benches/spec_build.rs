//! Spec generation for a typical service (bun, /app read-only, installed node_modules, the
//! built-in seccomp profile, spawning off): `spec::build` alone, and with `spec::validate`,
//! which every run does before the OCI runtime sees the spec.
//! Run: `cargo bench --bench spec_build`.

use std::collections::BTreeMap;
use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use ignite::sandbox::spawn_guard::SpawnRule;
use ignite::sandbox::spec::seccomp::SeccompProfile;
use ignite::sandbox::spec::{self, Limits, RunUser, SpecInput};

fn input() -> SpecInput {
    let seccomp = SeccompProfile::builtin().and_then(|p| p.to_oci()).expect("the built-in seccomp profile");
    let mut runtime_env = BTreeMap::new();
    runtime_env.insert("BUN_RUNTIME_TRANSPILER_CACHE_PATH".to_string(), "0".to_string());
    let mut service_env = BTreeMap::new();
    service_env.insert("LOG_LEVEL".to_string(), "info".to_string());
    SpecInput {
        rootfs: "/var/lib/ignite/rootfs/sha256-0123456789abcdef".into(),
        writable_root: false,
        network: None,
        app_dir: "/srv/services/data-processor".into(),
        node_modules: Some("/var/lib/ignite/deps/trees/abcdef/node_modules".into()),
        app_node_modules: None,
        workspace: None,
        out_dir: None,
        input_dir: Some("/run/ignite/runs/ig-18c2f0a1b2c3d4e5-1f2e-0/input".into()),
        init_binary: "/usr/local/bin/ignite-init".into(),
        user: RunUser {
            uid: 200_123,
            gid: 200_123,
            passwd: "/run/ignite/uids/200123.passwd".into(),
            group: "/run/ignite/uids/200123.group".into(),
        },
        argv: vec!["/usr/local/bin/bun".into(), "run".into(), "/app/index.ts".into()],
        env: spec::compose_env(&runtime_env, &service_env, r#"{"data":[1,2,3],"operation":"sum"}"#)
            .expect("environment"),
        limits: Limits::new(128, 1.0),
        hostname: "data-processor".into(),
        cgroups_path: "/ignite/ig-18c2f0a1b2c3d4e5-1f2e-0".into(),
        kill_after_ms: 7_500,
        spawn: SpawnRule::NoSpawn,
        seccomp,
        wait_job: false,
        userns: None,
    }
}

fn bench(c: &mut Criterion) {
    let input = input();
    c.bench_function("spec::build (typical service)", |b| b.iter(|| spec::build(black_box(&input))));
    c.bench_function("spec::build + validate", |b| {
        b.iter(|| {
            let s = spec::build(black_box(&input)).expect("spec");
            spec::validate(&s).expect("valid");
            s
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
