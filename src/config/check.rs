//! Validation, once, of each `[section]` of the schema into its checked type (the linfa
//! `Params → ValidParams` idea). Errors name the dotted key, the value and what is allowed;
//! the file and line are added by [`super::parse_str`].

use std::path::PathBuf;

use super::ImageFormat;
use crate::data::{
    CsvSource, DataConfig, DataSource, IdxSource, OneHot, PixelScaling, SineSource, TeacherSource,
    TextSource, DEFAULT_N_TEST, DEFAULT_N_TRAIN,
};
use crate::dynamics::kernel::DiagReg;
use crate::dynamics::Loss;
use crate::model::{Architecture, ConvSettings, ImageShape, ModelSettings, Parametrization};
use crate::{Error, Result};

use super::defaults as def;
use super::schema::*;
use super::{
    EnsembleConfig, KernelConfig, LearningRate, LoggingConfig, OutputsConfig, Predictions,
    TrainingConfig,
};

pub(super) fn positive(key: &str, v: f64) -> Result<f64> {
    if v.is_finite() && v > 0.0 {
        Ok(v)
    } else {
        Err(Error::value(key, v, "a finite number > 0"))
    }
}

pub(super) fn non_negative(key: &str, v: f64) -> Result<f64> {
    if v.is_finite() && v >= 0.0 {
        Ok(v)
    } else {
        Err(Error::value(key, v, "a finite number >= 0"))
    }
}

pub(super) fn at_least(key: &str, v: usize, min: usize) -> Result<usize> {
    if v >= min {
        Ok(v)
    } else {
        Err(Error::value(key, v, format!("an integer >= {min}")))
    }
}

fn in_range(key: &str, v: usize, lo: usize, hi: usize) -> Result<usize> {
    if (lo..=hi).contains(&v) {
        Ok(v)
    } else {
        Err(Error::value(key, v, format!("an integer in [{lo}, {hi}]")))
    }
}

pub(super) fn fraction(key: &str, v: f64, allowed: &str, ok: impl Fn(f64) -> bool) -> Result<f64> {
    if v.is_finite() && ok(v) {
        Ok(v)
    } else {
        Err(Error::value(key, v, allowed))
    }
}

pub(super) fn required<T>(key: &str, v: Option<T>, what: &str) -> Result<T> {
    v.ok_or_else(|| Error::value(key, "(missing)", what))
}

impl ExperimentSpec {
    /// Name and seed.
    pub fn check(&self) -> Result<(String, u64)> {
        let n = &self.name;
        let ok_chars = n
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.');
        if n.is_empty() || !ok_chars || n.starts_with('.') || n.len() > def::MAX_NAME_LEN {
            return Err(Error::value(
                "experiment.name",
                format!("{n:?}"),
                format!(
                    "a non-empty name of at most {} letters, digits, '_', '-', '.' (not starting with '.')",
                    def::MAX_NAME_LEN
                ),
            ));
        }
        Ok((n.clone(), self.seed.unwrap_or(def::SEED)))
    }
}

fn sample_counts(n_train: Option<usize>, n_test: Option<usize>) -> Result<(usize, usize)> {
    Ok((
        at_least("data.n_train", n_train.unwrap_or(DEFAULT_N_TRAIN), 1)?,
        n_test.unwrap_or(DEFAULT_N_TEST),
    ))
}

impl DataSpec {
    /// The checked `[data]` table.
    pub fn check(&self) -> Result<DataConfig> {
        let (source, n_train, n_test) = match self {
            DataSpec::Sine(s) => check_sine(s)?,
            DataSpec::Teacher(s) => check_teacher(s)?,
            DataSpec::Text(s) => check_text(s)?,
            DataSpec::Csv(s) => {
                if let Some(n) = s.n_train {
                    at_least("data.n_train", n, 1)?;
                }
                (DataSource::Csv(s.check()?), s.n_train, s.n_test)
            }
            DataSpec::Idx(s) => {
                if let Some(n) = s.n_train {
                    at_least("data.n_train", n, 1)?;
                }
                (DataSource::Idx(s.check()?), s.n_train, s.n_test)
            }
            DataSpec::Npy(s) => {
                if let Some(n) = s.n_train {
                    at_least("data.n_train", n, 1)?;
                }
                (DataSource::Npy(s.check()?), s.n_train, s.n_test)
            }
        };
        Ok(DataConfig {
            source,
            n_train,
            n_test,
        })
    }
}

