//! Elementwise nonlinearities φ: burn forward passes, f64 values and derivatives, and their
//! config form (`"relu"` or `{ name = "leaky_relu", alpha = 0.1 }`).

use burn::tensor::{activation, Tensor};
use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Default negative slope of `leaky_relu` when the table form omits `alpha`.
pub const DEFAULT_LEAKY_ALPHA: f64 = 0.01;

/// Elementwise nonlinearity.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Activation {
    /// max(x, 0)
    Relu,
    /// x for x > 0, α·x otherwise
    LeakyRelu {
        /// negative slope
        alpha: f64,
    },
    /// |x|
    Abs,
    /// erf(x)
    Erf,
    /// x·Φ(x) (exact GELU)
    Gelu,
    /// sin(x)
    Sin,
    /// cos(x)
    Cos,
    /// tanh(x)
    Tanh,
    /// ln(1 + eˣ)
    Softplus,
    /// x
    Identity,
}

impl Activation {
    /// Config name.
    pub fn name(self) -> &'static str {
        match self {
            Activation::Relu => "relu",
            Activation::LeakyRelu { .. } => "leaky_relu",
            Activation::Abs => "abs",
            Activation::Erf => "erf",
            Activation::Gelu => "gelu",
            Activation::Sin => "sin",
            Activation::Cos => "cos",
            Activation::Tanh => "tanh",
            Activation::Softplus => "softplus",
            Activation::Identity => "identity",
        }
    }

    /// Every activation (leaky ReLU with α = 0.1), for tests.
    pub fn all() -> Vec<Activation> {
        vec![
            Activation::Relu,
            Activation::LeakyRelu { alpha: 0.1 },
            Activation::Abs,
            Activation::Erf,
            Activation::Gelu,
            Activation::Sin,
            Activation::Cos,
            Activation::Tanh,
            Activation::Softplus,
            Activation::Identity,
        ]
    }

    /// Applies φ to a tensor (autodiff flows through).
    pub fn forward<const D: usize>(self, x: Tensor<D>) -> Tensor<D> {
        match self {
            Activation::Relu => activation::relu(x),
            Activation::LeakyRelu { alpha } => activation::leaky_relu(x, alpha),
            Activation::Abs => x.abs(),
            Activation::Erf => x.erf(),
            Activation::Gelu => activation::gelu(x),
            Activation::Sin => x.sin(),
            Activation::Cos => x.cos(),
            Activation::Tanh => x.tanh(),
            Activation::Softplus => activation::softplus(x, 1.0),
            Activation::Identity => x,
        }
    }

    /// φ′(z) as a tensor function of `z` (autodiff flows through it, so derivatives of
    /// `φ′(z(x))` with respect to `x` are exact; for kinked activations φ′ is a 0/1 (or ±1, α)
    /// mask taken as 0 at the kink).
    pub fn derivative_tensor<const D: usize>(self, z: Tensor<D>) -> Tensor<D> {
        let step = |z: Tensor<D>, below: f64, above: f64| {
            let positive = z.clone().greater_elem(0.0);
            z.zeros_like().add_scalar(below).mask_fill(positive, above)
        };
        match self {
            // 1[z > 0] as a number (one pass; building it by mask_fill was ~7 % of the NTK).
            Activation::Relu => {
                let dtype = z.dtype();
                z.greater_elem(0.0).float().cast(dtype)
            }
            Activation::LeakyRelu { alpha } => step(z, alpha, 1.0),
            Activation::Abs => step(z, -1.0, 1.0),
            Activation::Erf => z
                .clone()
                .mul(z)
                .neg()
                .exp()
                .mul_scalar(2.0 / std::f64::consts::PI.sqrt()),
            Activation::Gelu => {
                let cdf = z
                    .clone()
                    .mul_scalar(std::f64::consts::FRAC_1_SQRT_2)
                    .erf()
                    .add_scalar(1.0)
                    .mul_scalar(0.5);
                let pdf = z
                    .clone()
                    .mul(z.clone())
                    .mul_scalar(-0.5)
                    .exp()
                    .mul_scalar(1.0 / (2.0 * std::f64::consts::PI).sqrt());
                cdf + z * pdf
            }
            Activation::Sin => z.cos(),
            Activation::Cos => z.sin().neg(),
            Activation::Tanh => {
                let t = z.tanh();
                t.clone().mul(t).neg().add_scalar(1.0)
            }
            Activation::Softplus => activation::sigmoid(z),
            Activation::Identity => z.ones_like(),
        }
    }

    /// φ(x) in f64.
    pub fn value(self, x: f64) -> f64 {
        match self {
            Activation::Relu => x.max(0.0),
            Activation::LeakyRelu { alpha } => {
                if x > 0.0 {
                    x
                } else {
                    alpha * x
                }
            }
            Activation::Abs => x.abs(),
            Activation::Erf => erf(x),
            Activation::Gelu => 0.5 * x * (1.0 + erf(x / std::f64::consts::SQRT_2)),
            Activation::Sin => x.sin(),
            Activation::Cos => x.cos(),
            Activation::Tanh => x.tanh(),
            Activation::Softplus => {
                if x > 30.0 {
                    x
                } else {
                    x.exp().ln_1p()
                }
            }
            Activation::Identity => x,
        }
    }

    /// `(φ(x), φ′(x))`, bit for bit [`Activation::value`] and [`Activation::derivative`], with
    /// tanh evaluated once for both.
    pub fn value_and_derivative(self, x: f64) -> (f64, f64) {
        match self {
            Activation::Tanh => {
                let t = x.tanh();
                (t, 1.0 - t.powi(2))
            }
            _ => (self.value(x), self.derivative(x)),
        }
    }

    /// φ'(x) in f64 (the a.e. derivative for kinked activations).
    pub fn derivative(self, x: f64) -> f64 {
        match self {
            Activation::Relu => {
                if x > 0.0 {
                    1.0
                } else {
                    0.0
                }
            }
            Activation::LeakyRelu { alpha } => {
                if x > 0.0 {
                    1.0
                } else {
                    alpha
                }
            }
            Activation::Abs => {
                if x > 0.0 {
                    1.0
                } else {
                    -1.0
                }
            }
            Activation::Erf => 2.0 / std::f64::consts::PI.sqrt() * (-x * x).exp(),
            Activation::Gelu => {
                let cdf = 0.5 * (1.0 + erf(x / std::f64::consts::SQRT_2));
                let pdf = (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt();
                cdf + x * pdf
            }
            Activation::Sin => x.cos(),
            Activation::Cos => -x.sin(),
            Activation::Tanh => 1.0 - x.tanh().powi(2),
            Activation::Softplus => 1.0 / (1.0 + (-x).exp()),
            Activation::Identity => 1.0,
        }
    }
}

