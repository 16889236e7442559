//! `paging-harness`: the bodies of the cargo-fuzz targets in `fuzz/`, as library functions.
//!
//! Each target turns arbitrary bytes into a bounded piece of work, runs it against the
//! library and a model of what the library must do, and panics (with `assert!`) on any
//! disagreement, leaked frame or broken promise; otherwise it returns. Every input runs in
//! milliseconds and cannot hang: sequences, sizes and RAM are bounded.
//!
//! | target | what it drives |
//! |---|---|
//! | [`engine_ops`] | the engine: map, unmap, protect, single pages and ranges, in every format, with the allocator failing at chosen points, against a model |
//! | [`space_ops`] | address spaces: reserve, commit, decommit, release, protect, query, views, sections and accesses with faults, over several spaces, against a model |
//! | [`decode_entries`] | every format's codec on arbitrary raw entries |
//! | [`mmu_walk`] | the simulator's MMU and machine, and the engine's lookup, on arbitrary RAM read as page tables |
//! | [`pager_ops`] | the pager: commit, accesses through faults, protect, decommit, release, trims, the writer, aging and store failures, over several spaces on the simulated machine, against a model of every page's bytes and the frame database |
//!
//! `fuzz/fuzz_targets/<name>.rs` calls these under libFuzzer on nightly;
//! `tests/replay.rs` replays the corpus and every crash kept in `fuzz/` on stable.
//!
//! [`fixtures`] holds what the test files of every crate build their cases from, and
//! [`show`] how generated operations read in a failure message.

mod decode;
mod engine;
pub mod fixtures;
pub mod journal;
mod mmu;
mod pager;
pub mod show;
mod space;

pub use decode::decode_entries;
pub use engine::engine_ops;
pub use mmu::mmu_walk;
pub use pager::pager_ops;
pub use space::space_ops;

/// A target body: bytes in, panic on a property violation.
pub type Body = fn(&[u8]);

/// Every target, by the name of its `fuzz/fuzz_targets/<name>.rs` and corpus directory.
pub const TARGETS: [(&str, Body); 5] = [
    ("engine_ops", engine_ops),
    ("space_ops", space_ops),
    ("decode_entries", decode_entries),
    ("mmu_walk", mmu_walk),
    ("pager_ops", pager_ops),
];

/// Picks one of `choices` with probability proportional to its weight (the first one when
/// the data has run out).
fn weighted<T: Copy>(u: &mut arbitrary::Unstructured<'_>, choices: &[(u32, T)]) -> T {
    let total: u32 = choices.iter().map(|&(w, _)| w).sum();
    let mut roll = u.int_in_range(0..=total - 1).unwrap_or(0);
    for &(w, value) in choices {
        if roll < w {
            return value;
        }
        roll -= w;
    }
    choices[0].1
}
