#!/usr/bin/env bash
# Builds the Debian package from a binary already built, with dpkg-deb (no
# second build): the binary, the desktop entry, the AppStream metainfo, the
# icons, the demo scene and the licences, and Depends worked out by
# dpkg-shlibdeps plus what is loaded at run time (Vulkan, EGL, X11/Wayland).
#
#   bash scripts/build_deb.sh [BINARY] [OUT_DIR]
#     BINARY   default target/release/unidiff-studio
#     OUT_DIR  default target/deb
# Then: sudo apt-get install ./target/deb/unidiff-studio_<version>_<arch>.deb
set -euo pipefail
cd "$(dirname "$0")/.."

bin=${1:-target/release/unidiff-studio}
out=${2:-target/deb}
[ -x "$bin" ] || { echo "build_deb: no executable at $bin (cargo build --release first)" >&2; exit 2; }
for tool in dpkg-deb dpkg-shlibdeps objcopy; do
  command -v "$tool" >/dev/null || { echo "build_deb: $tool is missing (apt-get install dpkg-dev binutils)" >&2; exit 2; }
done

version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
arch=$(dpkg --print-architecture)
name=unidiff-studio
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
root="$stage/root"

install -Dm755 "$bin" "$root/usr/bin/$name"
# A test build carries its debug information: the package does not.
objcopy --strip-debug "$root/usr/bin/$name"
install -Dm644 packaging/unidiff-studio.desktop "$root/usr/share/applications/$name.desktop"
install -Dm644 packaging/io.github.unidiff.UniDiffStudio.metainfo.xml \
  "$root/usr/share/metainfo/io.github.unidiff.UniDiffStudio.metainfo.xml"
install -Dm644 assets/icons/unidiff-studio.svg "$root/usr/share/icons/hicolor/scalable/apps/$name.svg"
install -Dm644 assets/icons/unidiff-studio-256.png "$root/usr/share/icons/hicolor/256x256/apps/$name.png"
for f in assets/demo/*; do
  install -Dm644 "$f" "$root/usr/share/$name/demo/$(basename "$f")"
done
# The QGIS Processing provider, where QGIS finds system plugins.
for f in packaging/qgis/unidiff_studio/*; do
  [ -f "$f" ] || continue
  install -Dm644 "$f" "$root/usr/share/qgis/python/plugins/unidiff_studio/$(basename "$f")"
done
install -Dm644 packaging/copyright "$root/usr/share/doc/$name/copyright"
install -Dm644 README.md "$root/usr/share/doc/$name/README.md"

# Shared libraries the binary links (GDAL, libc, ...), as Debian package names.
shlib=$(mkdir -p "$stage/src/debian" && cd "$stage/src" &&
  printf 'Source: %s\n\nPackage: %s\nArchitecture: any\n' "$name" "$name" > debian/control &&
  dpkg-shlibdeps -O "$root/usr/bin/$name" 2>/dev/null | sed -n 's/^shlibs:Depends=//p')
# Loaded at run time by wgpu/winit (not linked, so not found above).
runtime="libvulkan1, mesa-vulkan-drivers | vulkan-icd, libegl1, libgl1, libxkbcommon-x11-0, libxcursor1, libxrandr2, libxi6, libwayland-client0"
depends="${shlib:+$shlib, }$runtime"
size=$(du -sk "$root" | cut -f1)

mkdir -p "$root/DEBIAN"
cat > "$root/DEBIAN/control" <<EOF
Package: $name
Version: $version
Architecture: $arch
Maintainer: UniDiff Studio developers <unidiff-studio@users.noreply.github.com>
Installed-Size: $size
Depends: $depends
Recommends: gdal-bin
Suggests: qgis
Section: science
Priority: optional
Description: land-cover mapping from hyperspectral and SAR rasters
 UniDiff Studio opens a hyperspectral cube and a SAR image of the same area,
 lets you paint sparse training labels and classifies every pixel with the
 features of a pretrained diffusion U-Net and a small classifier, beside a
 random forest. Maps, class areas and accuracy export to GeoTIFF and
 GeoPackage for QGIS; a saved model maps other scenes and whole regions.
 Its headless tools are in QGIS's Processing toolbox (provider "UniDiff
 Studio", enabled in QGIS's plugin manager).
EOF

mkdir -p "$out"
deb="$out/${name}_${version}_${arch}.deb"
dpkg-deb --root-owner-group --build "$root" "$deb.part" >/dev/null
mv "$deb.part" "$deb"
echo "$deb"
