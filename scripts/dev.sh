#!/usr/bin/env bash
# One entry point for the README's two set-up commands, on Debian 12 as root
# (or with sudo):
#   bash scripts/dev.sh demo   install what is missing, run the app on its demo
#   bash scripts/dev.sh test   install what is missing, run every check and test
set -euo pipefail
cd "$(dirname "$0")/.."

# System packages the build and the tests need: GDAL; for the app's tests a
# virtual X server, Vulkan on the CPU (lavapipe) and OpenGL (llvmpipe),
# xdotool to drive the window and ImageMagick's import for screenshots.
PACKAGES=(pkg-config libgdal-dev gdal-bin build-essential
  xvfb libvulkan1 mesa-vulkan-drivers libgl1-mesa-dri libegl1 libxkbcommon-x11-0
  libxcursor1 libxrandr2 libxi6 xdotool imagemagick)

bash scripts/install_missing.sh "${PACKAGES[@]}"

# The Rust toolchain (rustup) with rustfmt and clippy.
if ! command -v cargo >/dev/null 2>&1; then
  [ -x "$HOME/.cargo/bin/cargo" ] || curl -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
  # shellcheck disable=SC1091
  . "$HOME/.cargo/env"
fi
if command -v rustup >/dev/null 2>&1; then
  rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt
  rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy
fi

case "${1:-}" in
  demo)
    cargo run --release -- --demo
    ;;
  test)
    cargo fmt --check
    cargo clippy --workspace --all-targets -- -D warnings
    cargo test --workspace
    # The QGIS provider through qgis_process (says "skipped" without QGIS).
    if [ -x /usr/bin/python3 ]; then
      /usr/bin/python3 packaging/qgis/check_provider.py target/debug/unidiff-studio
    fi
    ;;
  *)
    echo "usage: bash scripts/dev.sh demo|test" >&2
    exit 2
    ;;
esac
