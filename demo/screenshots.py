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
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]


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
            page.locator("#image-in input[type=file]").set_input_files(str(ROOT / "examples" / "foreman.png"))
            page.locator("#image-run").click()
            page.wait_for_function("document.querySelector('#image-size textarea').value.includes('->')")
            page.screenshot(path=str(args.out / "image.png"), full_page=True)
            page.get_by_role("tab", name="Video").click()
            page.locator("#video-in input[type=file]").set_input_files(
                str(ROOT / "tests" / "data" / "video" / "vtest_320x180_2s.mp4"))
            page.locator("#video-run").click()
            page.wait_for_function("document.querySelector('#video-summary textarea').value.includes('frames')")
            page.screenshot(path=str(args.out / "video.png"), full_page=True)
            page.get_by_role("tab", name="Volume").click()
            page.locator("#med-in input[type=file]").set_input_files(
                str(ROOT / "tests" / "data" / "mri" / "shear_small.nii.gz"))
            page.locator("#med-run").click()
            page.wait_for_function("document.querySelector('#med-geometry textarea').value.includes('->')")
            page.screenshot(path=str(args.out / "volume.png"), full_page=True)
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=30)
    print(f"wrote {', '.join(p.name for p in sorted(args.out.glob('*.png')))} to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
