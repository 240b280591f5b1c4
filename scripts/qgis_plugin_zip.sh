#!/usr/bin/env bash
# The QGIS plugin as a zip for QGIS's plugin manager ("Install from ZIP"):
#   bash scripts/qgis_plugin_zip.sh [OUT_DIR]   (default: target/qgis)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-target/qgis}
version=$(sed -n 's/^version=//p' packaging/qgis/unidiff_studio/metadata.txt)
mkdir -p "$out"
zip="$out/unidiff_studio-$version.zip"
python3 - "$zip" <<'PY'
import os, sys, zipfile
with zipfile.ZipFile(sys.argv[1] + ".part", "w", zipfile.ZIP_DEFLATED) as z:
    for name in sorted(os.listdir("packaging/qgis/unidiff_studio")):
        if name.endswith(".pyc") or name == "__pycache__":
            continue
        z.write(os.path.join("packaging/qgis/unidiff_studio", name), f"unidiff_studio/{name}")
os.replace(sys.argv[1] + ".part", sys.argv[1])
PY
echo "$zip"
