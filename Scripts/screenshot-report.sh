#!/usr/bin/env bash
# Renders HTML reports in headless Chromium (Debian's `chromium` package) to PNG,
# to look at them as a reader would. Skips, saying so, where Chromium is absent.
# Usage: Scripts/screenshot-report.sh REPORT.html [OUT.png] [WIDTHxHEIGHT]
set -euo pipefail
report=${1:?usage: Scripts/screenshot-report.sh REPORT.html [OUT.png] [WIDTHxHEIGHT]}
out=${2:-${report%.html}.png}
size=${3:-1280x2400}
browser=$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)
if [ -z "$browser" ]; then
    echo "screenshot-report.sh: SKIPPED: no Chromium on this machine (apt-get install chromium)" >&2
    exit 0
fi
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
# No network is needed or wanted: the report is self-contained.
timeout 120 "$browser" --headless=new --no-sandbox --disable-gpu --user-data-dir="$profile" \
    --hide-scrollbars --window-size="${size/x/,}" --screenshot="$out" "file://$(realpath "$report")" \
    >"$profile/log" 2>&1 || { cat "$profile/log" >&2; exit 1; }
[ -s "$out" ] || { echo "screenshot-report.sh: no image written" >&2; cat "$profile/log" >&2; exit 1; }
echo "$out"
