//! `replay`: valgrind lackey traces replayed through the pager on the simulated machine,
//! page-replacement policies compared with fault curves.

mod plot;
mod trace;

fn main() {}
