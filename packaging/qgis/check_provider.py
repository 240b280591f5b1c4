#!/usr/bin/env python3
"""Checks the QGIS Processing provider with QGIS's own qgis_process: it is
listed with its seven algorithms, and each algorithm, run on the demo scene
and on labels this script makes, writes the same files as the command line
given the same inputs (rasters byte for byte, tables and JSON with paths and
timings set aside, vector layers feature by feature). Then, inside one QGIS
process: a cancelled predict leaves no output, a layer that is not a file is
refused with the reason, a missing binary is said.

    /usr/bin/python3 packaging/qgis/check_provider.py target/debug/unidiff-studio

Needs Debian's qgis and python3-qgis; says so and exits 0 without them."""

import json
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
DEMO = os.path.join(ROOT, "assets", "demo")
S2 = os.path.join(DEMO, "Spain_7370579_S2Hand.tif")
S1 = os.path.join(DEMO, "Spain_7370579_S1Hand.tif")
MASK = os.path.join(DEMO, "Spain_7370579_LabelHand.tif")
ALGORITHMS = ["classify", "layergroup", "postprocess", "predict", "render", "sample", "stats", "vectorize"]
VOLATILE = {"peak_rss_mib", "command", "threads", "outputs", "files"}


def qgis_process():
    """Debian's wrapper passes --noversioncheck, which 3.22's qgis_process
    does not know: its binary is called directly where it is."""
    for name in ("qgis_process.bin", "qgis_process"):
        found = shutil.which(name)
        if found:
            return found
    return None


