//! The three tracks trained in lockstep: the burn network ([`network`]), its linearization in
//! function space ([`linearized`]) and closed-form kernel regression ([`kernel`]).
//!
//! All share the loss `L = 1/(2·|B|·K) Σ_{a∈B,k} (f − y)²` on a minibatch `B` and the same
//! minibatch order ([`MinibatchSchedule`]).

pub mod kernel;
pub mod linearized;
pub mod network;

use rand::{rngs::StdRng, seq::SliceRandom, SeedableRng};

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

    /// Whether every batch is the whole training set.
    pub fn is_full_batch(&self) -> bool {
        self.batch_size == self.n
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

/// `∂L/∂f` of the half-MSE on a batch: `(f − y)/(|B|·K)`, row-major `|B| × K`.
pub fn mse_output_gradient(f: &[f64], y: &[f64]) -> Vec<f64> {
    let n = f.len() as f64;
    f.iter().zip(y).map(|(a, b)| (a - b) / n).collect()
}
