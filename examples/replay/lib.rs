//! The `replay` program's parts, a library so that the benchmarks measure the same code:
//! valgrind lackey traces replayed through the pager on the simulated machine.
//!
//! - [`trace`] reads traces (lackey or address lists; plain, xz or gzip), streaming;
//! - [`sim`] replays a page string through the real pager, one policy and frame count;
//! - [`stack`] gives LRU's and OPT's whole fault curves in one pass (Mattson);
//! - [`policy`] names the policies and adds OPT, told the future by the replayer;
//! - [`reference`](mod@reference) holds plain implementations the replays must equal;
//! - [`report`] and [`plot`] print and draw the results.

pub mod plot;
pub mod policy;
pub mod reference;
pub mod report;
pub mod sim;
pub mod stack;
pub mod trace;

#[cfg(test)]
mod tests;
