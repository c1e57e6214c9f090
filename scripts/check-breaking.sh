#!/usr/bin/env bash
# check-breaking.sh [SPEC [ALLOW]]: fails when SPEC (openapi.yaml) breaks a
# client of the last released contract, unless ALLOW
# (compat/breaking-changes.txt) lists that change with a reason.
#
# The last release is the newest "## [x.y.z]" heading of CHANGELOG.md; its
# spec is compat/released/openapi-x.y.z.yaml, kept in the repository so that
# a clone without tags can run the check. oasdiff (pinned as a go tool in
# go.mod) finds the changes; warnings fail too, since they break some
# clients (an optional response field removed, say).
set -euo pipefail
cd "$(dirname "$0")/.."
spec=$(realpath "${1:-openapi.yaml}")
allow=$(realpath "${2:-compat/breaking-changes.txt}")

version=$(sed -n 's/^## \[\([0-9][0-9.]*\)\].*/\1/p' CHANGELOG.md | head -n 1)
if [ -z "$version" ]; then
  echo "check-breaking: CHANGELOG.md names no release (## [x.y.z] - date)" >&2
  exit 1
fi
released=compat/released/openapi-$version.yaml
if [ ! -f "$released" ]; then
  echo "check-breaking: $released is missing: a release keeps its spec there" >&2
  exit 1
fi

# Every entry says why the break is acceptable: METHOD /path change # reason
if bad=$(grep -nvE '^[[:space:]]*(#|$)' "$allow" | grep -vE '[^[:space:]].*#[[:space:]]*[^[:space:]]'); then
  echo "check-breaking: these entries of $allow give no reason (\"... # why\"):" >&2
  echo "$bad" >&2
  exit 1
fi

if ! go tool oasdiff breaking "$released" "$spec" --fail-on WARN \
  --err-ignore "$allow" --warn-ignore "$allow" --format singleline; then
  echo "check-breaking: the changes above break clients of $version; list an intended one in $allow" \
    "as printed (METHOD /path change) followed by \"# why\", or undo it" >&2
  exit 1
fi
echo "check-breaking: no unlisted breaking change since $version"
