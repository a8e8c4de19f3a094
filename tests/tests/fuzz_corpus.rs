//! Every input kept in `fuzz/corpus/<target>/` (seeds, and every crash the
//! fuzzers found once) is fed to the same entry function as the fuzz target,
//! so what was fixed stays fixed. `cargo xtask fuzz` grows these corpora.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../fuzz/src/entries.rs"]
mod entries;

#[test]
fn every_fuzz_corpus_input_is_handled_without_a_panic() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus");
    let mut total = 0;
    for (name, entry) in entries::TARGETS {
        let dir = root.join(name);
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_file())
            .collect();
        files.sort();
        assert!(!files.is_empty(), "no corpus for {name}");
        for f in &files {
            let data = std::fs::read(f).unwrap();
            let outcome = std::panic::catch_unwind(|| entry(&data));
            assert!(outcome.is_ok(), "{name}: {} panics", f.display());
        }
        total += files.len();
    }
    assert!(total >= 5 * 8, "only {total} corpus inputs");
}
