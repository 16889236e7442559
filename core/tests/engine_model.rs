//! Random sequences of map, unmap, protect and translate, for single pages of every size
//! and for ranges, in every format, against a plain model, with the allocator failing at
//! input-chosen points: after every step the leaves are exactly the model's pages,
//! translate agrees, the frames in use are the reachable tables, and a refused step left
//! every byte of table memory as it was.
//!
//! The model and the operations live in `paging_harness::engine_ops`, the body of the
//! `engine_ops` fuzz target: one model, driven here by proptest and there by the fuzzer.

use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn the_engine_agrees_with_the_model(input in prop::collection::vec(any::<u8>(), 64..2048)) {
        paging_harness::engine_ops(&input);
    }
}
