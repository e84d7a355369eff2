#!/usr/bin/env python3
"""Generate float64 reference NNGP/NTK values from neural-tangents for networks written as
`model.blocks` stacks: residual blocks (identity and projection shortcuts, a branch scale),
strided convolutions, average pooling and layer norm.

Writes ``tests/data/blocks_reference.json``. Environment used for the committed JSON
(CPU only, float64): Python 3.11, jax/jaxlib 0.4.23, neural-tangents 0.6.5, numpy 1.26.4, e.g.

    python3 -m venv ~/.cache/ntref-venv
    ~/.cache/ntref-venv/bin/pip install --no-deps jax==0.4.23 jaxlib==0.4.23 \
        neural-tangents==0.6.5 numpy==1.26.4 scipy==1.12.0 tensorflow==2.15.1 tf2jax==0.3.5 ...
    ~/.cache/ntref-venv/bin/python tests/reference/blocks_reference.py

Each case is a stack (the JSON form of the config's `model.blocks`, read by the Rust test with
the same parser as a config file) and the keys of the rest of the network; the product of the
keys is covered:

    dense stacks (3)  x parametrization {ntk, standard} x activation {relu, erf} x bias {on, off}
    conv stacks (3)   x readout {flatten, global_avg_pool} x the same three keys

A residual block maps to neural-tangents as
``serial(FanOut(2), parallel(branch, shortcut or Identity()), FanInSum())``. A branch scale
``s`` is written in neural-tangents by multiplying the W_std and b_std of the branch's last
layer by ``s``; that is the same network (and kernel) only under the ntk parametrization, so the
scaled stacks use ``scale = 1`` under the standard one (the Rust side multiplies the branch's
kernels by s^2, the exact kernel of `shortcut + s*branch`).

Inputs (deterministic, no RNG), NHWC for conv nets, (n, d) for dense ones:

    x1[n, ...] = sin(1.3*(n+1) + 0.7*i - 0.4*j + 0.9*c) + 0.1*c      n in 0..3
    x2[n, ...] = cos(0.5*(n+2) - 0.3*i + 0.8*j + 0.2*c)               n in 0..2
    then x2[1] = x1[0] (a duplicate) and x1[2] = 0 (a zero input),

with (i, j, c) = (row, column, channel) of an image, and (0, k, 0) for feature k of a vector.
For each case: kernel_fn(x1, x2) -> nngp_12, ntk_12 (3x2) and kernel_fn(x1, None) ->
nngp_11, ntk_11 (3x3). The readout is Dense(1) (after Flatten()/GlobalAvgPool() for conv nets).
"""
import itertools
import os

os.environ.setdefault("XLA_FLAGS",
                      "--xla_cpu_multi_thread_eigen=false "
                      "intra_op_parallelism_threads=1")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)

import json  # noqa: E402

import numpy as np  # noqa: E402
import neural_tangents as nt  # noqa: E402
from neural_tangents import stax  # noqa: E402

WIDTH = 8
W_STD = 1.4
B_STD = 0.3
DENSE_DIM = 5
IMAGE = (6, 5, 2)

RES = "residual"


def conv(f, stride=1, padding="same"):
    return {"layer": "conv", "filter": f, "stride": stride, "padding": padding}


def residual(branch, shortcut=None, scale=1.0):
    r = {"layer": RES, "branch": branch, "scale": scale}
    if shortcut is not None:
        r["shortcut"] = shortcut
    return r


DENSE_STACKS = {
    "residual_identity": lambda s: [
        "dense",
        residual(["activation", "dense", "activation", "dense"]),
        "activation",
    ],
    "residual_projection_scaled": lambda s: [
        "dense", "activation",
        residual(["dense", "activation", "dense"], {"layer": "dense"}, s),
        "activation",
    ],
    "layer_norm": lambda s: [
        "dense", "layer_norm", "activation", "dense",
        residual(["activation", "dense"]),
        "layer_norm", "activation",
    ],
}

CONV_STACKS = {
    "strided_projection": lambda s: [
        conv(3),
        residual(["activation", conv(3, 2), "activation", conv(3)],
                 conv(1, 2), s),
        "activation",
    ],
    "pooling": lambda s: [
        conv(3, padding="valid"), "activation",
        {"layer": "avg_pool", "window": 2, "stride": 1, "padding": "same"},
        conv(2, 2, "valid"), "activation",
    ],
    "layer_norm_residual": lambda s: [
        conv(3), "layer_norm",
        residual(["activation", conv(3)], None, s),
        {"layer": "avg_pool", "window": 2},
        "layer_norm", "activation",
    ],
}

ACTS = {"relu": stax.Relu, "erf": stax.Erf}


def affine(block, p):
    kw = dict(W_std=p["w_std"], b_std=p["b_std"],
              parameterization=p["parametrization"])
    if block == "dense":
        return stax.Dense(WIDTH, **kw)
    return stax.Conv(WIDTH, (block["filter"],) * 2,
                     strides=(block["stride"],) * 2,
                     padding=block["padding"].upper(), **kw)