impl CsvSpec {
    fn check(&self) -> Result<CsvSource> {
        let path: PathBuf = required(
            "data.path",
            self.path.clone(),
            "a CSV file path is required for data.kind = \"csv\"",
        )?;
        let target = required(
            "data.target",
            self.target.clone(),
            "a list of target column names is required for data.kind = \"csv\"",
        )?;
        if target.is_empty() {
            return Err(Error::value(
                "data.target",
                "[]",
                "at least one target column",
            ));
        }
        if let Some(t) = target
            .iter()
            .enumerate()
            .find_map(|(i, t)| target[..i].contains(t).then_some(t))
        {
            return Err(Error::value(
                "data.target",
                format!("{target:?}"),
                format!("distinct target columns ({t:?} appears twice: the outputs would be identical copies)"),
            ));
        }
        let test_fraction = test_fraction(
            self.test_fraction,
            self.test_path
                .is_some()
                .then_some("data.test_path is given"),
        )?;
        let one_hot = if self.one_hot.unwrap_or(false) {
            if target.len() != 1 {
                return Err(Error::value(
                    "data.target",
                    format!("{target:?}"),
                    "exactly one label column with data.one_hot = true",
                ));
            }
            Some(one_hot_settings(self.one_hot_values, self.label_noise)?)
        } else {
            no_one_hot_keys(self.one_hot_values, self.label_noise)?;
            None
        };
        let features = self
            .features
            .as_ref()
            .map(|f| distinct_columns(f, &target))
            .transpose()?;
        Ok(CsvSource {
            path,
            test_path: self.test_path.clone(),
            target,
            features,
            standardize: self.standardize.unwrap_or(true),
            test_fraction,
            shuffle: self.shuffle.unwrap_or(true),
            feature_scale: positive("data.feature_scale", self.feature_scale.unwrap_or(1.0))?,
            noise: non_negative("data.noise", self.noise.unwrap_or(0.0))?,
            validation_fraction: validation_fraction(self.validation_fraction)?,
            one_hot,
            image_shape: self
                .image_shape
                .map(|shape| {
                    if shape.contains(&0) {
                        Err(Error::value(
                            "data.image_shape",
                            format!("{shape:?}"),
                            "[height, width, channels], each at least 1",
                        ))
                    } else {
                        Ok(shape)
                    }
                })
                .transpose()?,
        })
    }
}

/// `data.validation_fraction`: in [0, 1), default 0.
pub(super) fn validation_fraction(v: Option<f64>) -> Result<f64> {
    fraction(
        "data.validation_fraction",
        v.unwrap_or(0.0),
        "a fraction in [0, 1)",
        |f| (0.0..1.0).contains(&f),
    )
}

/// `data.test_fraction` of a table: 0 when the test points come separately (`separate` says
/// how), else in [0, 1) with the CSV default.
pub(super) fn test_fraction(v: Option<f64>, separate: Option<&str>) -> Result<f64> {
    match (separate, v) {
        (Some(how), Some(f)) if f != 0.0 => Err(Error::value(
            "data.test_fraction",
            f,
            format!("0 (or absent) when {how}"),
        )),
        (Some(_), _) => Ok(0.0),
        (None, v) => fraction(
            "data.test_fraction",
            v.unwrap_or(def::CSV_TEST_FRACTION),
            "a number in [0, 1)",
            |f| (0.0..1.0).contains(&f),
        ),
    }
}

/// The one-hot keys (`data.one_hot_values`, `data.label_noise`) checked.
pub(super) fn one_hot_settings(
    values: Option<[f64; 2]>,
    label_noise: Option<f64>,
) -> Result<OneHot> {
    let v = values.unwrap_or(def::ONE_HOT_VALUES);
    if !(v[0].is_finite() && v[1].is_finite() && v[0] != v[1]) {
        return Err(Error::value(
            "data.one_hot_values",
            format!("{v:?}"),
            "[on, off] with finite, different values",
        ));
    }
    let label_noise = fraction(
        "data.label_noise",
        label_noise.unwrap_or(0.0),
        "a fraction in [0, 1]",
        |f| (0.0..=1.0).contains(&f),
    )?;
    Ok(OneHot {
        enabled: true,
        values: v,
        label_noise,
    })
}

/// Refuses the one-hot keys without one-hot targets.
pub(super) fn no_one_hot_keys(values: Option<[f64; 2]>, label_noise: Option<f64>) -> Result<()> {
    for (key, present) in [
        ("data.one_hot_values", values.is_some()),
        ("data.label_noise", label_noise.is_some()),
    ] {
        if present {
            return Err(Error::value(
                key,
                "(set)",
                "only valid with one-hot targets (data.one_hot = true, or integer labels in data.y)",
            ));
        }
    }
    Ok(())
}

