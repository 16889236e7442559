//! `paging-sim`: a simulated computer on which a kernel's memory code runs on a host.
//!
//! The machine (RAM, an MMU that walks the tables in RAM as hardware does, a caching TLB,
//! processes) arrives with its own issue; this crate holds its place in the workspace.
