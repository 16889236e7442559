//! Random operation sequences over several address spaces and sections, with accesses and
//! faults on the simulated machine, against a plain model of the semantics: after every
//! step the books, the page tables, the contents and the frames in use agree with the
//! model, and at the end no frame is left.
//!
//! The model and the operations live in `paging_harness::space_ops`, the body of the
//! `space_ops` fuzz target: one model, driven here by proptest and there by the fuzzer.

use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn spaces_agree_with_the_model_and_leak_nothing(input in prop::collection::vec(any::<u8>(), 256..4096)) {
        paging_harness::space_ops(&input);
    }
}