/// `data.features`: at least one, distinct, and none of them a target column.
fn distinct_columns(features: &[String], target: &[String]) -> Result<Vec<String>> {
    let bad = |why: &str| Err(Error::value("data.features", format!("{features:?}"), why));
    if features.is_empty() {
        return bad(
            "at least one feature column name (or leave the key out: every non-target column)",
        );
    }
    for (i, f) in features.iter().enumerate() {
        if features[..i].contains(f) {
            return bad(&format!("distinct column names ({f:?} appears twice)"));
        }
        if target.contains(f) {
            return bad(&format!(
                "columns that are not targets ({f:?} is in data.target)"
            ));
        }
    }
    Ok(features.to_vec())
}

impl IdxSpec {
    fn check(&self) -> Result<IdxSource> {
        let path = |key: &str, v: &Option<PathBuf>| {
            required(
                key,
                v.clone(),
                "an IDX file path is required for data.kind = \"idx\" (Fashion-MNIST: apt-get install dataset-fashion-mnist, files in /usr/share/datasets/fashion-mnist/)",
            )
        };
        let train_images = path("data.train_images", &self.train_images)?;
        let v = self.one_hot_values.unwrap_or(def::ONE_HOT_VALUES);
        if !(v[0].is_finite() && v[1].is_finite() && v[0] != v[1]) {
            return Err(Error::value(
                "data.one_hot_values",
                format!("{v:?}"),
                "[on, off] with finite, different values",
            ));
        }
        if let Some(names) = &self.class_names {
            let mut sorted = names.clone();
            sorted.sort();
            sorted.dedup();
            if sorted.len() != names.len() || names.iter().any(|n| n.trim().is_empty()) {
                return Err(Error::value(
                    "data.class_names",
                    format!("{names:?}"),
                    "distinct, non-empty names, one per label 0, 1, …",
                ));
            }
        }
        // The image shape comes from the file, so that a conv net can be checked now.
        let image_shape = crate::data::idx::image_shape(&train_images).map_err(|e| {
            Error::value(
                "data.train_images",
                train_images.display(),
                format!("an IDX image file (MNIST-family: items × rows × columns unsigned bytes, plain or .gz): {e}"),
            )
        })?;
        Ok(IdxSource {
            train_labels: path("data.train_labels", &self.train_labels)?,
            test_images: path("data.test_images", &self.test_images)?,
            test_labels: path("data.test_labels", &self.test_labels)?,
            train_images,
            scaling: self.scaling.unwrap_or(PixelScaling::Unit),
            one_hot_values: v,
            class_names: self.class_names.clone(),
            validation_fraction: validation_fraction(self.validation_fraction)?,
            image_shape,
        })
    }
}

/// Decimal orders of magnitude an activation may grow by through the network before the
/// precision overflows (f32 reaches 3.4e38, f64 1.8e308), with a margin.
/// The first of `keys` that is set, refused with `allowed`.
fn none_set(keys: &[(&str, bool)], allowed: &str) -> Result<()> {
    match keys.iter().find(|(_, present)| *present) {
        Some((key, _)) => Err(Error::value(key, "(set)", allowed)),
        None => Ok(()),
    }
}

fn headroom(p: crate::backend::Precision) -> f64 {
    match p {
        crate::backend::Precision::F32 => 30.0,
        crate::backend::Precision::F64 => 290.0,
    }
}

impl ModelSpec {
    /// The checked `[model]` table; `image` is `data.image_shape` (needed by a conv net).
    pub fn check(&self, image: Option<[usize; 3]>) -> Result<ModelSettings> {
        let m = self.unchecked(image)?;
        // Each layer multiplies activations by about max(σ_w, 1) and adds about σ_b: refuse
        // scales that overflow the network's precision before the first step.
        let growth = (m.depth + 1) as f64 * m.w_std.max(1.0).log10() + m.b_std.max(1.0).log10();
        let shrink = (m.depth + 1) as f64 * m.w_std.min(1.0).log10();
        if shrink < -headroom(m.precision) {
            return Err(Error::value(
                "model.w_std",
                m.w_std,
                format!(
                    "a scale whose shrinking over the {} layers stays within {} (about 1e{shrink:.0} here): activations and the kernel would underflow to 0",
                    m.depth + 1,
                    m.precision.name()
                ),
            ));
        }
        // A leaky ReLU's negative slope scales negative pre-activations by |α| in every hidden
        // layer.
        let alpha = match m.activation {
            crate::model::Activation::LeakyRelu { alpha } => Some(alpha),
            _ => None,
        };
        if let Some(a) = alpha.filter(|a| !a.is_finite()) {
            return Err(Error::value(
                "model.activation.alpha",
                a,
                "a finite negative slope (leaky ReLU's α, typically in [0, 1))",
            ));
        }
        let alpha_growth = m.depth as f64 * alpha.map_or(0.0, |a| a.abs().max(1.0).log10());
        let growth = growth + alpha_growth;
        if growth > headroom(m.precision) {
            // Blame the largest contribution.
            let terms = [
                (
                    "model.w_std",
                    (m.depth + 1) as f64 * m.w_std.max(1.0).log10(),
                    m.w_std,
                ),
                ("model.b_std", m.b_std.max(1.0).log10(), m.b_std),
                ("model.activation.alpha", alpha_growth, alpha.unwrap_or(0.0)),
            ];
            let (key, _, value) = terms
                .iter()
                .copied()
                .max_by(|a, b| a.1.total_cmp(&b.1))
                .unwrap_or(terms[0]);
            let value = if value.abs() >= 1e15 {
                format!("{value:e}")
            } else {
                value.to_string()
            };
            return Err(Error::value(
                key,
                value,
                format!(
                    "a scale whose growth over the {} layers stays within {} (about 1e{:.0} here): \
                     activations would overflow {} at initialisation",
                    m.depth + 1,
                    m.precision.name(),
                    growth,
                    m.precision.name()
                ),
            ));
        }
        Ok(m)
    }

