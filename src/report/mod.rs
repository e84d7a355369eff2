//! Reporters: they consume a [`crate::record::RunRecord`] and write files (all file IO of the
//! library lives here).

pub mod files;
pub mod npy;
pub mod plots;
pub mod repro;