/// erf in f64 (W. J. Cody's rational approximations via libm-quality series; |error| < 1e-15).
pub fn erf(x: f64) -> f64 {
    // erf via the complementary function for |x| >= 0.5, Taylor series below.
    let ax = x.abs();
    if ax < 0.5 {
        // Maclaurin series, converges fast for small |x|.
        let x2 = x * x;
        let mut term = x;
        let mut sum = x;
        let mut n = 0.0;
        loop {
            n += 1.0;
            term *= -x2 / n;
            let add = term / (2.0 * n + 1.0);
            sum += add;
            if add.abs() <= 1e-17 * sum.abs() {
                break;
            }
        }
        sum * 2.0 / std::f64::consts::PI.sqrt()
    } else {
        let c = erfc_pos(ax);
        if x > 0.0 {
            1.0 - c
        } else {
            c - 1.0
        }
    }
}

/// erfc(x) for x ≥ 0.5 by a continued fraction (Lentz), accurate to ~1e-16 relative.
fn erfc_pos(x: f64) -> f64 {
    if x > 27.0 {
        return 0.0;
    }
    // erfc(x) = exp(-x²)/√π · 1/(x + 1/2/(x + 1/(x + 3/2/(x + 2/(x + ...)))))
    let tiny = 1e-300;
    let mut f = x;
    let mut c = x;
    let mut d = 0.0;
    for i in 1..500 {
        let a = i as f64 / 2.0;
        d = x + a * d;
        if d.abs() < tiny {
            d = tiny;
        }
        c = x + a / c;
        if c.abs() < tiny {
            c = tiny;
        }
        d = 1.0 / d;
        let delta = c * d;
        f *= delta;
        if (delta - 1.0).abs() < 1e-16 {
            break;
        }
    }
    (-x * x).exp() / std::f64::consts::PI.sqrt() / f
}