    /// The architecture: conv keys only with `architecture = "conv"`, which needs an image
    /// shape, a filter that fits it and positions left after every `valid` convolution.
    fn architecture(&self, image: Option<[usize; 3]>, depth: usize) -> Result<Architecture> {
        let name = self.architecture.unwrap_or(ArchitectureName::Mlp);
        if self.blocks.is_some() {
            return self.stack_architecture(name, image);
        }
        if name == ArchitectureName::Mlp {
            none_set(
                &[
                    ("model.filter", self.filter.is_some()),
                    ("model.padding", self.padding.is_some()),
                    ("model.readout", self.readout.is_some()),
                ],
                "only with model.architecture = \"conv\"",
            )?;
            return Ok(Architecture::Mlp);
        }
        let image = ImageShape::from_array(required(
            "data.image_shape",
            image,
            "[height, width, channels] of each row's image, required by model.architecture = \"conv\" (data.kind = \"csv\")",
        )?);
        if self.parametrization == Some(Parametrization::Mup) {
            return Err(Error::value(
                "model.parametrization",
                "mup",
                "\"ntk\" or \"standard\" with model.architecture = \"conv\" (mup is defined here for dense layers only)",
            ));
        }
        let side = image.height.min(image.width);
        let filter = in_range("model.filter", self.filter.unwrap_or(def::FILTER), 1, side)?;
        let conv = ConvSettings {
            filter,
            padding: self.padding.unwrap_or(def::PADDING),
            readout: self.readout.unwrap_or(def::READOUT),
            image,
        };
        if conv.spatial_sizes(depth).is_none() {
            return Err(Error::value(
                "model.depth",
                depth,
                format!(
                    "at most {} \"valid\" convolutions of a {filter}×{filter} filter on a {}×{} image (each removes {} rows and columns)",
                    (side - 1) / (filter - 1).max(1),
                    image.height,
                    image.width,
                    filter - 1
                ),
            ));
        }
        Ok(Architecture::Conv(conv))
    }

    /// The architecture of a network written as `model.blocks`: the per-layer keys
    /// (`depth`, `filter`, `padding`) belong to the blocks, and mup is not defined for them.
    fn stack_architecture(
        &self,
        name: ArchitectureName,
        image: Option<[usize; 3]>,
    ) -> Result<Architecture> {
        if self.readout.is_some() && name == ArchitectureName::Mlp {
            return Err(Error::value(
                "model.readout",
                "(set)",
                "only with model.architecture = \"conv\" (a dense stack ends in one dense layer to the outputs)",
            ));
        }
        none_set(
            &[
                ("model.depth", self.depth.is_some()),
                ("model.filter", self.filter.is_some()),
                ("model.padding", self.padding.is_some()),
            ],
            "not with model.blocks: the stack gives each layer (filter, stride and padding in a { layer = \"conv\" } entry; depth is its number of dense layers and convolutions)",
        )?;
        if self.parametrization == Some(Parametrization::Mup) {
            return Err(Error::value(
                "model.parametrization",
                "mup",
                "\"ntk\" or \"standard\" with model.blocks (mup's per-layer rates are defined here for plain MLPs only)",
            ));
        }
        if name == ArchitectureName::Mlp {
            return Ok(Architecture::Mlp);
        }
        let image = ImageShape::from_array(required(
            "data.image_shape",
            image,
            "[height, width, channels] of each row's image, required by model.architecture = \"conv\" (data.kind = \"csv\")",
        )?);
        Ok(Architecture::Conv(ConvSettings {
            filter: 1,
            padding: crate::model::layers::Padding::Same,
            readout: self.readout.unwrap_or(def::READOUT),
            image,
        }))
    }

