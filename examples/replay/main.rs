//! `replay`: valgrind lackey traces replayed through the pager on the simulated machine,
//! page-replacement policies compared with fault curves.

#[allow(dead_code)]
mod plot;
#[allow(dead_code)]
mod policy;
#[cfg(test)]
mod reference;
#[allow(dead_code)]
mod sim;
#[allow(dead_code)]
mod stack;
#[cfg(test)]
mod tests;
#[allow(dead_code)]
mod trace;

fn main() {}
