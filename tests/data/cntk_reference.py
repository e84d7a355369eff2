#!/usr/bin/env python3
"""Generate float64 reference CNTK values (NNGP and NTK) from neural-tangents.

Writes ``cntk_reference.json`` next to this script.

Environment used to produce the committed JSON (CPU only, float64):

    python3 -m venv /tmp/ntenv
    /tmp/ntenv/bin/pip install "jax[cpu]==0.4.26" "jaxlib==0.4.26" \
        "neural-tangents==0.6.5" "tensorflow==2.15.1" "tf2jax==0.3.5" \
        "numpy<2" "scipy<1.13" "ml-dtypes<0.5"
    /tmp/ntenv/bin/python tests/data/cntk_reference.py

(Python 3.11.7, jax 0.4.26, jaxlib 0.4.26, neural-tangents 0.6.5,
numpy 1.26.4.)  A plain ``pip install "jax[cpu]" neural-tangents`` pulls
jax 0.10.x, with which neural-tangents 0.6.5 fails to import
(``from jax.core import Jaxpr`` / tf2jax needs ``jax.extend.sharding``), hence
the pins above.

Network for every case (NHWC inputs):

    stax.serial(*[stax.Conv(8, (f, f), strides=(1, 1), padding=P,
                            W_std=ws, b_std=bs, parameterization=param),
                  act] * depth,
                readout,                      # Flatten() or GlobalAvgPool()
                stax.Dense(1, W_std=ws, b_std=bs, parameterization=param))

Inputs (deterministic, no RNG):

    x1[n,h,w,c] = sin(1.3*(n+1) + 0.7*h - 0.4*w + 0.9*c) + 0.1*c   n in 0..3
    x2[n,h,w,c] = cos(0.5*(n+2) - 0.3*h + 0.8*w + 0.2*c)             n in 0..2
    then x2[1] = x1[0] (duplicate image) and x1[2] = 0 (zero image).

Each case also gets numpy_max_rel_diff / roundoff_sensitive from an
independent numpy recursion (numpy_cntk below).

For each case: kernel_fn(x1, x2, ('nngp','ntk')) -> nngp_12, ntk_12 (3x2) and
kernel_fn(x1, None, ('nngp','ntk')) -> nngp_11, ntk_11 (3x3).
See cntk_conventions.md for the formulas neural-tangents uses.
"""
import os

# One CPU core, no GPU.
os.environ.setdefault("XLA_FLAGS",
                      "--xla_cpu_multi_thread_eigen=false "
                      "intra_op_parallelism_threads=1")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)  # must precede any array creation

import json  # noqa: E402

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import neural_tangents as nt  # noqa: E402
from neural_tangents import stax  # noqa: E402

INPUT_FORMULA = (
    "x1[n,h,w,c] = sin(1.3*(n+1) + 0.7*h - 0.4*w + 0.9*c) + 0.1*c for n<3; "
    "x2[n,h,w,c] = cos(0.5*(n+2) - 0.3*h + 0.8*w + 0.2*c) for n<2; "
    "then x2[1] = x1[0] and x1[2] = 0. Shapes NHWC (3,H,W,C) and (2,H,W,C); "
    "all indices 0-based.")


def make_inputs(h, w, c):
    n, hh, ww, cc = np.meshgrid(np.arange(3), np.arange(h), np.arange(w),
                                np.arange(c), indexing="ij")
    x1 = np.sin(1.3 * (n + 1) + 0.7 * hh - 0.4 * ww + 0.9 * cc) + 0.1 * cc
    n, hh, ww, cc = np.meshgrid(np.arange(2), np.arange(h), np.arange(w),
                                np.arange(c), indexing="ij")
    x2 = np.cos(0.5 * (n + 2) - 0.3 * hh + 0.8 * ww + 0.2 * cc)
    x2[1] = x1[0]
    x1[2] = 0.0
    return x1.astype(np.float64), x2.astype(np.float64)


ACTS = {
    "relu": lambda: stax.Relu(),
    "erf": lambda: stax.Erf(),
    "gelu": lambda: stax.Gelu(),
    "leaky_relu_0.1": lambda: stax.LeakyRelu(0.1),
    "abs": lambda: stax.Abs(),
    "sin": lambda: stax.Sin(),
}

BASE = dict(height=5, width=4, channels=1, filter=3, padding="same", depth=2,
            activation="relu", w_std=1.5, b_std=0.2, parametrization="ntk",
            readout="flatten", conv_channels=8)


def case(name, comment=None, **kw):
    c = dict(BASE)
    c.update(kw)
    c = {"name": name, **c}
    if comment:
        c["comment"] = comment
    return c