    fn unchecked(&self, image: Option<[usize; 3]>) -> Result<ModelSettings> {
        let width = in_range(
            "model.width",
            self.width.unwrap_or(def::WIDTH),
            1,
            def::MAX_WIDTH,
        )?;
        let depth = match &self.blocks {
            Some(stack) => self.stack_depth(stack, image, width)?,
            None => in_range(
                "model.depth",
                self.depth.unwrap_or(def::DEPTH),
                1,
                def::MAX_DEPTH,
            )?,
        };
        Ok(ModelSettings {
            architecture: self.architecture(image, depth)?,
            width,
            depth,
            activation: self.activation.unwrap_or(def::ACTIVATION),
            w_std: positive("model.w_std", self.w_std.unwrap_or(def::W_STD))?,
            b_std: non_negative("model.b_std", self.b_std.unwrap_or(def::B_STD))?,
            bias: self.bias.unwrap_or(def::BIAS),
            parametrization: self.parametrization.unwrap_or(def::PARAMETRIZATION),
            precision: self.precision.unwrap_or(def::PRECISION),
            backend: self.backend.unwrap_or(def::BACKEND),
            blocks: self.blocks.clone(),
        })
    }

    /// Checks a stack against its input (the output count does not matter here) and returns
    /// its number of dense layers and convolutions.
    fn stack_depth(
        &self,
        stack: &[crate::model::blocks::Block],
        image: Option<[usize; 3]>,
        width: usize,
    ) -> Result<usize> {
        use crate::model::blocks::{compile, StackInput};
        let arch =
            self.stack_architecture(self.architecture.unwrap_or(ArchitectureName::Mlp), image)?;
        let input = match arch {
            Architecture::Mlp => StackInput::Features(1),
            Architecture::Conv(c) => StackInput::Image(c.image),
        };
        let readout = match arch {
            Architecture::Conv(c) => c.readout,
            Architecture::Mlp => crate::model::layers::Readout::Flatten,
        };
        let program = compile(stack, input, width, readout, 1)?;
        in_range("model.blocks", program.hidden_layers(), 1, def::MAX_DEPTH)
    }
}

impl TrainingSpec {
    /// The checked `[training]` table; `n_train` (when the config fixes it) bounds the batch.
    pub fn check(&self, n_train: Option<usize>) -> Result<TrainingConfig> {
        let learning_rate = match (self.learning_rate, self.lr_scale) {
            (Some(_), Some(s)) => {
                return Err(Error::value(
                    "training.lr_scale",
                    s,
                    "either training.learning_rate or training.lr_scale, not both",
                ))
            }
            (_, Some(s)) => LearningRate::CriticalMultiple(positive("training.lr_scale", s)?),
            (lr, None) => LearningRate::Absolute(positive(
                "training.learning_rate",
                lr.unwrap_or(def::LEARNING_RATE),
            )?),
        };
        let momentum = fraction(
            "training.momentum",
            self.momentum.unwrap_or(def::MOMENTUM),
            "a number in [0, 1)",
            |m| (0.0..1.0).contains(&m),
        )?;
        let steps = self.steps.unwrap_or(def::STEPS);
        if steps > def::MAX_STEPS {
            return Err(Error::value(
                "training.steps",
                steps,
                format!("an integer in [0, {}]", def::MAX_STEPS),
            ));
        }
        let batch_size = match self.batch_size {
            Some(b) => Some(
                in_range("training.batch_size", b, 1, n_train.unwrap_or(usize::MAX)).map_err(
                    |_| match n_train {
                        Some(n) => Error::value(
                            "training.batch_size",
                            b,
                            format!("an integer in [1, data.n_train = {n}]"),
                        ),
                        None => Error::value("training.batch_size", b, "an integer >= 1"),
                    },
                )?,
            ),
            None => None,
        };
        let loss = self.loss.unwrap_or(def::LOSS);
        let center_outputs = self.center_outputs.unwrap_or(def::CENTER_OUTPUTS);
        if center_outputs && loss == Loss::CrossEntropy {
            return Err(Error::value(
                "training.center_outputs",
                true,
                "false with training.loss = \"cross_entropy\" (targets must stay probabilities)",
            ));
        }
        Ok(TrainingConfig {
            learning_rate,
            steps,
            batch_size,
            momentum,
            center_outputs,
            max_loss: positive("training.max_loss", self.max_loss.unwrap_or(def::MAX_LOSS))?,
            loss,
            twin: self.twin.unwrap_or_default(),
        })
    }
}

