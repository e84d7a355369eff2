#!/usr/bin/env python3
"""MLP NTK against the CNTK on the digits split, at equal training schedules and at t = infinity.

The digits tables in docs/conv-nets.md compare each kernel regression "at the network's time": the MLP's
kernel under the MLP's schedule (eta = 0.5 eta_c, no momentum, 300 steps) and the CNTK under the
conv net's (eta = 0.5 eta_c, heavy-ball momentum 0.9, 300 steps, about 19x the effective
time). That compares training budgets as much as architectures. This script recomputes, with
neural-tangents 0.6.5 in float64 on the runs' own split (read back from both committed runs'
predictions.csv, which must hold the same images):

  * each kernel under its own run's schedule (recorded absolute eta; must reproduce the runs'
    kernel_analytic accuracies);
  * both kernels under the MLP's schedule and both under the conv net's schedule, the schedule
    expressed relative to each kernel's own edge (eta = 0.5 * 2(1+mu) N K / lambda_max(Theta),
    the same mu and step count);
  * both at t = infinity (Theta^-1 y).

Discrete heavy-ball gradient descent on L = 1/2 mean (f - y)^2 of the linear model with kernel
Theta (the simulator's kernel track, outputs centred so f0 = 0): per eigenvalue lambda of Theta
the train residual obeys r_{k+1} = (1 + mu - eta lambda / (N K)) r_k - mu r_{k-1}, r_{-1} = r_0,
and test outputs move by Theta_test,train Theta^-1 times the train outputs' change.

Run from the repository root with neural-tangents installed (see tests/data/cntk_reference.py
for the pinned environment):
    python tests/reference/digits_inductive_bias.py

Output of 2026-12-05 (neural-tangents 0.6.5, jax 0.4.23; 30 s on 2 cores):
    mlp: own schedule accuracy 0.9531 (the run's kernel track 0.9531, max |diff| 1.2e-14)
    cnn: own schedule accuracy 0.9777 (the run's kernel track 0.9777, max |diff| 1.2e-13)
    | schedule | MLP NTK test accuracy (loss) | CNTK test accuracy (loss) |
    | MLP's: 0.5 eta_c, no momentum, 300 steps | 95.39 % (0.01025) | 95.55 % (0.01128) |
    | conv net's: 0.5 eta_c, momentum 0.9, 300 steps | 97.54 % (0.00550) | 97.77 % (0.00593) |
    | t = infinity | 97.62 % (0.00537) | 97.85 % (0.00567) |
"""
import csv
import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)
import numpy as np  # noqa: E402
import neural_tangents as nt  # noqa: E402
from neural_tangents import stax  # noqa: E402

RUNS = {"mlp": "results/digits/20261205T022427Z-seed0",
        "cnn": "results/digits_cnn/20261203T201256Z-seed0"}
W, B = np.sqrt(2.0), 0.1


def read(run):
    rows = list(csv.reader(open(os.path.join(run, "predictions.csv"))))
    h = rows[0]
    px = [h.index(f"p{i}") for i in range(64)]
    ci, cs, co, ct, ck = (h.index(k) for k in
                          ("index", "split", "output", "target", "kernel_analytic"))
    data = {}
    for r in rows[1:]:
        d = data.setdefault((r[cs], int(r[ci])), {"x": [float(r[p]) for p in px],
                                                   "y": {}, "k": {}})
        d["y"][int(r[co])] = float(r[ct])
        d["k"][int(r[co])] = float(r[ck])

    def split(s):
        keys = sorted(k for k in data if k[0] == s)
        return (np.array([data[k]["x"] for k in keys]),
                np.array([[data[k]["y"][o] for o in range(10)] for k in keys]),
                np.array([[data[k]["k"][o] for o in range(10)] for k in keys]))
    return split("train"), split("test")


def kernels(name, xtr, xte):
    if name == "mlp":
        layers = [stax.Dense(1024, W_std=W, b_std=B), stax.Relu(),
                  stax.Dense(1024, W_std=W, b_std=B), stax.Relu(),
                  stax.Dense(1, W_std=W, b_std=B)]
    else:
        layers = [stax.Conv(128, (3, 3), padding="SAME", W_std=W, b_std=B), stax.Relu(),
                  stax.Conv(128, (3, 3), padding="SAME", W_std=W, b_std=B), stax.Relu(),
                  stax.Flatten(), stax.Dense(1, W_std=W, b_std=B)]
        xtr, xte = xtr.reshape(-1, 8, 8, 1), xte.reshape(-1, 8, 8, 1)
    kfn = stax.serial(*layers)[2]
    return np.asarray(kfn(xtr, None, "ntk")), np.asarray(kfn(xte, xtr, "ntk"))


def heavy_ball(ktt, kte, y, eta, mu, steps):
    """Test outputs after `steps` of heavy-ball GD on the kernel model from f0 = 0."""
    n, k = y.shape
    lam, v = np.linalg.eigh(ktt)
    r_prev = r = v.T @ (-y)          # residual f - y in the eigenbasis
    a = eta * lam / (n * k)
    for _ in range(steps):
        r, r_prev = (1 + mu - a)[:, None] * r - mu * r_prev, r
    f_train = y + v @ r
    return kte @ np.linalg.solve(ktt, f_train)


def accuracy(f, y):
    return float(np.mean(f.argmax(1) == y.argmax(1)))


def main():
    (xtr, ytr, _), (xte, yte, _) = read(RUNS["mlp"])
    (xtr2, ytr2, _), (xte2, yte2, _) = read(RUNS["cnn"])
    assert np.array_equal(xtr, xtr2) and np.array_equal(xte, xte2), "different splits"
    assert np.array_equal(ytr, ytr2) and np.array_equal(yte, yte2)
    schedules = {"mlp": (10.872517949315947, 0.0, 300), "cnn": (20.8771673046446, 0.9, 300)}
    n, k = ytr.shape
    res = {}
    for name in ("mlp", "cnn"):
        ktt, kte = kernels(name, xtr, xte)
        lam_max = np.linalg.eigvalsh(ktt)[-1]
        recorded = read(RUNS[name])[1][2]
        own = heavy_ball(ktt, kte, ytr, *schedules[name])
        print(f"{name}: own schedule accuracy {accuracy(own, yte):.4f} (the run's kernel track "
              f"{accuracy(recorded, yte):.4f}, max |diff| {np.abs(own - recorded).max():.1e})")
        for sched, (_, mu, steps) in schedules.items():
            eta = 0.5 * 2 * (1 + mu) * n * k / lam_max
            f = heavy_ball(ktt, kte, ytr, eta, mu, steps)
            res[(name, sched)] = (accuracy(f, yte), 0.5 * np.mean((f - yte) ** 2))
        f = kte @ np.linalg.solve(ktt, ytr)
        res[(name, "inf")] = (accuracy(f, yte), 0.5 * np.mean((f - yte) ** 2))
    print("| schedule | MLP NTK test accuracy (loss) | CNTK test accuracy (loss) |")
    print("|---|---|---|")
    for sched, label in (("mlp", "MLP's: 0.5 eta_c, no momentum, 300 steps"),
                         ("cnn", "conv net's: 0.5 eta_c, momentum 0.9, 300 steps"),
                         ("inf", "t = infinity")):
        a, b = res[("mlp", sched)], res[("cnn", sched)]
        print(f"| {label} | {100*a[0]:.2f} % ({a[1]:.5f}) | {100*b[0]:.2f} % ({b[1]:.5f}) |")


if __name__ == "__main__":
    main()
