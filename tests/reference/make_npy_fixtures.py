"""Writes the NumPy fixtures of tests/npy.rs with numpy itself (numpy.save, numpy.savez,
numpy.savez_compressed), so that the reader is tested on files numpy wrote, not only on files the
tests write by hand. Every value follows a closed form the test recomputes:

    x[i, h, w, c] = 100*i + 10*h + w + 0.5*c        (images, NHWC)
    y[i]          = i mod 3                          (labels)
    f[i, j]       = 10*i + j                         (a Fortran-order matrix)

Run from the repository root:  python3 tests/reference/make_npy_fixtures.py
"""
import numpy as np

OUT = "tests/data/npy/"


def images(n, offset):
    i, h, w, c = np.meshgrid(np.arange(n) + offset, np.arange(4), np.arange(4), np.arange(2),
                             indexing="ij")
    return (100 * i + 10 * h + w + 0.5 * c).astype(np.float32)


def labels(n, offset):
    return ((np.arange(n) + offset) % 3).astype(np.int64)


np.savez_compressed(OUT + "images.npz", x=images(6, 0), y=labels(6, 0),
                    x_test=images(3, 6), y_test=labels(3, 6))
f = np.asfortranarray((10 * np.arange(5)[:, None] + np.arange(3)[None, :]).astype(np.float64))
assert f.flags["F_CONTIGUOUS"] and not f.flags["C_CONTIGUOUS"]
np.save(OUT + "fortran.npy", f)
np.save(OUT + "big_endian.npy", (10 * np.arange(5)[:, None] + np.arange(3)[None, :]).astype(">f8"))
np.save(OUT + "labels_u8.npy", (np.arange(5) % 3).astype(np.uint8))
np.save(OUT + "labels_bool.npy", (np.arange(5) % 2).astype(bool))
np.save(OUT + "strings.npy", np.array(["a", "bb", "c", "d", "e"]))
np.savez(OUT + "plain.npz", features=f, target=(np.arange(5) % 3).astype(np.int32))