impl KernelSpec {
    /// The checked `[kernel]` table.
    pub fn check(
        &self,
        parametrization: Parametrization,
        n_train: Option<usize>,
    ) -> Result<KernelConfig> {
        let solutions = self
            .solutions
            .clone()
            .unwrap_or_else(|| def::SOLUTIONS.to_vec());
        for (i, s) in solutions.iter().enumerate() {
            if solutions[..i].contains(s) {
                return Err(Error::value(
                    "kernel.solutions",
                    format!("{:?}", s.name()),
                    "each solution at most once",
                ));
            }
        }
        if parametrization == Parametrization::Mup && solutions.contains(&KernelSolution::Analytic)
        {
            return Err(Error::value(
                "kernel.solutions",
                format!("{:?}", solutions.iter().map(|s| s.name()).collect::<Vec<_>>()),
                "[\"empirical\"] with model.parametrization = \"mup\" (mup has no infinite-width NTK)",
            ));
        }
        // The default is capped at the number of training points when that is known, so that
        // the resolved config.toml parses again.
        let points = match (n_train, self.train_subset) {
            (Some(n), Some(m)) => Some(n.min(m)),
            (n, m) => n.or(m),
        };
        let default_probe = points.map_or(def::PROBE_SIZE, |n| def::PROBE_SIZE.min(n));
        let probe_size = at_least(
            "kernel.probe_size",
            self.probe_size.unwrap_or(default_probe),
            1,
        )?;
        if let (Some(n), Some(p)) = (n_train, self.probe_size) {
            if p > n {
                return Err(Error::value(
                    "kernel.probe_size",
                    p,
                    format!("an integer in [1, data.n_train = {n}]"),
                ));
            }
        }
        let (lo, hi) = (
            *def::QUADRATURE_ORDERS.start(),
            *def::QUADRATURE_ORDERS.end(),
        );
        Ok(KernelConfig {
            solutions,
            time: self.time.unwrap_or(def::TIME),
            initial_outputs: self.initial_outputs.unwrap_or_default(),
            diag_reg: DiagReg {
                value: {
                    let v =
                        non_negative("kernel.diag_reg", self.diag_reg.unwrap_or(def::DIAG_REG))?;
                    let absolute = self.diag_reg_absolute.unwrap_or(def::DIAG_REG_ABSOLUTE);
                    let max = if absolute {
                        def::MAX_DIAG_REG_ABSOLUTE
                    } else {
                        def::MAX_DIAG_REG
                    };
                    if v > max {
                        return Err(Error::value(
                            "kernel.diag_reg",
                            v,
                            format!("a number in [0, {max:e}] ({}: beyond it the regulariser swamps the kernel and λ may overflow)", if absolute { "absolute" } else { "relative to the mean diagonal" }),
                        ));
                    }
                    v
                },
                absolute: self.diag_reg_absolute.unwrap_or(def::DIAG_REG_ABSOLUTE),
            },
            probe_size,
            form: self.form.unwrap_or(def::FORM),
            quadrature_order: in_range(
                "kernel.quadrature_order",
                self.quadrature_order.unwrap_or(def::QUADRATURE_ORDER),
                lo,
                hi,
            )?,
            train_subset: match self.train_subset {
                Some(m) => Some(at_least("kernel.train_subset", m, 1)?),
                None => None,
            },
            block_size: match self.block_size {
                Some(b) => Some(at_least("kernel.block_size", b, 1)?),
                None => None,
            },
            solver: self.solver.unwrap_or_default(),
            iterative: self.iterative_settings()?,
            plan: None,
        })
    }

    fn iterative_settings(&self) -> Result<super::IterativeSettings> {
        let tol = self.solver_tolerance.unwrap_or(def::SOLVER_TOLERANCE);
        if !(tol.is_finite() && tol > 0.0) {
            return Err(Error::value(
                "kernel.solver_tolerance",
                tol,
                "a finite number > 0 (the estimated largest error of a prediction, in output units)",
            ));
        }
        Ok(super::IterativeSettings {
            storage: self.storage.unwrap_or_default(),
            store: self.store.unwrap_or_default(),
            store_dir: self.store_dir.clone(),
            keep_store: self.keep_store.unwrap_or(false),
            solver_tolerance: tol,
            solver_max_iterations: in_range(
                "kernel.solver_max_iterations",
                self.solver_max_iterations
                    .unwrap_or(def::SOLVER_MAX_ITERATIONS),
                1,
                1_000_000,
            )?,
            preconditioner_rank: match self.preconditioner_rank {
                Some(r) => Some(in_range("kernel.preconditioner_rank", r, 0, 100_000)?),
                None => None,
            },
            sharpness_points: at_least(
                "kernel.sharpness_points",
                self.sharpness_points.unwrap_or(def::SHARPNESS_POINTS),
                1,
            )?,
        })
    }
}