def build_stack(blocks, p):
    layers = []
    for b in blocks:
        name = b if isinstance(b, str) else b["layer"]
        if name in ("dense", "conv"):
            layers.append(affine(b if name == "conv" else "dense", p))
        elif name == "activation":
            layers.append(ACTS[p["activation"]]())
        elif name == "layer_norm":
            layers.append(stax.LayerNorm())
        elif name == "avg_pool":
            w = b["window"]
            s = b.get("stride", w)
            layers.append(stax.AvgPool((w, w), strides=(s, s),
                                       padding=b.get("padding", "valid").upper()))
        elif name == RES:
            scale = b.get("scale", 1.0)
            branch = list(b["branch"])
            last = branch[-1]
            q = dict(p)
            if scale != 1.0:
                assert p["parametrization"] == "ntk"
                assert last == "dense" or (isinstance(last, dict) and last["layer"] == "conv")
                q["w_std"] = p["w_std"] * scale
                q["b_std"] = None if p["b_std"] is None else p["b_std"] * scale
            main = stax.serial(*build_stack(branch[:-1], p),
                               *build_stack([last], q)) if len(branch) > 1 \
                else stax.serial(*build_stack([last], q))
            short = stax.Identity() if "shortcut" not in b \
                else build_stack([b["shortcut"]], p)[0]
            layers.append(stax.serial(stax.FanOut(2), stax.parallel(main, short),
                                      stax.FanInSum()))
        else:
            raise ValueError(name)
    return layers


def inputs(shape):
    def grid(n):
        return np.meshgrid(np.arange(n), *[np.arange(k) for k in shape], indexing="ij")
    if len(shape) == 1:
        n, j = grid(3)
        x1 = np.sin(1.3 * (n + 1) - 0.4 * j)
        n, j = grid(2)
        x2 = np.cos(0.5 * (n + 2) + 0.8 * j)
    else:
        n, i, j, c = grid(3)
        x1 = np.sin(1.3 * (n + 1) + 0.7 * i - 0.4 * j + 0.9 * c) + 0.1 * c
        n, i, j, c = grid(2)
        x2 = np.cos(0.5 * (n + 2) - 0.3 * i + 0.8 * j + 0.2 * c)
    x2[1] = x1[0]
    x1[2] = 0.0
    return x1.astype(np.float64), x2.astype(np.float64)


def cases():
    keys = list(itertools.product(["ntk", "standard"], ["relu", "erf"], [True, False]))
    for kind, stacks in (("dense", DENSE_STACKS), ("conv", CONV_STACKS)):
        readouts = ["flatten"] if kind == "dense" else ["flatten", "global_avg_pool"]
        for (name, make), readout, (param, act, bias) in itertools.product(
                stacks.items(), readouts, keys):
            scale = 0.7 if param == "ntk" else 1.0
            yield dict(
                name=f"{kind}_{name}_{readout}_{param}_{act}_{'bias' if bias else 'nobias'}",
                architecture="mlp" if kind == "dense" else "conv",
                blocks=make(scale), readout=readout, parametrization=param,
                activation=act, bias=bias)


def main():
    out = []
    for c in cases():
        p = dict(w_std=W_STD, b_std=B_STD if c["bias"] else None,
                 parametrization=c["parametrization"], activation=c["activation"])
        layers = build_stack(c["blocks"], p)
        if c["architecture"] == "conv":
            layers.append(stax.Flatten() if c["readout"] == "flatten" else stax.GlobalAvgPool())
            shape = IMAGE
        else:
            shape = (DENSE_DIM,)
        layers.append(stax.Dense(1, W_std=W_STD, b_std=p["b_std"],
                                 parameterization=c["parametrization"]))
        _, _, kernel_fn = stax.serial(*layers)
        x1, x2 = inputs(shape)
        k12 = kernel_fn(x1, x2, ("nngp", "ntk"))
        k11 = kernel_fn(x1, None, ("nngp", "ntk"))
        c.update(nngp_12=np.asarray(k12.nngp).tolist(), ntk_12=np.asarray(k12.ntk).tolist(),
                 nngp_11=np.asarray(k11.nngp).tolist(), ntk_11=np.asarray(k11.ntk).tolist())
        out.append(c)
        print(c["name"], flush=True)
    doc = dict(
        neural_tangents_version=nt.__version__ if hasattr(nt, "__version__") else "0.6.5",
        jax_version=jax.__version__,
        width=WIDTH, w_std=W_STD, b_std=B_STD, dense_dim=DENSE_DIM, image=list(IMAGE),
        cases=out)
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data",
                        "blocks_reference.json")
    with open(path, "w") as f:
        json.dump(doc, f, indent=1)


if __name__ == "__main__":
    main()
