"""Screenshots of the three tabs for the README, taken in headless Chromium with Playwright on the bundled samples.

python -m demo.screenshots [--out demo/screenshots] [--chromium /usr/bin/chromium]
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]

# tab, upload box, sample, run button, the textbox that fills in when it is done, screenshot name
STEPS = [
    ("Image", "image-in", "examples/foreman.png", "image-run", "image-size", "image.png"),
    ("Video", "video-in", "tests/data/video/vtest_320x180_2s.mp4", "video-run", "video-summary", "video.png"),
    ("Volume", "med-in", "tests/data/mri/shear_small.nii.gz", "med-run", "med-geometry", "volume.png"),
]
DONE_MARK = {"Image": "->", "Video": "frames", "Volume": "->"}


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main(argv: list[str] | None = None) -> int:
    from playwright.sync_api import sync_playwright

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "demo" / "screenshots")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    port = _port()
    server = subprocess.Popen([sys.executable, "-m", "demo", "--port", str(port), "--backend", "cpu"], cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(180):
            try:
                urllib.request.urlopen(url, timeout=2)
                break
            except OSError:
                time.sleep(1)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=args.chromium, headless=True, args=FLAGS)
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(600_000)
            page.goto(url)
            for tab, field, sample, button, done, name in STEPS:
                page.get_by_role("tab", name=tab).click()
                page.locator(f"#{field} input[type=file]").set_input_files(str(ROOT / sample))
                page.locator(f"#{button}").click()
                page.wait_for_function(f"document.querySelector('#{done} textarea').value.includes('{DONE_MARK[tab]}')")
                # Let the output images finish drawing ("networkidle" never comes: Gradio keeps a stream open).
                page.wait_for_function("Array.from(document.images).every(i => i.complete)")
                page.wait_for_timeout(1500)
                page.screenshot(path=str(args.out / name), full_page=True)
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=30)
    print(f"wrote {', '.join(p.name for p in sorted(args.out.glob('*.png')))} to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
