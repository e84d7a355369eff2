"""Times neural-tangents' analytic CNTK on the case of `cargo bench --bench cntk`, in float64:
all 1797 digits (8x8x1, pixels standardised per column), train x train NNGP + NTK of
serial(Conv(64, (3, 3), SAME), Relu, Conv(64, (3, 3), SAME), Relu, Flatten, Dense(1)),
W_std = sqrt(2), b_std = 0.

Run with the environment described in tests/data/cntk_reference.py (neural-tangents 0.6.5,
jax 0.4.26 on CPU):  /tmp/ntenv/bin/python benches/cntk_neural_tangents.py [quick]
`quick` uses the first 400 images. Prints the median of two timed runs after one untimed
compile-and-run (batched 599 x 599 with nt.batch (1797 = 3·599), which is how neural-tangents computes a
kernel this size without running out of memory).
"""
import sys
import time

import jax

jax.config.update("jax_enable_x64", True)
import numpy as np  # noqa: E402
import neural_tangents as nt  # noqa: E402
from neural_tangents import stax  # noqa: E402

quick = "quick" in sys.argv[1:]
x = np.loadtxt("experiments/data/digits.csv", delimiter=",", skiprows=1)[:, :64]
if quick:
    x = x[:400]
sd = x.std(axis=0)
x = np.where(sd > 0, (x - x.mean(axis=0)) / np.where(sd > 0, sd, 1.0), 0.0)
x = x.reshape(-1, 8, 8, 1)
w = np.sqrt(2.0)
_, _, kernel_fn = stax.serial(
    stax.Conv(64, (3, 3), padding="SAME", W_std=w, b_std=0.0), stax.Relu(),
    stax.Conv(64, (3, 3), padding="SAME", W_std=w, b_std=0.0), stax.Relu(),
    stax.Flatten(), stax.Dense(1, W_std=w, b_std=0.0))
kernel_fn = nt.batch(jax.jit(kernel_fn, static_argnames="get"), batch_size=599 if not quick else 200)
kernel_fn(x, None, ("nngp", "ntk"))
times = []
for _ in range(2):
    t = time.perf_counter()
    k = kernel_fn(x, None, ("nngp", "ntk"))
    jax.block_until_ready(k)
    times.append(time.perf_counter() - t)
print(f"neural-tangents CNTK (NNGP + NTK), {len(x)} digits train x train: median {sorted(times)[1]:.2f} s "
      f"(runs {', '.join(f'{t:.2f}' for t in times)})")
