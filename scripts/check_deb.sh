#!/usr/bin/env bash
# CI's check of the Debian package, from the binary the tests already built
# (no second build): the desktop entry and the AppStream metainfo validate,
# the .deb installs with apt-get, the installed `unidiff-studio --demo
# --headless` runs on the demo under /usr/share, and the installed app
# opens the demo in a window under Xvfb (a screenshot that is not blank).
# The package is removed again at the end.
#
#   bash scripts/check_deb.sh [BINARY]     (default target/debug/unidiff-studio)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-target/debug/unidiff-studio}
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"

bash scripts/install_missing.sh desktop-file-utils appstream dpkg-dev binutils xvfb xauth imagemagick

desktop-file-validate packaging/unidiff-studio.desktop
appstreamcli validate --no-net packaging/io.github.unidiff.UniDiffStudio.metainfo.xml

deb=$(bash scripts/build_deb.sh "$bin")
echo "[..] installing $deb"
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$(realpath "$deb")" >/dev/null
work=$(mktemp -d)
cleanup() {
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get remove -y -qq unidiff-studio >/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
dpkg -L unidiff-studio | grep -q /usr/share/unidiff-studio/demo/Spain_7370579_S2Hand.tif

# The installed program, away from the source tree, on its packaged demo.
cd "$work"
export UNIDIFF_STUDIO_DATA_DIR="$work/data"
/usr/bin/unidiff-studio --demo --headless --demo-out "$work/demo" 2>"$work/headless.log" ||
  { cat "$work/headless.log"; echo "check_deb: the installed headless demo failed" >&2; exit 1; }
grep -q "the demo scene from /usr/share/unidiff-studio/demo" "$work/headless.log" ||
  { cat "$work/headless.log"; echo "check_deb: the demo was not taken from /usr/share" >&2; exit 1; }
test -s "$work/demo/run/run.json"
test -s "$work/demo/renderings/prgb.png"
echo "[ok] installed headless demo ($(grep -c . "$work/headless.log") log lines)"

# QGIS finds the installed provider with no setting (where QGIS is installed).
qgis_process=$(command -v qgis_process.bin || command -v qgis_process || true)
if [ -n "$qgis_process" ]; then
  mkdir -p "$work/qgis-home" "$work/runtime" && chmod 700 "$work/runtime"
  HOME="$work/qgis-home" XDG_RUNTIME_DIR="$work/runtime" QT_QPA_PLATFORM=offscreen PATH="/usr/bin:/bin" \
    "$qgis_process" plugins enable unidiff_studio >"$work/qgis.log" 2>&1
  HOME="$work/qgis-home" XDG_RUNTIME_DIR="$work/runtime" QT_QPA_PLATFORM=offscreen PATH="/usr/bin:/bin" \
    "$qgis_process" list >>"$work/qgis.log" 2>&1
  grep -q "unidiff:predict" "$work/qgis.log" ||
    { cat "$work/qgis.log"; echo "check_deb: QGIS does not list the installed provider" >&2; exit 1; }
  echo "[ok] QGIS lists the installed provider"
else
  echo "skipped: QGIS is not installed: the installed provider is not checked"
fi

# The installed app in a window: wait for the demo to open, then a screenshot.
cat > "$work/window.sh" <<'INNER'
set -euo pipefail
/usr/bin/unidiff-studio --demo 2>"$WORK/app.log" &
app=$!
for _ in $(seq 1 600); do
  grep -q "opened demo" "$WORK/app.log" 2>/dev/null && break
  kill -0 "$app" 2>/dev/null || { cat "$WORK/app.log"; exit 1; }
  sleep 0.2
done
grep -q "opened demo" "$WORK/app.log" || { cat "$WORK/app.log"; echo "no demo opened in 120 s" >&2; exit 1; }
sleep 2
import -window root "$WORK/window.png"
kill "$app"
wait "$app" || true
INNER
WORK="$work" xvfb-run -a -s "-screen 0 1400x900x24" env -u WAYLAND_DISPLAY bash "$work/window.sh"
spread=$(convert "$work/window.png" -format '%[fx:standard_deviation]' info:)
awk -v s="$spread" 'BEGIN { exit !(s > 0.02) }' ||
  { echo "check_deb: the installed app's window looks blank (spread $spread)" >&2; exit 1; }
echo "[ok] installed app opened the demo in a window (pixel spread $spread)"
