#!/usr/bin/env bash
# Opens the living documentation in headless Chromium, as a reader would, and
# keeps a screenshot of it. Fails when the page's text lacks a feature's name,
# when its script did not run to its end, or when the browser logged a script error.
#
#   scripts/living-doc-browser.sh [PAGE]    default target/bdd/report.html
#
# PAGE's screenshot goes beside it (report.png); the browser's DOM and log to
# target/living-doc/. LIVING_DOC_BROWSER names the browser (default: chromium, Debian's;
# CI runs this in a Debian container for the same browser).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2

page=${1:-target/bdd/report.html}
browser=${LIVING_DOC_BROWSER:-chromium}
out=target/living-doc
[ -s "$page" ] || { echo "living-doc: no page at $page" >&2; exit 1; }
command -v "$browser" >/dev/null || { echo "living-doc: $browser is not installed" >&2; exit 1; }
mkdir -p "$out"
url="file://$(realpath "$page")"
screenshot="$(dirname "$page")/report.png"

# --no-sandbox: the gate runs as root, where Chromium's sandbox cannot start.
flags=(--headless --no-sandbox --disable-gpu --hide-scrollbars --no-first-run
       --enable-logging=stderr --v=0 --virtual-time-budget=5000)
timeout 120 "$browser" "${flags[@]}" --dump-dom "$url" >"$out/dom.html" 2>"$out/browser.log" || {
    echo "living-doc: $browser could not open $url (log: $out/browser.log)" >&2
    tail -n 20 "$out/browser.log" >&2
    exit 1
}
timeout 120 "$browser" "${flags[@]}" --window-size=1280,1700 --screenshot="$screenshot" "$url" \
    >/dev/null 2>>"$out/browser.log" || {
    echo "living-doc: $browser could not take the screenshot (log: $out/browser.log)" >&2
    exit 1
}

failed=0
# Each name as the DOM serialises it (&, < and > escaped).
while IFS= read -r name; do
    escaped=$(sed -e 's/&/\&amp;/g' -e 's/</\&lt;/g' -e 's/>/\&gt;/g' <<<"$name")
    if ! grep -qF -- "$escaped" "$out/dom.html"; then
        echo "living-doc: the page does not show the feature \"$name\"" >&2
        failed=1
    fi
done < <(sed -n 's/^[[:space:]]*Feature:[[:space:]]*//p' features/*.feature | sed 's/[[:space:]]*$//')
if ! grep -q 'data-script="ready"' "$out/dom.html"; then
    echo "living-doc: the page's script did not run to its end" >&2
    failed=1
fi
# The page's script logs nothing: any console message is a fault.
if grep -E 'Uncaught|:CONSOLE' "$out/browser.log" >&2; then
    echo "living-doc: the browser logged a script error (above)" >&2
    failed=1
fi
[ "$failed" -eq 0 ] || exit 1
echo "living-doc: $page opens in $($browser --version 2>/dev/null | head -n 1); screenshot: $screenshot"
