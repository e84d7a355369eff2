//! # ntk-dynamics
//!
//! Trains a finite-width MLP, its linearisation around the initial parameters and the
//! closed-form kernel-regression solution side by side, and measures how far they drift apart.
//!
//! Layout (compute → records → reporters):
//! - [`config`]: the TOML schema (`*Spec`) and its validation into a checked [`config::Experiment`];
//! - [`data`]: synthetic and CSV data sets;
//! - [`backend`]: the one place that builds a burn [`burn::tensor::Device`];
//! - [`model`]: the burn MLP (parametrizations, activations, seeded initialisation);
//! - [`ntk`]: empirical (structured and naive) and analytic (infinite-width) kernels;
//! - [`dynamics`]: the three tracks (network, linearized twin, kernel predictor);
//! - [`metrics`]: losses, distances and kernel-drift figures;
//! - [`record`]: plain data records of a run, consumed by [`report`];
//! - [`report`]: CSV/JSON/NPY files, PNG plots and the reproducibility report;
//! - [`run`]: the wiring of one experiment.
//!
//! Loss convention everywhere (as neural-tangents): `L = 1/(2·N·K) Σ (f − y)²`, half the mean over
//! all entries; continuous time `t = learning_rate × steps`.

pub mod backend;
pub mod config;
pub mod data;
pub mod dynamics;
pub mod error;
pub mod linalg;
pub mod metrics;
pub mod model;
pub mod ntk;
pub mod pipeline;
pub mod record;
pub mod report;
pub mod run;
pub mod sweep;

pub use error::{Error, Result};
