//! Bundle cache lookup, the store's part of every run: `BundleStore::present` (read the index
//! record, stat the rootfs) and `BundleStore::status` (preflight), for a runtime whose bundle
//! is in the cache and for one whose bundle is not.
//! The hit cases use the real cache (`IGNITE_CACHE_DIR`, default /var/lib/ignite) and are left
//! out, with a note, when it holds no bun bundle (`ignite runtime pull bun`).
//! Run: `cargo bench --bench bundle_lookup`.

use std::hint::black_box;
use std::path::PathBuf;

use criterion::{Criterion, criterion_group, criterion_main};
use ignite::data::runtime::Registry;
use ignite::store::bundle::BundleStore;

fn bench(c: &mut Criterion) {
    let registry = Registry::load(&[]).expect("built-in runtimes");
    let bun = registry.resolve("bun").expect("bun is built in");
    let cache = std::env::var_os("IGNITE_CACHE_DIR").map_or_else(|| PathBuf::from("/var/lib/ignite"), PathBuf::from);
    let store = BundleStore::new(cache.clone());
    if store.present(&bun).is_some() {
        c.bench_function("BundleStore::present (hit)", |b| b.iter(|| store.present(black_box(&bun))));
        c.bench_function("BundleStore::status (hit)", |b| b.iter(|| store.status(black_box(&bun))));
    } else {
        eprintln!("note: no {} bundle in {}: hit cases left out", bun.key(), cache.display());
    }
    let empty = tempfile::tempdir().expect("tempdir");
    let missing = BundleStore::new(empty.path().to_path_buf());
    c.bench_function("BundleStore::present (miss)", |b| b.iter(|| missing.present(black_box(&bun))));
    c.bench_function("Registry::resolve(\"bun\")", |b| b.iter(|| registry.resolve(black_box("bun"))));
}

criterion_group!(benches, bench);
criterion_main!(benches);
