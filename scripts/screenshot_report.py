"""Open ``report.html`` in headless Chromium, take a screenshot and check it loads cleanly.

Usage::

    python scripts/screenshot_report.py REPORT_HTML OUT_PNG [--width 1280] [--height 4000]

Two passes of Debian's Chromium (``apt-get install chromium``; this script
never installs it):

1. the report itself, as a reader opens it: a screenshot of the top
   ``width x height`` pixels goes to ``OUT_PNG``, and every message the page
   writes to the browser console is collected (the report has no scripts, so
   any message — an ``Uncaught`` error, a refused resource — is a fault);
2. a copy of the report in a temporary folder, with a ``<base>`` pointing at the
   report's folder and a short script that, once the page has loaded, logs how
   many ``<img>`` elements decoded to a picture and the captions of those that
   did not.

Exit status: 0 if the screenshot was written, the console stayed silent and
every image decoded; 1 if one of those failed; 2 for a bad argument; 3 if no
Chromium is installed.  The browser runs with a throwaway profile, no network
services and a time limit; nothing is written beside the report.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

BROWSERS = ("chromium", "chromium-browser")
CONSOLE_LINE = re.compile(r":CONSOLE[:(][^\]]*\]\s*(.*)$")
CHECK_TAG = "aicircle-image-check:"

# Logs, after the load event, how many images decoded (naturalWidth > 0) and the alt text of the others.
_CHECK_SCRIPT = """<script>
window.addEventListener("load", function () {
  var imgs = Array.prototype.slice.call(document.images);
  var broken = imgs.filter(function (i) { return !(i.complete && i.naturalWidth > 0); })
                   .map(function (i) { return (i.alt || i.src).slice(0, 80); });
  console.log("CHECK_TAG" + JSON.stringify({total: imgs.length, broken: broken}));
});
</script>""".replace("CHECK_TAG", CHECK_TAG)


def find_browser() -> str | None:
    """Path of the Chromium executable, or None; ``$CHROMIUM`` overrides the search."""
    override = os.environ.get("CHROMIUM")
    if override:
        return shutil.which(override)
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    return None


def run_chromium(browser: str, url: str, extra: list[str], timeout: float) -> list[str]:
    """Run headless Chromium on ``url``; returns the page's console messages.

    Raises
    ------
    RuntimeError
        If the browser does not finish within ``timeout`` seconds (its whole
        process group is killed) or exits with a non-zero status.
    """
    with tempfile.TemporaryDirectory(prefix="aicircle-chromium-") as profile:
        cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               "--disable-extensions", "--hide-scrollbars", f"--user-data-dir={profile}",
               "--enable-logging=stderr", "--v=0", "--virtual-time-budget=5000", *extra, url]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                errors="replace", start_new_session=True)
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            raise RuntimeError(f"Chromium did not finish within {timeout:g} s on {url}") from None
    if proc.returncode != 0:
        tail = "\n".join(err.strip().splitlines()[-5:])
        raise RuntimeError(f"Chromium exited with status {proc.returncode} on {url}:\n{tail}")
    return [m.group(1) for line in (out + "\n" + err).splitlines() if (m := CONSOLE_LINE.search(line))]


def check_images(browser: str, report: Path, timeout: float) -> dict:
    """Load an instrumented copy of ``report``; returns ``{"total": n, "broken": [alt, ...]}``."""
    text = report.read_text(encoding="utf-8")
    base = f'<base href="{report.parent.as_uri()}/">'
    text = re.sub(r"(<head[^>]*>)", lambda m: m.group(1) + base, text, count=1, flags=re.IGNORECASE)
    if re.search(r"</body>", text, flags=re.IGNORECASE):
        text = re.sub(r"</body>", lambda m: _CHECK_SCRIPT + m.group(0), text, count=1, flags=re.IGNORECASE)
    else:
        text += _CHECK_SCRIPT
    with tempfile.TemporaryDirectory(prefix="aicircle-report-check-") as tmp:
        copy = Path(tmp) / "report.html"
        copy.write_text(text, encoding="utf-8")
        messages = run_chromium(browser, copy.as_uri(), ["--dump-dom"], timeout)
    for m in messages:
        found = re.search(re.escape(CHECK_TAG) + r"(\{.*\})", m)
        if found:
            return json.loads(found.group(1))
    raise RuntimeError("the image check did not run (no message from the instrumented page)")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", type=Path, help="the report.html to open")
    parser.add_argument("out", type=Path, help="where to write the PNG screenshot")
    parser.add_argument("--width", type=int, default=1280, help="window width, px (default 1280)")
    parser.add_argument("--height", type=int, default=4000, help="window height, px (default 4000)")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per browser run (default 120)")
    args = parser.parse_args(argv)

    report = args.report.resolve()
    if not report.is_file():
        print(f"error: no report at {args.report}", file=sys.stderr)
        return 2
    if args.width <= 0 or args.height <= 0:
        print(f"error: the window must have a positive size, got {args.width}x{args.height}", file=sys.stderr)
        return 2
    browser = find_browser()
    if browser is None:
        print("error: Chromium is not installed (looked for " + ", ".join(BROWSERS) + " on PATH and $CHROMIUM); "
              "install it with 'apt-get install chromium' — this script never installs it", file=sys.stderr)
        return 3
    out = args.out.resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.unlink(missing_ok=True)  # so a stale file cannot pass for a new screenshot

    problems = []
    try:
        console = run_chromium(browser, report.as_uri(), [f"--window-size={args.width},{args.height}",
                                                          f"--screenshot={out}"], args.timeout)
        images = check_images(browser, report, args.timeout)
    except RuntimeError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    if not out.is_file() or out.stat().st_size == 0:
        problems.append(f"Chromium wrote no screenshot to {out}")
    problems += [f"console: {m}" for m in console]
    if images["total"] == 0:
        problems.append("the report has no <img> element")
    problems += [f"image did not decode: {alt}" for alt in images["broken"]]

    print(f"screenshot: {out} ({args.width}x{args.height} px window)")
    print(f"images: {images['total'] - len(images['broken'])} of {images['total']} decoded")
    print(f"console: {len(console)} message(s)")
    for p in problems:
        print(f"error: {p}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
