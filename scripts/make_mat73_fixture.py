"""Writes the small MATLAB v7.3 (HDF5) test files of tests/fixtures/mat73/.

MATLAB v7.3 files are HDF5 files with a 512-byte user block holding the
MATLAB header; arrays are stored with their dimensions reversed (MATLAB is
column-major). Values follow simple formulas that the tests recompute:
  TrainImage[r, c]    = (r * 5 + c) % 4                (6 x 5, uint8)
  data_HS_LR[r, c, b] = r * 100 + c * 10 + b           (4 x 5 x 3, float32)
Requires numpy and h5py.
"""
import sys
import h5py
import numpy as np

HEADER = (b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Fri Nov 27 15:00:00 2026 "
          b"HDF5 schema 1.00 .").ljust(116, b" ") + b"\x00" * 8 + b"\x00\x02" + b"IM"


def write(path, name, array, matlab_class):
    with h5py.File(path, "w", userblock_size=512) as f:
        f.create_dataset(name, data=array.T)
        f[name].attrs["MATLAB_class"] = np.bytes_(matlab_class)
    with open(path, "r+b") as f:
        f.write(HEADER.ljust(512, b"\x00"))


out = sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures/mat73"
r, c = np.meshgrid(np.arange(6), np.arange(5), indexing="ij")
write(f"{out}/labels73.mat", "TrainImage", ((r * 5 + c) % 4).astype(np.uint8), "uint8")
r, c, b = np.meshgrid(np.arange(4), np.arange(5), np.arange(3), indexing="ij")
write(f"{out}/cube73.mat", "data_HS_LR", (r * 100 + c * 10 + b).astype(np.float32), "single")