impl LoggingSpec {
    /// The checked `[logging]` table.
    pub fn check(&self) -> Result<LoggingConfig> {
        let every = self.every.unwrap_or(def::EVERY);
        if every == 0 {
            return Err(Error::value("logging.every", 0, "an integer >= 1"));
        }
        let kernel_every = self.kernel_every.unwrap_or(def::KERNEL_EVERY.max(every));
        if kernel_every == 0 || !kernel_every.is_multiple_of(every) {
            return Err(Error::value(
                "logging.kernel_every",
                kernel_every,
                format!("a positive multiple of logging.every = {every}"),
            ));
        }
        let sensitivity_every = self.sensitivity_every.unwrap_or(kernel_every);
        if sensitivity_every == 0 || !sensitivity_every.is_multiple_of(every) {
            return Err(Error::value(
                "logging.sensitivity_every",
                sensitivity_every,
                format!("a positive multiple of logging.every = {every}"),
            ));
        }
        Ok(LoggingConfig {
            every,
            kernel_every,
            sensitivity_every,
        })
    }
}

impl OutputsSpec {
    /// The checked `[outputs]` table.
    pub fn check(&self) -> Result<OutputsConfig> {
        Ok(OutputsConfig {
            dir: self
                .dir
                .clone()
                .unwrap_or_else(|| PathBuf::from(def::OUTPUT_DIR)),
            save_kernels: self.save_kernels.unwrap_or(def::SAVE_KERNELS),
            predictions: match &self.save_predictions {
                None => Predictions::Final,
                Some(toml::Value::Boolean(true)) => Predictions::Final,
                Some(toml::Value::Boolean(false)) => Predictions::Off,
                Some(toml::Value::String(s)) if s == "checkpoints" => Predictions::Checkpoints,
                Some(v) => {
                    return Err(Error::value(
                        "outputs.save_predictions",
                        v.to_string(),
                        "true (predictions.csv, every track's final outputs), false, or \"checkpoints\" (also every track's outputs at every checkpoint, predictions_steps.npy)",
                    ))
                }
            },
            save_kernel_checkpoints: self.save_kernel_checkpoints.unwrap_or(false),
            save_parameters: self.save_parameters.unwrap_or(false),
            formats: {
                let f = self
                    .formats
                    .clone()
                    .unwrap_or_else(|| vec![ImageFormat::Png]);
                let mut seen = Vec::new();
                for x in &f {
                    if seen.contains(x) {
                        return Err(Error::value(
                            "outputs.formats",
                            format!("{f:?}"),
                            "each format at most once",
                        ));
                    }
                    seen.push(*x);
                }
                if !f.contains(&ImageFormat::Png) {
                    return Err(Error::value(
                        "outputs.formats",
                        format!("{f:?}"),
                        "a list containing \"png\" (the contact sheet is built from the PNGs), e.g. [\"png\", \"svg\"]",
                    ));
                }
                f
            },
        })
    }
}

impl EnsembleSpec {
    /// The checked `[ensemble]`: the Gaussian process it is compared with describes networks
    /// trained on the half-MSE from their random initial outputs, with an infinite-width limit.
    pub fn check(
        &self,
        model: &ModelSettings,
        training: &TrainingConfig,
    ) -> Result<EnsembleConfig> {
        let members = in_range(
            "ensemble.members",
            required(
                "ensemble.members",
                self.members,
                "the number of networks, an integer >= 2",
            )?,
            2,
            def::MAX_ENSEMBLE_MEMBERS,
        )?;
        let parallel = self
            .parallel
            .map(|p| in_range("ensemble.parallel", p, 1, def::MAX_ENSEMBLE_MEMBERS))
            .transpose()?;
        if training.center_outputs {
            return Err(Error::value(
                "training.center_outputs",
                true,
                "false with [ensemble]: centring removes the random initial outputs whose spread the Gaussian process describes",
            ));
        }
        if training.loss != Loss::Mse {
            return Err(Error::value(
                "training.loss",
                training.loss.name(),
                "\"mse\" with [ensemble]: the Gaussian process is the closed form of gradient descent on the half-MSE",
            ));
        }
        if model.parametrization == Parametrization::Mup {
            return Err(Error::value(
                "model.parametrization",
                "mup",
                "\"ntk\" or \"standard\" with [ensemble]: mup has no infinite-width NTK Gaussian process",
            ));
        }
        Ok(EnsembleConfig { members, parallel })
    }
}

