//! # ntk-dynamics
//!
//! Trains a finite-width network (an MLP, a conv net, or a residual stack of either), its linearisation around the initial
//! parameters and the closed-form kernel-regression solutions side by side, and measures how far
//! they drift apart.
//!
//! Layout (compute → records → reporters), from the lowest module to the highest: each uses
//! only modules listed before it (`docs/architecture.md` has the file-level map):
//! - [`error`], [`system`] (available memory and disk, peak RSS), [`backend`] (the one place
//!   that builds a burn device), [`linalg`] (f64 faer helpers), [`store`] (kernels in row
//!   blocks, in memory or on disk), [`metrics`] (losses, distances, fits, the phase
//!   classifier);
//! - [`model`]: the checked model description and the burn network built from it;
//! - [`ntk`]: empirical (structured and naive) and analytic (infinite-width) kernels;
//! - [`krylov`]: matrix-free solvers (Lanczos, preconditioned CG, Nyström);
//! - [`dynamics`]: the three tracks' update rules (network, linearized twin, kernel predictor);
//! - [`data`]: the checked `[data]` table and the data sets (synthetic, CSV, NumPy, IDX, text);
//! - [`config`]: the TOML schema, its defaults and its validation into a checked
//!   [`config::Experiment`]; sweep expansion;
//! - [`record`]: plain records of a run and the registry of every logged figure;
//! - [`run`]: one experiment → a [`record::RunRecord`] (no files);
//! - [`report`]: every file a run or sweep writes (CSV/JSON/NPY, charts, reports);
//! - [`pipeline`]: a config into a run directory, a sweep into a sweep directory.
//!
//! Loss convention everywhere (as neural-tangents): `L = 1/(2·N·K) Σ (f − y)²`, half the mean over
//! all entries; continuous time `t = learning_rate × steps`.
//!
//! ## Use as a library
//!
//! The command line is a thin layer over three calls: check a config into an
//! [`config::Experiment`], load its data, and run it into a [`record::RunRecord`] (no files are
//! written; [`pipeline::run_into`] also writes the run directory). Every logged figure is read
//! from the record through the column registry:
//!
//! ```
//! use ntk_dynamics::record::columns::{Column, Split};
//! use ntk_dynamics::record::Track;
//! use ntk_dynamics::{config, data, run};
//!
//! let exp = config::parse_str(
//!     r#"
//!     [experiment]
//!     name = "doc"
//!     [data]
//!     kind = "sine"
//!     n_train = 16
//!     n_test = 32
//!     [model]
//!     width = 256
//!     b_std = 1.0
//!     [training]
//!     lr_scale = 0.5
//!     steps = 50
//!     "#,
//!     None,
//! )?;
//! let ds = data::load(&exp.data, exp.seed)?;
//! let record = run::execute(&exp, &ds, &run::RunOptions::default())?;
//! let loss = |t| Column::Loss(t, Split::Train).final_value(&record).unwrap();
//! // Below the critical learning rate the linearized twin's loss falls (η/η_c = 0.5).
//! let first = Column::Loss(Track::Linearized, Split::Train).series(&record)[0].1;
//! assert!(loss(Track::Linearized) < first);
//! println!("final train loss: network {:.2e}, twin {:.2e}", loss(Track::Network), loss(Track::Linearized));
//! # Ok::<(), ntk_dynamics::Error>(())
//! ```
//!
//! The kernels are plain functions on arrays, as neural-tangents' `kernel_fn` and
//! `empirical_ntk_fn`: [`ntk::analytic_kernels_until`] and [`ntk::empirical::empirical_ntk`]
//! (see `examples/kernels_on_arrays.rs`).

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