/// Config names, in the order they are documented.
const NAMES: [&str; 10] = [
    "relu",
    "leaky_relu",
    "abs",
    "erf",
    "gelu",
    "sin",
    "cos",
    "tanh",
    "softplus",
    "identity",
];

fn from_name<E: de::Error>(name: &str, alpha: Option<f64>) -> Result<Activation, E> {
    if alpha.is_some() && name != "leaky_relu" {
        return Err(E::custom(format!(
            "`alpha` is only valid with name = \"leaky_relu\", not {name:?}"
        )));
    }
    Ok(match name {
        "relu" => Activation::Relu,
        "leaky_relu" => {
            let alpha = alpha.unwrap_or(DEFAULT_LEAKY_ALPHA);
            if !alpha.is_finite() {
                return Err(E::custom(format!("alpha = {alpha}: a finite number")));
            }
            Activation::LeakyRelu { alpha }
        }
        "abs" => Activation::Abs,
        "erf" => Activation::Erf,
        "gelu" => Activation::Gelu,
        "sin" => Activation::Sin,
        "cos" => Activation::Cos,
        "tanh" => Activation::Tanh,
        "softplus" => Activation::Softplus,
        "identity" => Activation::Identity,
        other => return Err(E::unknown_variant(other, &NAMES)),
    })
}

/// The table form: exactly `name` and (for leaky_relu) `alpha`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ActivationTable {
    name: String,
    alpha: Option<f64>,
}

impl<'de> Deserialize<'de> for Activation {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Activation;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                write!(
                    f,
                    "an activation name ({}) or a table {{ name = \"leaky_relu\", alpha = 0.1 }}",
                    NAMES.join(", ")
                )
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Activation, E> {
                from_name(v, None)
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Activation, A::Error> {
                let t = ActivationTable::deserialize(de::value::MapAccessDeserializer::new(map))?;
                from_name(&t.name, t.alpha)
            }
        }
        d.deserialize_any(V)
    }
}

impl Serialize for Activation {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Activation::LeakyRelu { alpha } => {
                #[derive(Serialize)]
                struct Table {
                    name: &'static str,
                    alpha: f64,
                }
                Table {
                    name: "leaky_relu",
                    alpha: *alpha,
                }
                .serialize(s)
            }
            other => s.serialize_str(other.name()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erf_of_zero_and_its_neighbours_ends() {
        // The series' stopping rule once never held at x = 0 (0 < 0 is false): an endless loop
        // for an erf network whose pre-activation is exactly 0 (an all-zero input, no bias).
        assert_eq!(erf(0.0), 0.0);
        assert_eq!(erf(-0.0), 0.0);
        // erf(x) ≈ 2x/√π for tiny x, odd.
        let x = 1e-300;
        assert!((erf(x) / (2.0 * x / std::f64::consts::PI.sqrt()) - 1.0).abs() < 1e-15);
        assert_eq!(erf(-0.3), -erf(0.3));
    }

    #[test]
    fn config_forms_round_trip() {
        #[derive(Deserialize, Serialize, PartialEq, Debug)]
        struct W {
            a: Activation,
        }
        for a in Activation::all() {
            let text = toml::to_string(&W { a }).unwrap();
            assert_eq!(toml::from_str::<W>(&text).unwrap().a, a, "{text}");
        }
        let w: W = toml::from_str("a = { name = \"leaky_relu\" }").unwrap();
        assert_eq!(
            w.a,
            Activation::LeakyRelu {
                alpha: DEFAULT_LEAKY_ALPHA
            }
        );
        for bad in [
            "a = \"swish\"",
            "a = { name = \"leaky_relu\", alpah = 0.3 }",
            "a = { name = \"relu\", alpha = 0.3 }",
            "a = 3",
        ] {
            assert!(toml::from_str::<W>(bad).is_err(), "{bad}");
        }
    }
}
