"""The peer of `cargo bench --bench kernel_regression`: neural-tangents' analytic NNGP and NTK
regression at t = inf on Fashion-MNIST, timed in the same sitting.

Same case as the bench: a fully connected net with 3 hidden ReLU layers (weights W_std^2 = 2,
biases b_std = 0.05, readout W_std = 1), pixels / 255 standardised per pixel with the training
images' mean and standard deviation, one-hot targets (1 for the class, 0 otherwise), diagonal
regulariser 1e-4 times the mean diagonal, all 10,000 test images, the FIRST N training images of
the files. Kernels in float64 (jax_enable_x64), computed in batches of 1000 rows on the host, the
solve by numpy (LAPACK). Prints one line per kernel:
RESULT N=<n> <ntk|nngp> acc=<test accuracy> kernels_s=<both kernels> solve_s=<solve + predict>

usage: python benches/fashion_kernels_nt.py N [IDX_DIR]  (needs jax 0.4.23, neural-tangents 0.6.5)
"""
import gzip
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import jax  # noqa: E402
import neural_tangents as nt  # noqa: E402
import numpy as np  # noqa: E402
from neural_tangents import stax  # noqa: E402

jax.config.update("jax_enable_x64", True)


def read_idx(path):
    """An IDX file (gzip) as a numpy array: magic 0x0000 08 <ndim>, big-endian dims, bytes."""
    with gzip.open(path) as f:
        raw = f.read()
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(dims)


def main():
    n = int(sys.argv[1])
    root = sys.argv[2] if len(sys.argv) > 2 else "/usr/share/datasets/fashion-mnist"
    x_train = read_idx(f"{root}/train-images-idx3-ubyte.gz")[:n].reshape(n, -1) / 255.0
    y_train = read_idx(f"{root}/train-labels-idx1-ubyte.gz")[:n]
    x_test = read_idx(f"{root}/t10k-images-idx3-ubyte.gz").reshape(-1, 784) / 255.0
    y_test = read_idx(f"{root}/t10k-labels-idx1-ubyte.gz")
    mean, std = x_train.mean(0), x_train.std(0)
    std[std == 0] = 1.0  # constant pixels stay 0, as in the Rust reader
    a, b = (x_train - mean) / std, (x_test - mean) / std
    targets = np.eye(10)[y_train]
    layers = []
    for _ in range(3):
        layers += [stax.Dense(512, W_std=2**0.5, b_std=0.05), stax.Relu()]
    _, _, kernel_fn = stax.serial(*layers, stax.Dense(10, W_std=1.0, b_std=0.05))
    kernel_fn = nt.batch(kernel_fn, batch_size=1000, store_on_device=False)
    start = time.perf_counter()
    k_train = kernel_fn(a, None, ("nngp", "ntk"))
    k_test = kernel_fn(b, a, ("nngp", "ntk"))
    kernels_s = time.perf_counter() - start
    for name in ("ntk", "nngp"):
        k = np.asarray(getattr(k_train, name))
        kt = np.asarray(getattr(k_test, name))
        start = time.perf_counter()
        reg = 1e-4 * np.trace(k) / n
        coef = np.linalg.solve(k + reg * np.eye(n), targets)
        acc = float((np.argmax(kt @ coef, 1) == y_test).mean())
        solve_s = time.perf_counter() - start
        print(
            f"RESULT N={n} {name} acc={acc:.4f} kernels_s={kernels_s:.1f} solve_s={solve_s:.1f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
