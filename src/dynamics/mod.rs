//! The three tracks trained in lockstep: the burn network ([`network`]), its linearization in
//! function space ([`linearized`]) and closed-form kernel regression ([`kernel`]).
//!
//! All share the loss `L = 1/(2·|B|·K) Σ_{a∈B,k} (f − y)²` on a minibatch `B` and the same
//! minibatch order ([`MinibatchSchedule`]).

pub mod gp;
pub mod iterative;
pub mod kernel;
pub mod linearized;
pub mod network;
pub(crate) mod parameter_twin;
pub(crate) mod predictor;
pub mod sensitivity;

use rand::{rngs::StdRng, seq::SliceRandom, SeedableRng};

/// Where the linearized twin is computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TwinSpace {
    /// Function space, `f0 + Θ0(·, X)·β` (needs Θ0 between all points and the training points).
    Function,
    /// Parameter space, `f0 + J(·; θ0)·δ` by a tangent pass (memory O(P), any N).
    Parameter,
    /// Function space while its Θ0 fits [`FUNCTION_TWIN_MAX_BYTES`], parameter space beyond.
    #[default]
    Auto,
}

/// Largest Θ0 (all × training target rows, f64) the `auto` twin keeps in function space. A
/// fixed size, not the machine's memory, so that a config means the same computation everywhere.
pub const FUNCTION_TWIN_MAX_BYTES: u64 = 1 << 30;

impl TwinSpace {
    /// Whether this is `auto`.
    pub fn is_auto(&self) -> bool {
        *self == TwinSpace::Auto
    }

    /// Function or parameter space for a twin whose Θ0 is `rows_all × rows_train`.
    pub fn resolve(self, rows_all: usize, rows_train: usize) -> TwinSpace {
        match self {
            TwinSpace::Auto => {
                let bytes = (rows_all as u64)
                    .saturating_mul(rows_train as u64)
                    .saturating_mul(8);
                if bytes <= FUNCTION_TWIN_MAX_BYTES {
                    TwinSpace::Function
                } else {
                    TwinSpace::Parameter
                }
            }
            other => other,
        }
    }
}

/// The minibatch order shared by the network and its linearization: epochs of a seeded random
/// permutation cut into batches of `batch_size` (a final partial batch is dropped); full batch
/// is the identity order.
#[derive(Debug, Clone)]
pub struct MinibatchSchedule {
    n: usize,
    batch_size: usize,
    order: Vec<usize>,
    pos: usize,
    rng: StdRng,
}

impl MinibatchSchedule {
    /// A schedule over `n` points.
    pub fn new(n: usize, batch_size: usize, seed: u64) -> Self {
        let mut s = MinibatchSchedule {
            n,
            batch_size: batch_size.min(n).max(1),
            order: (0..n).collect(),
            pos: 0,
            rng: StdRng::seed_from_u64(seed ^ 0xBA7C_4000),
        };
        s.reshuffle();
        s
    }

    fn reshuffle(&mut self) {
        self.pos = 0;
        if self.batch_size < self.n {
            self.order.shuffle(&mut self.rng);
        }
    }

    /// Indices of the next batch.
    pub fn next_batch(&mut self) -> Vec<usize> {
        if self.pos + self.batch_size > self.n {
            self.reshuffle();
        }
        let b = self.order[self.pos..self.pos + self.batch_size].to_vec();
        self.pos += self.batch_size;
        b
    }
}

/// Training loss of the network and its linearized twin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Loss {
    /// `1/(2·|B|·K) Σ (f − y)²` (the closed-form kernel solution's loss).
    Mse,
    /// `−1/|B| Σ_a Σ_k y_ak log softmax(f_a)_k` (targets one-hot or probabilities).
    CrossEntropy,
}

impl Loss {
    /// Config name.
    pub fn name(self) -> &'static str {
        match self {
            Loss::Mse => "mse",
            Loss::CrossEntropy => "cross_entropy",
        }
    }

    /// `∂L/∂f` on a batch, row-major `|B| × K` like `f` and `y`.
    pub fn output_gradient(self, f: &[f64], y: &[f64], k: usize) -> Vec<f64> {
        match self {
            Loss::Mse => {
                let n = f.len() as f64;
                f.iter().zip(y).map(|(a, b)| (a - b) / n).collect()
            }
            Loss::CrossEntropy => {
                let b = (f.len() / k.max(1)) as f64;
                f.chunks(k)
                    .zip(y.chunks(k))
                    .flat_map(|(fa, ya)| {
                        let p = softmax(fa);
                        p.into_iter()
                            .zip(ya)
                            .map(move |(pk, yk)| (pk - yk) / b)
                            .collect::<Vec<_>>()
                    })
                    .collect()
            }
        }
    }
}

/// The softmax and its cross-entropy are measures of outputs, shared with the data (text
/// sampling) and the metrics: they live in [`crate::metrics`].
pub use crate::metrics::{cross_entropy, cross_entropy_per_row, softmax};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minibatch_schedule_covers_each_epoch_once_and_full_batch_is_identity() {
        let mut s = MinibatchSchedule::new(10, 3, 7);
        // Three batches of 3 per epoch (the tenth point is dropped), all distinct.
        let mut seen: Vec<usize> = (0..3).flat_map(|_| s.next_batch()).collect();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), 9);
        let mut again = MinibatchSchedule::new(10, 3, 7);
        assert_eq!(
            again.next_batch(),
            MinibatchSchedule::new(10, 3, 7).next_batch()
        );
        assert_ne!(
            again.next_batch(),
            MinibatchSchedule::new(10, 3, 8).next_batch()
        );
        let mut full = MinibatchSchedule::new(5, 5, 1);
        for _ in 0..3 {
            assert_eq!(full.next_batch(), vec![0, 1, 2, 3, 4]);
        }
    }

    #[test]
    fn softmax_and_cross_entropy_of_hand_made_rows() {
        let p = softmax(&[0.0, (2.0f64).ln()]);
        assert!((p[0] - 1.0 / 3.0).abs() < 1e-15 && (p[1] - 2.0 / 3.0).abs() < 1e-15);
        let ce = cross_entropy(&[0.0, (2.0f64).ln()], &[0.0, 1.0], 2).unwrap();
        assert!((ce - (1.5f64).ln()).abs() < 1e-15);
        assert_eq!(cross_entropy(&[], &[], 2), None);
    }
}