/// What `kernel.train_subset = m` requires of the other sections: a twin in parameter space
/// (the function-space twin needs Θ0 on every training point), uncentred outputs (f0 is known
/// on the subset only), one network, `m` ≤ `data.n_train` and a probe set inside the subset.
pub fn train_subset(
    m: usize,
    training: &TrainingConfig,
    kernel: &KernelConfig,
    ensemble: bool,
    n_train: Option<usize>,
) -> Result<()> {
    if let Some(n) = n_train {
        if m > n {
            return Err(Error::value(
                "kernel.train_subset",
                m,
                format!("an integer in [1, data.n_train = {n}]"),
            ));
        }
    }
    if training.twin == crate::dynamics::TwinSpace::Function {
        return Err(Error::value(
            "training.twin",
            "\"function\"",
            "\"parameter\" or \"auto\" with kernel.train_subset (the function-space twin needs Θ0 on every training point)",
        ));
    }
    if training.center_outputs {
        return Err(Error::value(
            "training.center_outputs",
            true,
            "false with kernel.train_subset (f0 is computed on the subset only)",
        ));
    }
    if ensemble {
        return Err(Error::value(
            "kernel.train_subset",
            m,
            "absent in a config with [ensemble] (the Gaussian process uses every training point)",
        ));
    }
    if kernel.probe_size > m {
        return Err(Error::value(
            "kernel.probe_size",
            kernel.probe_size,
            format!("an integer in [1, kernel.train_subset = {m}] (the probe set is the subset's first points)"),
        ));
    }
    Ok(())
}

/// The checked `[data]` of `kind = "sine"`.
fn check_sine(s: &SineSpec) -> Result<(DataSource, Option<usize>, Option<usize>)> {
    let frequency = s.frequency.unwrap_or(def::SINE_FREQUENCY);
    if !frequency.is_finite() {
        return Err(Error::value("data.frequency", frequency, "a finite number"));
    }
    let interval = s.interval.unwrap_or(def::SINE_INTERVAL);
    if !(interval[0].is_finite()
        && interval[1].is_finite()
        && interval[0] < interval[1]
        && (interval[1] - interval[0]).is_finite())
    {
        return Err(Error::value(
            "data.interval",
            format!("{interval:?}"),
            "[lo, hi] with finite lo < hi and a finite width hi − lo",
        ));
    }
    let (n_train, n_test) = sample_counts(s.n_train, s.n_test)?;
    let noise = non_negative("data.noise", s.noise.unwrap_or(0.0))?;
    let src = SineSource {
        frequency,
        interval,
        noise,
    };
    Ok((DataSource::Sine(src), Some(n_train), Some(n_test)))
}

/// The checked `[data]` of `kind = "teacher"`.
fn check_teacher(s: &TeacherSpec) -> Result<(DataSource, Option<usize>, Option<usize>)> {
    let (n_train, n_test) = sample_counts(s.n_train, s.n_test)?;
    let src = TeacherSource {
        input_dim: at_least(
            "data.input_dim",
            s.input_dim.unwrap_or(def::TEACHER_INPUT_DIM),
            1,
        )?,
        teacher_width: at_least(
            "data.teacher_width",
            s.teacher_width.unwrap_or(def::TEACHER_WIDTH),
            1,
        )?,
        noise: non_negative("data.noise", s.noise.unwrap_or(0.0))?,
    };
    Ok((DataSource::Teacher(src), Some(n_train), Some(n_test)))
}

/// The checked `[data]` of `kind = "text"`.
fn check_text(s: &TextSpec) -> Result<(DataSource, Option<usize>, Option<usize>)> {
    let (n_train, n_test) = sample_counts(s.n_train, s.n_test)?;
    let validation_fraction = validation_fraction(s.validation_fraction)?;
    let n_val = match (validation_fraction > 0.0, s.n_val) {
        (true, n) => Some(at_least("data.n_val", n.unwrap_or(n_test), 1)?),
        (false, None) => None,
        (false, Some(n)) => {
            return Err(Error::value(
                "data.n_val",
                n,
                "only with data.validation_fraction > 0 (there is no validation part)",
            ))
        }
    };
    let src = TextSource {
        path: required(
            "data.path",
            s.path.clone(),
            "a text file path is required for data.kind = \"text\"",
        )?,
        context: at_least("data.context", s.context.unwrap_or(def::TEXT_CONTEXT), 1)?,
        lowercase: s.lowercase.unwrap_or(true),
        test_fraction: fraction(
            "data.test_fraction",
            s.test_fraction.unwrap_or(def::TEXT_TEST_FRACTION),
            "a fraction in (0, 1) for data.kind = \"text\"",
            |f| f > 0.0 && f < 1.0,
        )?,
        validation_fraction,
        n_val,
    };
    Ok((DataSource::Text(src), Some(n_train), Some(n_test)))
}
