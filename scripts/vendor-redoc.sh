#!/usr/bin/env bash
# vendor-redoc.sh VERSION: replaces the Redoc bundle that GET /docs serves
# (server/apidocs/assets) with the standalone bundle of the npm package
# redoc at exactly VERSION, with its licenses. npm checks the package
# against the registry's integrity hash; commit the result.
#
# The bundle is committed and embedded in the binary, so neither building
# nor running feedbackd needs Node.js or the network.
set -euo pipefail
version=${1:?usage: scripts/vendor-redoc.sh VERSION (such as 2.5.4)}
cd "$(dirname "$0")/.."
dest=server/apidocs/assets
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

(cd "$tmp" && npm pack --silent "redoc@$version" >/dev/null)
tar -xzf "$tmp/redoc-$version.tgz" -C "$tmp" \
  package/LICENSE package/bundles/redoc.standalone.js package/bundles/redoc.standalone.js.LICENSE.txt
cp "$tmp/package/bundles/redoc.standalone.js" "$dest/redoc.standalone.js"
cp "$tmp/package/bundles/redoc.standalone.js.LICENSE.txt" "$dest/redoc.standalone.js.LICENSE.txt"
cp "$tmp/package/LICENSE" "$dest/LICENSE-redoc"
echo "$version" >"$dest/REDOC_VERSION"
echo "vendored redoc $version:"
sha256sum "$dest/redoc.standalone.js"
