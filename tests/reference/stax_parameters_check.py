"""Loads a run's saved parameters (`outputs.save_parameters = true`) into neural-tangents' stax
and compares stax's outputs on the run's test inputs with the network's outputs in the run's
predictions.csv. For ReLU MLPs and conv nets (SAME padding, flatten readout) in the ntk
parametrization with W_std, b_std as in the config.

    python3 stax_parameters_check.py RUN_DIR {mlp|conv} DEPTH W_STD B_STD [H W C FILTER]

Prints the largest relative difference (relative to the largest output).
"""
import csv
import sys

import numpy as np
from jax import config as jax_config

jax_config.update("jax_enable_x64", True)
from neural_tangents import stax  # noqa: E402

run, kind, depth = sys.argv[1], sys.argv[2], int(sys.argv[3])
w_std, b_std = float(sys.argv[4]), float(sys.argv[5])
z = np.load(f"{run}/parameters_final.npz")
rows = list(csv.reader(open(f"{run}/predictions.csv")))
head, body = rows[0], rows[1:]
first = head.index("output") + 1
target = head.index("target")
net = head.index("network")
test = [r for r in body if r[0] == "test"]
k = 1 + max(int(r[2]) for r in test)
x = np.array([[float(v) for v in r[first:target]] for r in test if r[2] == "0"])
want = np.array([float(r[net]) for r in test]).reshape(-1, k)

layers, params = [], []
if kind == "mlp":
    for l in range(depth):
        layers += [stax.Dense(z[f"layer{l}_W"].shape[1], W_std=w_std, b_std=b_std), stax.Relu()]
        params += [(z[f"layer{l}_W"], z[f"layer{l}_b"]), ()]
    inputs = x
else:
    h, w, c, f = (int(v) for v in sys.argv[6:10])
    for l in range(depth):
        layers += [stax.Conv(z[f"layer{l}_W"].shape[3], (f, f), padding="SAME",
                             W_std=w_std, b_std=b_std), stax.Relu()]
        params += [(z[f"layer{l}_W"], z[f"layer{l}_b"]), ()]
    layers += [stax.Flatten()]
    params += [()]
    inputs = x.reshape(-1, h, w, c)
layers += [stax.Dense(k, W_std=w_std, b_std=b_std)]
params += [(z[f"layer{depth}_W"], z[f"layer{depth}_b"])]
_, apply_fn, _ = stax.serial(*layers)
got = np.asarray(apply_fn(params, inputs))
print(f"{kind}: max |stax - run| / max |run| = {np.abs(got - want).max() / np.abs(want).max():.3e}")
