//! `[data]` with `kind = "npy"` checked into an [`NpySource`]: the arrays' headers are read now
//! (not their data), so that shapes, dtypes and the image shape a conv net needs are checked
//! with the config.

use std::path::PathBuf;

use crate::data::npy::{self, ArrayLocation, NpyFiles, NpySource, Role};
use crate::{Error, Result};

use super::check::{
    no_one_hot_keys, non_negative, one_hot_settings, positive, test_fraction, validation_fraction,
};
use super::schema::NpySpec;

impl NpySpec {
    /// The checked source.
    pub fn check(&self) -> Result<NpySource> {
        let files = self.files()?;
        let header = |role: Role| -> Result<Option<(ArrayLocation, npy::ArrayHeader)>> {
            files
                .location(role)
                .map(|at| npy::read_header(&at).map(|h| (at, h)))
                .transpose()
        };
        let (xl, xh) = header(Role::X)?.ok_or_else(|| missing("data.x"))?;
        let (yl, yh) = header(Role::Y)?.ok_or_else(|| missing("data.y"))?;
        let (n, d, shape_of_x) = npy::input_layout(&xl, &xh)?;
        let (ny, k) = npy::target_layout(&yl, &yh)?;
        if ny != n {
            return Err(Error::value(
                "data.y",
                yl.to_string(),
                format!("as many targets as inputs: {xl} has {n} points, this array {ny}"),
            ));
        }
        self.check_test_arrays(&header, d, k)?;
        let labels = yh.element.is_integer() && k == 1;
        let one_hot = if self.one_hot.unwrap_or(labels) {
            if k != 1 {
                return Err(Error::value(
                    "data.one_hot",
                    "true",
                    format!("a label array of shape (N,) or (N, 1) ({yl} has {k} columns)"),
                ));
            }
            Some(one_hot_settings(self.one_hot_values, self.label_noise)?)
        } else {
            no_one_hot_keys(self.one_hot_values, self.label_noise)?;
            None
        };
        let image_shape = self.image_shape(shape_of_x, d)?;
        let has_test = files.location(Role::XTest).is_some();
        Ok(NpySource {
            files,
            standardize: self.standardize.unwrap_or(image_shape.is_none()),
            test_fraction: test_fraction(
                self.test_fraction,
                has_test.then_some("test arrays are given"),
            )?,
            shuffle: self.shuffle.unwrap_or(true),
            feature_scale: positive("data.feature_scale", self.feature_scale.unwrap_or(1.0))?,
            noise: non_negative("data.noise", self.noise.unwrap_or(0.0))?,
            validation_fraction: validation_fraction(self.validation_fraction)?,
            one_hot,
            image_shape,
            target_columns: k,
        })
    }

    /// The array files or the archive's array names (defaults filled in).
    fn files(&self) -> Result<NpyFiles> {
        let Some(npz) = &self.npz else {
            let path = |key: &str, v: &Option<String>| {
                v.as_ref().map(PathBuf::from).ok_or_else(|| missing(key))
            };
            if self.x_test.is_some() != self.y_test.is_some() {
                return Err(test_pair());
            }
            return Ok(NpyFiles::Files {
                x: path("data.x", &self.x)?,
                y: path("data.y", &self.y)?,
                x_test: self.x_test.as_ref().map(PathBuf::from),
                y_test: self.y_test.as_ref().map(PathBuf::from),
            });
        };
        let names = npy::archive_arrays(npz)?;
        let has = |n: &str| names.iter().any(|a| a == n);
        let (x_test, y_test) = match (&self.x_test, &self.y_test) {
            (Some(a), Some(b)) => (Some(a.clone()), Some(b.clone())),
            (None, None) if has("x_test") && has("y_test") => {
                (Some("x_test".into()), Some("y_test".into()))
            }
            (None, None) if has("x_test") || has("y_test") => {
                return Err(Error::value(
                    "data.npz",
                    npz.display(),
                    format!(
                        "an archive with both test arrays x_test and y_test, or neither: it holds only {} (name the test arrays with data.x_test and data.y_test, or leave the other out of the archive)",
                        if has("x_test") { "x_test" } else { "y_test" }
                    ),
                ))
            }
            (None, None) => (None, None),
            _ => return Err(test_pair()),
        };
        Ok(NpyFiles::Archive {
            npz: npz.clone(),
            x: self.x.clone().unwrap_or_else(|| "x".into()),
            y: self.y.clone().unwrap_or_else(|| "y".into()),
            x_test,
            y_test,
        })
    }

    /// The test arrays' trailing dimensions against the training arrays'.
    fn check_test_arrays(
        &self,
        header: &dyn Fn(Role) -> Result<Option<(ArrayLocation, npy::ArrayHeader)>>,
        d: usize,
        k: usize,
    ) -> Result<()> {
        let (Some((xl, xh)), Some((yl, yh))) = (header(Role::XTest)?, header(Role::YTest)?) else {
            return Ok(());
        };
        let (n, dt, _) = npy::input_layout(&xl, &xh)?;
        let (ny, kt) = npy::target_layout(&yl, &yh)?;
        let bad = |key: &str, at: &ArrayLocation, why: String| {
            Err(Error::value(key, at.to_string(), why))
        };
        if dt != d {
            return bad(
                "data.x_test",
                &xl,
                format!("test inputs with the training inputs' {d} features per point (this array has {dt})"),
            );
        }
        if kt != k {
            return bad(
                "data.y_test",
                &yl,
                format!(
                    "test targets with the training targets' {k} columns (this array has {kt})"
                ),
            );
        }
        if ny != n {
            return bad(
                "data.y_test",
                &yl,
                format!("as many test targets as test inputs ({n}; this array has {ny})"),
            );
        }
        Ok(())
    }

    /// The image shape: from a 3-d or 4-d `x`, or the config's for a 2-d one.
    fn image_shape(&self, of_x: Option<[usize; 3]>, d: usize) -> Result<Option<[usize; 3]>> {
        match (of_x, self.image_shape) {
            (Some(s), None) => Ok(Some(s)),
            (Some(s), Some(c)) if s == c => Ok(Some(s)),
            (Some(s), Some(c)) => Err(Error::value(
                "data.image_shape",
                format!("{c:?}"),
                format!("absent: data.x is an image array whose shape gives {s:?}"),
            )),
            (None, None) => Ok(None),
            (None, Some(c)) => {
                let product = c.iter().try_fold(1usize, |a, &b| a.checked_mul(b));
                if c.contains(&0) || product != Some(d) {
                    return Err(Error::value(
                        "data.image_shape",
                        format!("{c:?}"),
                        format!("[height, width, channels], each at least 1, whose product is the {d} features of data.x"),
                    ));
                }
                Ok(Some(c))
            }
        }
    }
}

fn missing(key: &str) -> Error {
    Error::value(
        key,
        "(absent)",
        "a .npy file (or, with data.npz, the name of an array in the archive) is required for data.kind = \"npy\"",
    )
}

fn test_pair() -> Error {
    Error::value(
        "data.x_test",
        "(one of x_test, y_test)",
        "both data.x_test and data.y_test, or neither (then data.test_fraction holds out test points)",
    )
}
