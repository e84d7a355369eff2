//! The kernels of an iterative run (`kernel.solver` resolved to iterative): the analytic NNGP and
//! NTK and the empirical Θ0 computed block by block ([`crate::ntk::blocked`]) into stores in
//! memory or on disk, reusing blocks a store already holds for the same kernel (a resumed run,
//! or blocks computed by `--kernel-shard` tasks).

use std::path::PathBuf;

use sha2::{Digest, Sha256};

use crate::config::{Experiment, IterativeSettings, KernelSolution, StorePlace};
use crate::data::Dataset;
use crate::model::Network;
use crate::ntk::blocked::{AnalyticJob, JobStores, KernelJob};
use crate::store::{symmetric_entries, KernelStore, StoreManifest, StoreShape};
use crate::Result;

use super::RunOptions;

/// Fraction of the available memory the stores may take before `store = "auto"` puts them on
/// disk.
pub const MEMORY_STORE_FRACTION: f64 = 0.4;

/// Fraction of the available memory the empirical kernel's column-block signal cache may take.
pub const SIGNAL_CACHE_FRACTION: f64 = 0.35;

/// What a run's kernel stores hold: which kernels, their identity, sizes and place.
#[derive(Debug, Clone)]
pub struct StorePlan {
    /// Analytic NNGP and NTK (computed together).
    pub analytic: bool,
    /// Empirical Θ0.
    pub empirical: bool,
    /// Training points, held-out points.
    pub n: usize,
    /// Held-out points.
    pub m: usize,
    /// Rows per block.
    pub block_rows: usize,
    /// Identity of config and data (a store is reused only for the same identity).
    pub identity: String,
    /// Directory on disk (None: in memory).
    pub dir: Option<PathBuf>,
    /// The solver settings.
    pub settings: IterativeSettings,
}

impl StorePlan {
    /// The plan of `exp` on the kernel view `data`.
    pub fn of(exp: &Experiment, data: &Dataset) -> Option<StorePlan> {
        let settings = exp.kernel.plan.clone()?;
        let analytic = exp
            .kernel
            .solutions
            .iter()
            .any(|s| matches!(s, KernelSolution::Analytic | KernelSolution::Nngp));
        let empirical = exp.kernel.solutions.contains(&KernelSolution::Empirical);
        let (n, m) = (data.n_train(), data.n_heldout());
        let block_rows = exp
            .kernel
            .block_size
            .unwrap_or(crate::config::defaults::STORE_BLOCK_ROWS);
        let identity = identity(exp, data);
        let bytes = Self::bytes_of(analytic, empirical, n, m, block_rows, &settings);
        let in_memory = match settings.store {
            StorePlace::Memory => true,
            StorePlace::Disk => false,
            StorePlace::Auto => {
                (bytes as f64)
                    <= MEMORY_STORE_FRACTION * crate::system::available_memory_bytes() as f64
            }
        };
        let dir = (!in_memory).then(|| {
            settings
                .store_dir
                .clone()
                .unwrap_or_else(|| exp.outputs.dir.join(".kernel-store").join(&exp.name))
                .join(&identity[..16])
        });
        Some(StorePlan {
            analytic,
            empirical,
            n,
            m,
            block_rows,
            identity,
            dir,
            settings,
        })
    }

    /// Bytes of every store.
    pub fn bytes_of(
        analytic: bool,
        empirical: bool,
        n: usize,
        m: usize,
        block_rows: usize,
        s: &IterativeSettings,
    ) -> u64 {
        let per = (symmetric_entries(n as u64, block_rows as u64) + (n as u64) * (m as u64))
            * s.storage.bytes();
        per * (2 * u64::from(analytic) + u64::from(empirical))
    }

    /// Bytes of every store of this plan.
    pub fn bytes(&self) -> u64 {
        Self::bytes_of(
            self.analytic,
            self.empirical,
            self.n,
            self.m,
            self.block_rows,
            &self.settings,
        )
    }

    fn store(&self, shape: StoreShape, name: &str) -> Result<KernelStore> {
        match &self.dir {
            None => Ok(KernelStore::in_memory(
                shape,
                self.block_rows,
                self.settings.storage,
            )),
            Some(dir) => KernelStore::on_disk(
                &dir.join(name),
                StoreManifest {
                    shape,
                    block_rows: self.block_rows,
                    precision: self.settings.storage,
                    identity: self.identity.clone(),
                },
            ),
        }
    }

