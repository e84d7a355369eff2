//! # ntk-dynamics
//!
//! Trains a finite-width MLP, its linearisation around the initial parameters and the
//! closed-form kernel-regression solution side by side, and measures how far they drift apart.
//!
//! Layout (compute → records → reporters), each layer using only those above it in this list:
//! - [`error`], [`backend`] (the one place that builds a burn device), [`linalg`] (f64 faer
//!   helpers), [`metrics`] (losses, distances, fits, the phase classifier);
//! - [`model`]: the checked model description and the burn MLP built from it;
//! - [`ntk`]: empirical (structured and naive) and analytic (infinite-width) kernels;
//! - [`dynamics`]: the three tracks' update rules (network, linearized twin, kernel predictor);
//! - [`data`]: the checked `[data]` table and the data sets (synthetic, CSV, text);
//! - [`record`]: plain records of a run and the registry of every logged figure;
//! - [`config`]: the TOML schema, its defaults and its validation into a checked
//!   [`config::Experiment`]; sweep expansion;
//! - [`run`]: one experiment → a [`record::RunRecord`] (no files);
//! - [`report`]: every file a run or sweep writes (CSV/JSON/NPY, charts, reports);
//! - [`pipeline`]: a config into a run directory, a sweep into a sweep directory.
//!
//! Loss convention everywhere (as neural-tangents): `L = 1/(2·N·K) Σ (f − y)²`, half the mean over
//! all entries; continuous time `t = learning_rate × steps`.

pub mod backend;
pub mod config;
pub mod data;
pub mod dynamics;
pub mod error;
pub mod krylov;
pub mod linalg;
pub mod metrics;
pub mod model;
pub mod ntk;
pub mod pipeline;
pub mod record;
pub mod report;
pub mod run;
pub mod store;
pub mod system;

pub use error::{Error, Result};
