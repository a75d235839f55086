//! Documents (issue 12, begun): for now the clinic's key and sealing a blob for it.

pub mod vault;