VALID_HW = dict(height=7, width=6)  # 5x4 is too small for two 3x3 VALID convs
CASES = [
    case("base"),
    case("valid", "H,W=7,6 so two VALID 3x3 convs fit (7x6->5x4->3x2)",
         padding="valid", **VALID_HW),
    case("valid_f2", "5x4->4x3->3x2", padding="valid", filter=2),
    case("gap_same", readout="global_avg_pool"),
    case("gap_valid", padding="valid", readout="global_avg_pool", **VALID_HW),
    case("depth1", depth=1),
    case("depth3", depth=3),
    case("c2", channels=2),
    case("f2_same", "even filter + SAME: lax pads lo=0, hi=1",
         filter=2),
    case("f2_same_gap", filter=2, readout="global_avg_pool"),
    case("erf", activation="erf"),
    case("gelu", activation="gelu"),
    case("leaky_relu", activation="leaky_relu_0.1"),
    case("abs", activation="abs"),
    case("sin", activation="sin"),
    case("erf_gap", activation="erf", readout="global_avg_pool"),
    case("gelu_gap", activation="gelu", readout="global_avg_pool"),
    case("sin_gap", activation="sin", readout="global_avg_pool"),
    case("bs0", b_std=0.0),
    case("standard_flatten", parametrization="standard"),
    case("standard_gap", parametrization="standard",
         readout="global_avg_pool"),
    case("standard_valid_flatten", parametrization="standard",
         padding="valid", **VALID_HW),
    case("standard_valid_gap", parametrization="standard", padding="valid",
         readout="global_avg_pool", **VALID_HW),
    case("standard_bs0", "b_std=0.0 is not None: standard NTK still gets +1 "
         "per layer", parametrization="standard", b_std=0.0),
    case("relu_gap_depth3_c2_ws1_bs0", w_std=1.0, b_std=0.0, depth=3,
         channels=2, readout="global_avg_pool"),
]


def build(c):
    layers = []
    for _ in range(c["depth"]):
        layers += [stax.Conv(out_chan=c["conv_channels"],
                             filter_shape=(c["filter"], c["filter"]),
                             strides=(1, 1), padding=c["padding"].upper(),
                             W_std=c["w_std"], b_std=c["b_std"],
                             parameterization=c["parametrization"]),
                   ACTS[c["activation"]]()]
    readout = (stax.Flatten() if c["readout"] == "flatten"
               else stax.GlobalAvgPool())
    layers += [readout, stax.Dense(1, W_std=c["w_std"], b_std=c["b_std"],
                                   parameterization=c["parametrization"])]
    return stax.serial(*layers)


# ---------------------------------------------------------------------------
# Independent numpy float64 recursion (full position-pair covariances), as
# described in cntk_conventions.md.  Used only as a cross-check; its maximum
# relative deviation from neural-tangents is stored per case, together with
# the entries that differ by more than 1e-13 (see "roundoff_sensitive").
# ---------------------------------------------------------------------------
def _conv_pairs(K, f, padding):
    """out[i,j,i',j'] = 1/f^2 sum_{di,dj} K[i+di-lo, j+dj-lo, i'+di-lo, j'+dj-lo]
    (zero outside the image; SAME: lo=(f-1)//2, VALID: lo=0 and smaller output)."""
    A, _, H, W, _, _ = K.shape
    if padding == "same":
        lo = (f - 1) // 2
        hi = f - 1 - lo
        K = np.pad(K, [(0, 0), (0, 0)] + [(lo, hi)] * 4)
        Ho, Wo = H, W
    else:
        Ho, Wo = H - f + 1, W - f + 1
    out = np.zeros((A, A, Ho, Wo, Ho, Wo))
    for di in range(f):
        for dj in range(f):
            out += K[:, :, di:di + Ho, dj:dj + Wo, di:di + Ho, dj:dj + Wo]
    return out / (f * f)


def _act(name, K, T):
    q = np.einsum("aaijij->aij", K)
    qa = q[:, None, :, :, None, None]   # q(x, p)
    qb = q[None, :, None, None, :, :]   # q(x', p')
    if name in ("relu", "leaky_relu_0.1", "abs"):
        a, b = {"relu": (0., 1.), "leaky_relu_0.1": (0.1, 1.),
                "abs": (-1., 1.)}[name]
        s = np.sqrt(qa * qb)
        pos = s > 0
        cos = np.where(pos, K / np.where(pos, s, 1.0), 0.0)
        theta = np.where(pos, np.arccos(np.clip(cos, -1.0, 1.0)), np.pi / 2)
        dot = (a * a + b * b) / 2 - (a - b) ** 2 / (2 * np.pi) * theta
        Kn = (a - b) ** 2 / (2 * np.pi) * s * np.sin(theta) + dot * K
    elif name == "erf":
        P = (1 + 2 * qa) * (1 + 2 * qb)
        Kn = 2 / np.pi * np.arcsin(2 * K / np.sqrt(P))
        dot = 4 / np.pi / np.sqrt(P - 4 * K * K)
    elif name == "gelu":
        P1 = (1 + qa) * (1 + qb)
        P = qa * qb
        d2 = P1 - K * K
        d = np.sqrt(d2)
        ang = np.arcsin(K / np.sqrt(P1))
        Kn = K / 4 + ((K * K + P * d2) / (P1 * d) + K * ang) / (2 * np.pi)
        dot = (0.25 + ang / (2 * np.pi)
               + K / (2 * np.pi * d) * (1 / d2 + (1 - P) / P1 + 1))
    elif name == "sin":
        e = np.exp(-(qa + qb) / 2)
        Kn, dot = e * np.sinh(K), e * np.cosh(K)
    else:
        raise ValueError(name)
    return Kn, T * dot


