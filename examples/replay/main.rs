//! `replay`: valgrind lackey traces replayed through the pager on the simulated machine,
//! page-replacement policies compared with fault curves.

#[allow(dead_code)]
mod plot;
#[allow(dead_code)]
mod trace;

fn main() {}
