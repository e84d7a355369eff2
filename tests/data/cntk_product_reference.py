#!/usr/bin/env python3
"""Reference CNTK values (NNGP and NTK, float64) from neural-tangents 0.6.5 over the full
product of the convolutional network's kernel keys:

    activation  x depth x padding x readout x parametrization x bias (off / b_std = 0 / b_std = 0.7)
    8             3       2         2         2                 3          = 576 cases

Writes ``cntk_product_reference.json`` next to this script. Same environment, network and input
formula as ``cntk_reference.py`` (see its docstring for the pinned versions), except:

* one input channel (C = 1), 8x7 images, 3x3 filters, 8 conv channels, W_std = 1.5;
* ``bias = off`` builds every layer with ``b_std=None`` (no bias parameters at all), which under
  the standard parametrization also drops the ``+1`` a bias adds to the NTK;
* activations Relu, LeakyRelu(0.1), Abs, Erf, Gelu, Sin, Cos, Identity (every activation of the
  simulator with a closed form in neural-tangents; tanh and softplus have none there).

The test (tests/cntk.rs) compares every entry at 1e-12 of the matrix's largest entry, except
under ReLU-type activations the pairs of images that share identical patches (x2[1] = x1[0], and
x1[1] is x1[0] shifted by 3 rows and 2 columns since 0.7*3 - 0.4*2 = 1.3): there the angle
between two positions is zero and neural-tangents' own round-off (cntk_conventions.md section 7)
reaches 5e-11, so those entries are compared at 1e-8.
"""
import itertools
import json
import os
import sys

os.environ.setdefault("XLA_FLAGS",
                      "--xla_cpu_multi_thread_eigen=false "
                      "intra_op_parallelism_threads=1")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import neural_tangents as nt  # noqa: E402
from neural_tangents import stax  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cntk_reference import INPUT_FORMULA, make_inputs  # noqa: E402

ACTS = {
    "relu": stax.Relu,
    "leaky_relu_0.1": lambda: stax.LeakyRelu(0.1),
    "abs": stax.Abs,
    "erf": stax.Erf,
    "gelu": stax.Gelu,
    "sin": stax.Sin,
    "cos": stax.Cos,
    "identity": stax.Identity,
}
BIASES = {"off": None, "b0": 0.0, "b0.7": 0.7}
H, W, C, F, CHANNELS, W_STD = 8, 7, 1, 3, 8, 1.5


def build(act, depth, padding, readout, param, b_std):
    layers = []
    for _ in range(depth):
        layers += [stax.Conv(CHANNELS, (F, F), strides=(1, 1),
                             padding=padding.upper(), W_std=W_STD, b_std=b_std,
                             parameterization=param),
                   ACTS[act]()]
    layers.append(stax.Flatten() if readout == "flatten"
                  else stax.GlobalAvgPool())
    layers.append(stax.Dense(1, W_std=W_STD, b_std=b_std,
                             parameterization=param))
    return stax.serial(*layers)


def tolist(a):
    return [[float(v) for v in row] for row in np.asarray(a, np.float64)]


def main():
    x1, x2 = make_inputs(H, W, C)
    out = {
        "neural_tangents_version": nt.__version__,
        "jax_version": jax.__version__,
        "input_formula": INPUT_FORMULA,
        "height": H, "width": W, "channels": C, "filter": F,
        "conv_channels": CHANNELS, "w_std": W_STD,
        "cases": [],
    }
    for act, depth, padding, readout, param, bias in itertools.product(
            ACTS, (1, 2, 3), ("same", "valid"), ("flatten", "global_avg_pool"),
            ("ntk", "standard"), BIASES):
        _, _, kernel_fn = build(act, depth, padding, readout, param,
                                BIASES[bias])
        k12 = kernel_fn(jnp.asarray(x1), jnp.asarray(x2), ("nngp", "ntk"))
        k11 = kernel_fn(jnp.asarray(x1), None, ("nngp", "ntk"))
        assert np.asarray(k12.ntk).dtype == np.float64
        out["cases"].append(dict(
            activation=act, depth=depth, padding=padding, readout=readout,
            parametrization=param, bias=bias != "off",
            b_std=BIASES[bias] or 0.0,
            nngp_12=tolist(k12.nngp), ntk_12=tolist(k12.ntk),
            nngp_11=tolist(k11.nngp), ntk_11=tolist(k11.ntk)))
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                        "cntk_product_reference.json")
    with open(path, "w") as f:
        json.dump(out, f, indent=0)
    print("wrote", len(out["cases"]), "cases to", path)


if __name__ == "__main__":
    main()
