# Not run by `cargo test` (needs neural-tangents and JAX from PyPI). Usage: run an experiment like
# experiments/ensemble_sine.toml with [kernel] time = "continuous", diag_reg = 0.01 and
# save_kernels = true, then `python nt_ensemble_gp.py <run dir>`. Measured 2026-11-28: max relative
# difference 6e-15 (mean) and 2e-13 (covariance) for get = ntk, 2e-15 and 4e-13 for nngp.
#
# Independent check: neural-tangents 0.6.5 gradient_descent_mse_ensemble on the same data and
# architecture against ntk-dynamics' GP files (continuous time, diag_reg 0.01 relative).
import json, csv, sys
import numpy as np
import jax; jax.config.update("jax_enable_x64", True)
import neural_tangents as nt
from neural_tangents import stax
d = sys.argv[1]
rows = list(csv.DictReader(open(f"{d}/ensemble.csv")))
xtr = np.array([[float(r["x"])] for r in rows if r["split"] == "train"])
ytr = np.array([[float(r["target"])] for r in rows if r["split"] == "train"])
xte = np.array([[float(r["x"])] for r in rows if r["split"] == "test"])
s = json.load(open(f"{d}/summary.json"))
lr = s["learning_rate"]; steps = s["final_step"]
W, b = np.sqrt(2.0), 1.0
_, _, kfn = stax.serial(stax.Dense(1024, W, b), stax.Relu(), stax.Dense(1024, W, b), stax.Relu(), stax.Dense(1, W, b))
pred = nt.predict.gradient_descent_mse_ensemble(kfn, xtr, ytr, learning_rate=lr, diag_reg=0.01)
for get in ["ntk", "nngp"]:
    for t in [steps, None]:
        mean, cov = pred(t=t, x_test=xte, get=get, compute_cov=True)
        if t is None:
            continue  # the files hold the final step
        ours_m = np.load(f"{d}/kernels/{get}_gp_mean_test.npy")
        ours_c = np.load(f"{d}/kernels/{get}_gp_cov_test.npy")
        em = np.abs(ours_m - np.asarray(mean)).max() / np.abs(mean).max()
        ec = np.abs(ours_c - np.asarray(cov)).max() / np.abs(cov).max()
        print(f"{get} t={t}: max rel diff mean {em:.2e}, cov {ec:.2e}")
