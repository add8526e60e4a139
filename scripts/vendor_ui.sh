#!/usr/bin/env bash
# Re-create api/ui/static/vendor/ from api/ui/package-lock.json (npm ci in a scratch folder).
# The dashboard never loads anything from a CDN: these files are committed and served locally.
set -euo pipefail
cd "$(dirname "$0")/.."
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
cp api/ui/package.json api/ui/package-lock.json "$scratch"/
(cd "$scratch" && npm ci --ignore-scripts --no-audit --no-fund >/dev/null)
m="$scratch/node_modules" out=api/ui/static/vendor
cp "$m/uplot/dist/uPlot.iife.min.js" "$m/uplot/dist/uPlot.min.css" "$out"/
cp "$m/uplot/LICENSE" "$out/uPlot.LICENSE"
cp "$m/swagger-ui-dist/swagger-ui-bundle.js" "$m/swagger-ui-dist/swagger-ui.css" \
   "$m/swagger-ui-dist/swagger-ui-bundle.js.LICENSE.txt" "$m/swagger-ui-dist/favicon-32x32.png" "$out"/
cp "$m/swagger-ui-dist/LICENSE" "$out/swagger-ui.LICENSE"
cp "$m/swagger-ui-dist/NOTICE" "$out/swagger-ui.NOTICE"
echo "vendored: uplot $(node -p "require('$m/uplot/package.json').version")," \
     "swagger-ui-dist $(node -p "require('$m/swagger-ui-dist/package.json').version")"