def numpy_cntk(c, X):
    """(nngp, ntk) for all pairs of images in X (A,H,W,C), shape (A, A)."""
    f, P, ws, bs = c["filter"], c["padding"], c["w_std"], c["b_std"]
    std = c["parametrization"] == "standard"
    K = np.einsum("ahwc,bgvc->abhwgv", X, X) / X.shape[-1]
    T = np.zeros_like(K)
    cin = X.shape[-1]
    for _ in range(c["depth"]):
        Kc, Tc = _conv_pairs(K, f, P), _conv_pairs(T, f, P)
        if std:
            T = cin * f * f * Kc + ws ** 2 * Tc + 1.0   # +1: b_std is not None
            K = ws ** 2 * Kc + bs ** 2
        else:
            K = ws ** 2 * Kc + bs ** 2
            T = K + ws ** 2 * Tc
        K, T = _act(c["activation"], K, T)
        cin = c["conv_channels"]
    _, _, H, W, _, _ = K.shape
    if c["readout"] == "flatten":
        K = np.einsum("abijij->ab", K) / (H * W)
        T = np.einsum("abijij->ab", T) / (H * W)
        width = H * W * c["conv_channels"]
    else:
        K, T = K.mean(axis=(2, 3, 4, 5)), T.mean(axis=(2, 3, 4, 5))
        width = c["conv_channels"]
    if std:
        T = width * K + ws ** 2 * T + 1.0
        K = ws ** 2 * K + bs ** 2
    else:
        K = ws ** 2 * K + bs ** 2
        T = K + ws ** 2 * T
    return K, T


def crosscheck(r, x1, x2):
    K, T = numpy_cntk(r, np.concatenate([x1, x2]))
    mine = {"nngp_12": K[:3, 3:], "ntk_12": T[:3, 3:],
            "nngp_11": K[:3, :3], "ntk_11": T[:3, :3]}
    worst, sensitive = 0.0, []
    for key, m in mine.items():
        ref = np.asarray(r[key])
        d = np.abs(m - ref)
        rel = np.where(ref == 0, d, d / np.where(ref == 0, 1.0, np.abs(ref)))
        worst = max(worst, float(rel.max()))
        for i, j in zip(*np.nonzero(rel > 1e-13)):
            sensitive.append(f"{key}[{i}][{j}]")
    return worst, sensitive


def tolist(a):
    return [[float(v) for v in row] for row in np.asarray(a, np.float64)]


def main():
    out = {
        "neural_tangents_version": nt.__version__,
        "jax_version": jax.__version__,
        "input_formula": INPUT_FORMULA,
        "network": ("serial([Conv(8,(f,f),(1,1),P,W_std,b_std,param), act]"
                    "*depth, Flatten()|GlobalAvgPool(), "
                    "Dense(1,W_std,b_std,param))"),
        "roundoff_note": (
            "numpy_max_rel_diff: max |numpy - nt| / |nt| of an independent "
            "float64 numpy recursion (exact self-angle theta=0). "
            "roundoff_sensitive lists entries where it exceeds 1e-13: "
            "self/duplicate pairs under ReLU-family activations when nt's "
            "input covariance diagonal (tensordot) and variance (sum of "
            "squares) differ by 1 ulp (C>=2); sqrt(q q' - k^2) then amplifies "
            "the ulp to ~1e-10 relative in the NTK. Compare those entries "
            "with a loose (~1e-8) tolerance."),
        "cases": [],
    }
    for c in CASES:
        x1, x2 = make_inputs(c["height"], c["width"], c["channels"])
        _, _, kernel_fn = build(c)
        k12 = kernel_fn(jnp.asarray(x1), jnp.asarray(x2), ("nngp", "ntk"))
        k11 = kernel_fn(jnp.asarray(x1), None, ("nngp", "ntk"))
        r = dict(c)
        r.update(nngp_12=tolist(k12.nngp), ntk_12=tolist(k12.ntk),
                 nngp_11=tolist(k11.nngp), ntk_11=tolist(k11.ntk))
        assert np.asarray(k12.nngp).dtype == np.float64
        worst, sensitive = crosscheck(r, x1, x2)
        r["numpy_max_rel_diff"] = worst
        r["roundoff_sensitive"] = sensitive
        out["cases"].append(r)
        print(f'{c["name"]:28s} numpy-vs-nt max rel diff {worst:.2e}',
              sensitive)
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                        "cntk_reference.json")
    with open(path, "w") as f:
        json.dump(out, f, indent=1)
    print("wrote", path)


if __name__ == "__main__":
    main()
