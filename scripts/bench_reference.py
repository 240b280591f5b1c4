"""Times numpy's percentile and scikit-learn's PCA(3) (float64) on the cube
written by `cargo bench --bench render_berlin`, for BENCHMARKS.md.

    python3 scripts/bench_reference.py /tmp/unidiff_bench/berlin_synth.bin
"""
import json
import sys
import time

import numpy as np
import sklearn
from sklearn.decomposition import PCA

H, W, B = 1723, 476, 244
path = sys.argv[1] if len(sys.argv) > 1 else "/tmp/unidiff_bench/berlin_synth.bin"
cube = np.fromfile(path, dtype="<f4").reshape(B, H * W)
band = cube[40].astype(np.float64)
X = np.ascontiguousarray(cube.T).astype(np.float64)  # pixels x bands, untimed

pct = []
for _ in range(7):
    t = time.perf_counter()
    p = np.percentile(band, [2, 98])
    pct.append(time.perf_counter() - t)

times = []
for _ in range(3):
    t = time.perf_counter()
    pca = PCA(n_components=3)
    scores = pca.fit_transform(X)
    times.append(time.perf_counter() - t)

try:
    from threadpoolctl import threadpool_info
    blas = [(i.get("internal_api"), i.get("num_threads"), i.get("architecture")) for i in threadpool_info()]
except Exception:  # noqa: BLE001
    blas = []
print(json.dumps({
    "numpy": np.__version__, "sklearn": sklearn.__version__, "blas": blas,
    "percentile_band40_s": sorted(pct)[len(pct) // 2], "percentile_band40": p.tolist(),
    "pca_fit_transform_s": sorted(times)[len(times) // 2],
    "pca_explained_variance_ratio": pca.explained_variance_ratio_.tolist(),
    "svd_solver": getattr(pca, "_fit_svd_solver", None),
}))
