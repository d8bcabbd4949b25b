//! Shared by the benches: data, peers, and the summary table.
#![allow(dead_code)] // each bench uses its own subset

pub mod data;
pub mod peers;
pub mod summary;
