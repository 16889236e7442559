//! Replays, on stable, every input kept for the fuzz targets: the corpus in
//! `fuzz/corpus/<target>/` and any crash in `fuzz/artifacts/<target>/`, then a few hundred
//! inputs made up here. A crash that fuzzing found stays in the corpus as a regression
//! input (named `crash-*` until the bug it shows is fixed).

use std::fs;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use paging_harness::{Body, TARGETS};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

/// The files of `dir`, sorted; none if it does not exist.
fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else { return Vec::new() };
    let mut files: Vec<PathBuf> =
        entries.filter_map(Result::ok).map(|e| e.path()).filter(|p| p.is_file()).collect();
    files.sort();
    files
}

/// Runs `body` on `input`; the panic message if it panics.
fn replay(body: Body, input: &[u8]) -> Result<(), String> {
    panic::catch_unwind(AssertUnwindSafe(|| body(input))).map_err(|payload| {
        payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_else(|| "a panic".to_owned())
    })
}

/// Replays every kept input of `target`; fails naming each one that panics.
fn replay_kept(target: &str) {
    let body = TARGETS.iter().find(|(name, _)| *name == target).expect("a target").1;
    let dir = fuzz_dir();
    let mut inputs = files(&dir.join("corpus").join(target));
    assert!(!inputs.is_empty(), "no corpus for {target} in {}", dir.display());
    inputs.extend(files(&dir.join("artifacts").join(target)));
    let failures: Vec<String> = inputs
        .iter()
        .filter_map(|path| {
            let input = fs::read(path).unwrap();
            replay(body, &input).err().map(|e| format!("{}:\n{e}", path.display()))
        })
        .collect();
    assert!(failures.is_empty(), "{} of {} inputs fail:\n{}", failures.len(), inputs.len(), {
        failures.join("\n\n")
    });
}

/// SplitMix64: deterministic bytes, the same on every machine.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len.div_ceil(8)).flat_map(|_| self.next().to_le_bytes()).take(len).collect()
    }
}

/// The seed inputs of `target`: `count` pseudo-random byte strings of 16 to `max` bytes.
fn seeds(target: &str, count: usize, max: usize) -> Vec<Vec<u8>> {
    let salt = target.bytes().fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)));
    let mut rng = SplitMix(salt);
    (0..count)
        .map(|_| {
            let len = 16 + (rng.next() as usize) % (max - 15);
            rng.bytes(len)
        })
        .collect()
}

/// Replays made-up inputs of every length through `target`.
fn replay_made_up(target: &str, count: usize) {
    let body = TARGETS.iter().find(|(name, _)| *name == target).expect("a target").1;
    for (i, input) in seeds(&format!("{target}/made-up"), count, 1024).iter().enumerate() {
        if let Err(e) = replay(body, input) {
            panic!(
                "made-up input {i} of {target} ({} bytes) fails: {e}\n{input:02x?}",
                input.len()
            );
        }
    }
    // Short inputs, and none at all.
    for len in 0..16 {
        replay(body, &vec![0xA5; len]).unwrap();
    }
}

#[test]
fn engine_ops_corpus() {
    replay_kept("engine_ops");
    replay_made_up("engine_ops", 200);
}

#[test]
fn space_ops_corpus() {
    replay_kept("space_ops");
    replay_made_up("space_ops", 100);
}

#[test]
fn decode_entries_corpus() {
    replay_kept("decode_entries");
    replay_made_up("decode_entries", 200);
}

#[test]
fn mmu_walk_corpus() {
    replay_kept("mmu_walk");
    replay_made_up("mmu_walk", 200);
}

#[test]
fn pager_ops_corpus() {
    replay_kept("pager_ops");
    replay_made_up("pager_ops", 100);
}

/// Every target has a `fuzz/fuzz_targets/<name>.rs` calling its body, and a `[[bin]]`.
#[test]
fn every_target_has_a_fuzz_target() {
    let manifest = fs::read_to_string(fuzz_dir().join("Cargo.toml")).unwrap();
    for (name, _) in TARGETS {
        let source = fs::read_to_string(fuzz_dir().join(format!("fuzz_targets/{name}.rs")))
            .unwrap_or_else(|e| panic!("fuzz_targets/{name}.rs: {e}"));
        assert!(source.contains(&format!("paging_harness::{name}(data)")), "{name}.rs");
        assert!(manifest.contains(&format!("name = \"{name}\"")), "no [[bin]] for {name}");
    }
}

/// Writes the seed corpus (a few small files per target) into `fuzz/corpus/`. The files
/// are checked in; run this only to make them again:
/// `cargo test -p paging-harness --test replay -- --ignored write_seed_corpus`.
#[test]
#[ignore = "writes the checked-in seed corpus"]
fn write_seed_corpus() {
    for (name, _) in TARGETS {
        let dir = fuzz_dir().join("corpus").join(name);
        fs::create_dir_all(&dir).unwrap();
        for (i, input) in seeds(name, 6, 512).iter().enumerate() {
            fs::write(dir.join(format!("seed-{i}")), input).unwrap();
        }
    }
}