def run(command, env, expect_ok=True):
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if expect_ok and done.returncode != 0:
        sys.exit(f"FAILED: {' '.join(command)}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return done


def normalised(value, outs):
    """JSON without what differs between two runs of the same thing: the
    output folders' paths, timings, the command line."""
    if isinstance(value, dict):
        return {
            k: normalised(v, outs)
            for k, v in value.items()
            if k not in VOLATILE and "seconds" not in k
        }
    if isinstance(value, list):
        return [normalised(v, outs) for v in value]
    if isinstance(value, str):
        for out in outs:
            value = value.replace(out, "<out>")
    return value


def vector_rows(path, layer):
    from osgeo import ogr

    source = ogr.Open(path)
    assert source is not None, path
    rows = []
    for feature in source.GetLayerByName(layer):
        items = feature.items()
        geometry = feature.GetGeometryRef()
        rows.append((sorted(items.items()), geometry.ExportToWkt() if geometry else None))
    return sorted(rows, key=repr)


def files_under(folder):
    return sorted(
        os.path.relpath(os.path.join(d, f), folder) for d, _, fs in os.walk(folder) for f in fs
    )


def same_file(a, b, outs, vector_layers):
    if a.endswith(".json"):
        with open(a) as fa, open(b) as fb:
            ja, jb = json.load(fa), json.load(fb)
        assert normalised(ja, outs) == normalised(jb, outs), a
    elif a.endswith(".gpkg"):
        for layer in vector_layers:
            assert vector_rows(a, layer) == vector_rows(b, layer), (a, layer)
    elif not a.endswith(".aux.xml"):
        with open(a, "rb") as fa, open(b, "rb") as fb:
            assert fa.read() == fb.read(), f"{a} differs from {b}"


def same_outputs(ours, theirs, vector_layers=()):
    """The file or every file under the folder `ours` equals `theirs`'."""
    outs = [ours, theirs]
    if os.path.isfile(ours):
        same_file(ours, theirs, outs, vector_layers)
        return 1
    ours_files, theirs_files = files_under(ours), files_under(theirs)
    assert ours_files == theirs_files, (ours_files, theirs_files)
    for rel in ours_files:
        same_file(os.path.join(ours, rel), os.path.join(theirs, rel), outs, vector_layers)
    return len(ours_files)


def make_labels(work):
    """Training labels (every 61st labelled pixel of the demo's water mask)
    and test labels (the whole mask), classes 1 and 2, on the scene's grid."""
    from osgeo import gdal

    mask = gdal.Open(MASK)
    values = mask.GetRasterBand(1).ReadAsArray().astype("int16") + 1
    values[values < 1] = 0
    train = values.copy()
    flat = train.reshape(-1)
    labelled = flat.nonzero()[0]
    keep = set(labelled[::61].tolist())
    for i in labelled:
        if i not in keep:
            flat[i] = 0
    paths = {}
    for name, data in (("train", train), ("test", values)):
        path = os.path.join(work, f"{name} labels é.tif")
        out = gdal.GetDriverByName("GTiff").Create(path, mask.RasterXSize, mask.RasterYSize, 1, gdal.GDT_Byte)
        out.SetGeoTransform(mask.GetGeoTransform())
        out.SetProjection(mask.GetProjection())
        out.GetRasterBand(1).WriteArray(data.astype("uint8"))
        out = None
        paths[name] = path
    return paths


def compare(name, qgis, cli, env, algorithm, params, command, vector_layers=(), out_key="OUTPUT"):
    ours = os.path.join(qgis, name)
    theirs = os.path.join(cli, name)
    if name.endswith((".gpkg", ".tif")):
        os.makedirs(qgis, exist_ok=True)
    args = [qgis_process(), "--json", "run", f"unidiff:{algorithm}", "--"]
    args += [f"{k}={v}" for k, v in params.items()] + [f"{out_key}={ours}"]
    result = json.loads(run(args, env).stdout)["results"]
    run(command + ["--out", theirs], env)
    files = same_outputs(ours, theirs, vector_layers)
    print(f"[ok] unidiff:{algorithm} writes what `{command[1]}` writes ({files} files)")
    return result


def check_algorithms(binary, env, work):
    labels = make_labels(work)
    qgis = os.path.join(work, "from qgis")
    cli = os.path.join(work, "from the cli")
    os.makedirs(cli)
    b = binary
    model_q = os.path.join(work, "qgis.udmodel")
    model_c = os.path.join(work, "cli.udmodel")
    common = ["--backbone", "tiny-random", "--t", "0", "--stride", "32", "--seed", "0", "--trees", "20"]
    compare(
        "run", qgis, cli, env, "classify",
        {"HSI": S2, "SAR": S1, "TRAIN_LABELS": labels["train"], "TEST_LABELS": labels["test"],
         "T": 0, "STRIDE": 32, "TREES": 20, "SAVE_MODEL": model_q},
        [b, "run", "--hsi", S2, "--sar", S1, "--train-labels", labels["train"],
         "--test-labels", labels["test"], "--save-model", model_c] + common,
        vector_layers=("landcover",),
    )
    classmap = os.path.join(cli, "run", "classmap.tif")
    compare(
        "predict", qgis, cli, env, "predict",
        {"MODEL": model_c, "HSI": S2, "SAR": S1, "TILE": 200},
        [b, "predict", "--model", model_c, "--hsi", S2, "--sar", S1, "--tile", "200"],
        vector_layers=("landcover",),
    )
    from osgeo import gdal

    def pixels(path):
        dataset = gdal.Open(path)  # kept while its band is read
        return dataset.GetRasterBand(1).ReadAsArray().tolist()

    assert pixels(os.path.join(qgis, "predict", "classmap.tif")) == pixels(classmap), (
        "predict with the saved model maps the scene as the run did"
    )
    compare(
        "stats", qgis, cli, env, "stats",
        {"CLASSMAP": classmap, "REFERENCE": labels["test"]},
        [b, "stats", "--classmap", classmap, "--reference", labels["test"]],
    )
    compare(
        "sample.gpkg", qgis, cli, env, "sample",
        {"CLASSMAP": classmap, "PER_CLASS": 30, "SEED": 3},
        [b, "sample", "--classmap", classmap, "--per-class", "30", "--seed", "3"],
        vector_layers=("sample", "design"),
    )
    compare(
        "cleaned.tif", qgis, cli, env, "postprocess",
        {"CLASSMAP": classmap, "SIEVE": 12, "CONNECTIVITY": 1, "MAJORITY": 3},
        [b, "postprocess", "--classmap", classmap, "--sieve", "12", "--connectivity", "8", "--majority", "3"],
    )
    compare(
        "polygons.gpkg", qgis, cli, env, "vectorize",
        {"CLASSMAP": classmap, "DISSOLVE": "true"},
        [b, "vectorize", "--classmap", classmap, "--dissolve"],
        vector_layers=("landcover", "landcover_dissolved"),
    )
    compare(
        "render", qgis, cli, env, "render",
        {"HSI": S2, "SAR": S1, "RGB_BANDS": "3,2,1"},
        [b, "render", "--hsi", S2, "--sar", S1, "--rgb-bands", "3,2,1"],
    )
    return model_c


def check_bad_input(env, work):
    # A missing binary: said, with where to set it.
    bad = dict(env, UNIDIFF_STUDIO_BIN=os.path.join(work, "no such binary"))
    done = run(
        [qgis_process(), "run", "unidiff:vectorize", "--", f"CLASSMAP={MASK}", f"OUTPUT={work}/x.gpkg"],
        bad, expect_ok=False,
    )
    text = done.stdout + done.stderr
    assert done.returncode != 0 and "not an executable file" in text, text
    # The binary's own message: a model that is not one.
    fake = os.path.join(work, "not a model.udmodel")
    with open(fake, "w") as f:
        f.write("not a model")
    done = run(
        [qgis_process(), "run", "unidiff:predict", "--", f"MODEL={fake}", f"HSI={S2}", f"OUTPUT={work}/p"],
        env, expect_ok=False,
    )
    text = done.stdout + done.stderr
    assert done.returncode != 0 and "not a model.udmodel" in text and "predict failed" in text, text
    assert not os.path.exists(os.path.join(work, "p", "classmap.tif"))
    # Layers on different grids: the binary's grid message, shown.
    from osgeo import gdal

    crop = os.path.join(work, "crop é.tif")
    gdal.Translate(crop, MASK, srcWin=[0, 0, 100, 80])
    done = run(
        [qgis_process(), "run", "unidiff:stats", "--", f"CLASSMAP={MASK}", f"REFERENCE={crop}", f"OUTPUT={work}/s"],
        env, expect_ok=False,
    )
    text = done.stdout + done.stderr
    assert done.returncode != 0 and "stats failed" in text and "100" in text and "512" in text, text
    assert not os.path.exists(os.path.join(work, "s", "accuracy.json"))
    print("[ok] a missing binary, a file that is not a model and layers on other grids are said")


IN_QGIS = r'''
import os, sys, threading
from qgis.core import (QgsApplication, QgsProcessingContext, QgsProcessingFeedback,
                       QgsProcessingException, QgsRasterLayer, QgsVectorLayer)
app = QgsApplication([], False)
app.initQgis()
sys.path.insert(0, "/usr/share/qgis/python/plugins")
sys.path.insert(0, sys.argv[1])
from processing.core.Processing import Processing
Processing.initialize()
import processing
from unidiff_studio.provider import UnidiffProvider
provider = UnidiffProvider()  # kept: the registry does not own a Python provider
assert QgsApplication.processingRegistry().addProvider(provider)
model, s2, s1, work = sys.argv[2:6]

class CancelAtProgress(QgsProcessingFeedback):
    def setProgress(self, p):
        super().setProgress(p)
        if p > 0 and not self.isCanceled():
            self.cancel()

out = os.path.join(work, "cancelled")
try:
    processing.run("unidiff:predict", {"MODEL": model, "HSI": s2, "SAR": s1, "TILE": 64,
                   "OUTPUT": out}, feedback=CancelAtProgress())
    sys.exit("a cancelled predict finished")
except QgsProcessingException as e:
    assert "cancelled" in str(e), str(e)
# predict's folder holds a job array's shards, so it may exist; without
# predict.json it is unfinished, and nothing half-written is left in it.
left = os.listdir(out) if os.path.isdir(out) else []
assert left == [], left
assert [f for f in os.listdir(work) if f.startswith(".cancelled")] == []
print("[ok] a cancelled predict leaves no output")

memory = QgsVectorLayer("Point?crs=EPSG:4326&field=reference:integer", "points", "memory")
try:
    processing.run("unidiff:stats", {"CLASSMAP": s1, "REFERENCE": memory, "OUTPUT": os.path.join(work, "m")})
    sys.exit("a memory layer was taken")
except QgsProcessingException as e:
    assert "not a file on disk" in str(e), str(e)
print("[ok] a memory layer is refused with the reason")

# A results folder as a layer group: results.qlr with paths relative to the
# folder, added to the project, and read again from a moved copy.
from qgis.core import QgsLayerDefinition, QgsProject
import shutil
run_folder = os.path.join(work, "from the cli", "run")
project = QgsProject.instance()
context = QgsProcessingContext()
context.setProject(project)
result = processing.run("unidiff:layergroup", {"FOLDER": run_folder}, context=context)
qlr = result["OUTPUT"]
assert qlr == os.path.join(run_folder, "results.qlr"), qlr
names = sorted(l.name() for l in project.mapLayers().values())
assert "class map" in names and "filter-rf class map" in names and "polygons" in names, names
shown = [n.name() for n in project.layerTreeRoot().findLayers() if n.isVisible()]
assert shown == ["class map"], shown
moved = os.path.join(work, "moved results")
shutil.copytree(run_folder, moved)
other = QgsProject()
ok, message = QgsLayerDefinition.loadLayerDefinition(
    os.path.join(moved, "results.qlr"), other, other.layerTreeRoot())
assert ok, message
sources = sorted(l.source() for l in other.mapLayers().values())
assert all(s.startswith(moved) for s in sources) and all(l.isValid() for l in other.mapLayers().values()), sources
print(f"[ok] a results folder as a layer group of {len(names)} layers (results.qlr, movable)")
other.clear()
project.clear()
del other
app.exitQgis()
'''


def main():
    os.environ["GDAL_PAM_ENABLED"] = "NO"
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    binary = os.path.abspath(sys.argv[1])
    if qgis_process() is None:
        print("skipped: qgis_process is not installed (Debian: apt-get install qgis python3-qgis)")
        return
    work = tempfile.mkdtemp(prefix="unidiff qgis é ")
    env = dict(
        os.environ,
        # QGIS's Python is the system's: another python3 first on PATH
        # (pyenv, a venv) would be taken for it.
        PATH="/usr/bin:/bin:" + os.environ.get("PATH", ""),
        QT_QPA_PLATFORM="offscreen",
        # QGIS would keep raster statistics as .aux.xml beside the demo's files.
        GDAL_PAM_ENABLED="NO",
        HOME=os.path.join(work, "home"),
        XDG_RUNTIME_DIR=os.path.join(work, "runtime"),
        QGIS_PLUGINPATH=HERE,
        UNIDIFF_STUDIO_BIN=binary,
    )
    os.makedirs(env["XDG_RUNTIME_DIR"], mode=0o700)
    run([qgis_process(), "plugins", "enable", "unidiff_studio"], env)
    listed = run([qgis_process(), "list"], env).stdout
    missing = [a for a in ALGORITHMS if f"unidiff:{a}" not in listed]
    assert not missing, f"not listed: {missing}\n{listed}"
    print(f"[ok] qgis_process lists the provider's {len(ALGORITHMS)} algorithms")
    model = check_algorithms(binary, env, work)
    check_bad_input(env, work)
    script = os.path.join(work, "in_qgis.py")
    with open(script, "w") as f:
        f.write(IN_QGIS)
    done = run([sys.executable, script, HERE, model, S2, S1, work], env, expect_ok=False)
    print(done.stdout.strip())
    if done.returncode != 0:
        sys.exit(f"FAILED in QGIS (exit {done.returncode}):\n{done.stderr[-3000:]}")
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