    fn pair(&self, name: &str) -> Result<(KernelStore, Option<KernelStore>)> {
        let train = self.store(StoreShape::Symmetric { n: self.n }, name)?;
        let held = if self.m > 0 {
            Some(self.store(
                StoreShape::Rect {
                    nrows: self.m,
                    ncols: self.n,
                },
                &format!("{name}-heldout"),
            )?)
        } else {
            None
        };
        Ok((train, held))
    }

    /// The job that fills this plan's stores.
    pub fn job<'a>(
        &self,
        exp: &Experiment,
        data: &'a Dataset,
        x_heldout: &'a [f64],
        net: &'a Network,
    ) -> Result<KernelJob<'a>> {
        Ok(KernelJob {
            x_train: &data.x_train,
            x_heldout,
            analytic: self.analytic.then(|| AnalyticJob {
                arch: net.config.clone(),
                quadrature_order: exp.kernel.quadrature_order,
            }),
            empirical: self.empirical.then_some(net),
            nngp: if self.analytic {
                Some(self.pair("analytic-nngp")?)
            } else {
                None
            },
            ntk: if self.analytic {
                Some(self.pair("analytic-ntk")?)
            } else {
                None
            },
            emp: if self.empirical {
                Some(self.pair("empirical-ntk")?)
            } else {
                None
            },
            signal_budget_bytes: (SIGNAL_CACHE_FRACTION
                * crate::system::available_memory_bytes() as f64)
                as u64,
        })
    }
}

/// SHA-256 (hex) of what the kernels depend on — the seed (initialisation, subsets), the data
/// settings and bits, the model, and the kernel settings that change an entry — so that two runs
/// share stores only when their kernels are the same.
pub fn identity(exp: &Experiment, data: &Dataset) -> String {
    #[derive(serde::Serialize)]
    struct Id<'a> {
        seed: u64,
        data: &'a crate::data::DataConfig,
        model: &'a crate::model::ModelSettings,
        solutions: &'a [KernelSolution],
        form: crate::ntk::KernelForm,
        quadrature_order: usize,
        train_subset: Option<usize>,
        block_size: Option<usize>,
        storage: Option<crate::store::StoragePrecision>,
    }
    let id = Id {
        seed: exp.seed,
        data: &exp.data,
        model: &exp.model,
        solutions: &exp.kernel.solutions,
        form: exp.kernel.form,
        quadrature_order: exp.kernel.quadrature_order,
        train_subset: exp.kernel.train_subset,
        block_size: exp.kernel.block_size,
        storage: exp.kernel.plan.as_ref().map(|p| p.storage),
    };
    let mut h = Sha256::new();
    h.update(serde_json::to_string(&id).unwrap_or_default().as_bytes());
    for v in data.x_train.iter().chain(&data.x_val).chain(&data.x_test) {
        h.update(v.to_bits().to_le_bytes());
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Computes (or completes) the stores of `plan`: units `u ≡ shard.0 (mod shard.1)` only, when a
/// shard is given; all of them otherwise, after which the stores are returned.
pub fn compute(
    plan: &StorePlan,
    exp: &Experiment,
    data: &Dataset,
    net: &Network,
    opts: &RunOptions<'_>,
    shard: Option<(usize, usize)>,
) -> Result<Option<JobStores>> {
    let x_heldout = [data.x_val.as_slice(), data.x_test.as_slice()].concat();
    let mut job = plan.job(exp, data, &x_heldout, net)?;
    let units = job.units();
    let todo = units.iter().filter(|&&u| !job.done(u)).count();
    opts.progress.start("kernel blocks", todo as u64);
    let stop = || opts.interrupted();
    job.compute(shard.unwrap_or((0, 1)), &stop, &|| opts.progress.advance(1))?;
    opts.progress.finish();
    if shard.is_some() {
        return Ok(None);
    }
    Ok(Some(job.finish()?))
}

/// Removes the store directory of `plan` unless the settings keep it.
pub fn clean_up(plan: &StorePlan) {
    if let (Some(dir), false) = (&plan.dir, plan.settings.keep_store) {
        let _ = std::fs::remove_dir_all(dir);
        // The per-experiment parent is removed when nothing else is left in it.
        if let Some(parent) = dir.parent() {
            let _ = std::fs::remove_dir(parent);
        }
    }
}
