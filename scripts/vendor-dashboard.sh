#!/usr/bin/env bash
# Copies the uPlot charting library the dashboard uses into the embedded
# folder server/dashboard/static/vendor/uplot, from the exact version that
# compat/dashboard-browser/package-lock.json pins (installed with npm ci).
# To upgrade: change the version in compat/dashboard-browser/package.json,
# run npm install there, then this script (make dashboard-vendor), and
# commit the lock file and the copied files together. The browser test
# fails when the copy and the pinned package differ.
set -euo pipefail
cd "$(dirname "$0")/.."
pkg=compat/dashboard-browser
dest=server/dashboard/static/vendor/uplot
(cd "$pkg" && npm ci --no-audit --no-fund)
src="$pkg/node_modules/uplot"
version=$(node -p "require('./$src/package.json').version")
mkdir -p "$dest"
cp "$src/dist/uPlot.esm.js" "$src/dist/uPlot.min.css" "$src/LICENSE" "$dest/"
printf 'uplot %s from npm, MIT licence (see LICENSE); copied by scripts/vendor-dashboard.sh\n' "$version" >"$dest/VERSION"
echo "vendored uplot $version into $dest"
