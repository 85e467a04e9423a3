"""The Gradio demo in a real browser (Debian's Chromium driven by Playwright) and through gradio_client:
a real image, a real clip and a real volume through the three tabs, and a bad upload that must not stop the app."""
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from demo.screenshots import FLAGS  # the Chromium flags this closed network needs, kept in one place
from srstream.engine import Upscaler

from assets import DATA, EXAMPLES, ROOT
from conftest import free_port

CHROMIUM = "/usr/bin/chromium"
pytest.importorskip("gradio")
playwright = pytest.importorskip("playwright.sync_api")
needs_chromium = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium")


def _start_demo(log: Path, *extra: str):
    """`python -m demo` on a free local port; (url, process) once it answers."""
    port = free_port()
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "demo", "--port", str(port), "--backend", "cpu", *extra],
                                cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 180
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2)
            return url, proc
        except OSError:
            if proc.poll() is not None:
                pytest.fail(log.read_text())
            time.sleep(1)
    proc.kill()
    pytest.fail("demo did not start: " + log.read_text())


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    url, proc = _start_demo(tmp_path_factory.mktemp("demo") / "server.log", "--video-limit", "5")
    yield url
    proc.terminate()
    proc.wait(timeout=30)


@pytest.fixture(scope="module")
def page(server, tmp_path_factory):
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        context = browser.new_context(accept_downloads=True)
        page = context.new_page()
        page.set_default_timeout(120_000)
        page.goto(server)
        yield page
        browser.close()


def _download(page, selector: str, target: Path) -> Path:
    link = page.locator(f"{selector} a").first
    link.wait_for()
    with page.expect_download() as info:
        link.click()
    info.value.save_as(target)
    return target


@needs_chromium
def test_image_tab_in_a_browser(page, tmp_path, server):
    from training.evaluate import bicubic_upscale

    page.goto(server)
    page.get_by_role("tab", name="Image").click()
    page.locator("#image-in input[type=file]").set_input_files(str(EXAMPLES / "foreman.png"))
    page.locator("#image-model input").fill("fast-x4")
    page.get_by_role("option", name="fast-x4", exact=True).click()  # "camera-fast-x4" matches the text too
    page.locator("#image-run").click()
    page.wait_for_function("document.querySelector('#image-size textarea').value.includes('->')")
    assert page.locator("#image-size textarea").input_value() == (
        f"352x288 -> 1408x1152 (fast-x4 on {Upscaler('fast-x4', backend='cpu').label})")
    out = np.asarray(Image.open(_download(page, "#image-download", tmp_path / "sr.png")).convert("RGB"))
    assert out.shape == (1152, 1408, 3)
    bicubic = bicubic_upscale(np.asarray(Image.open(EXAMPLES / "foreman.png").convert("RGB")), 4)
    assert np.abs(out.astype(int) - bicubic.astype(int)).mean() > 1.0


@needs_chromium
def test_volume_tab_in_a_browser(page, tmp_path, server):
    page.goto(server)
    page.get_by_role("tab", name="Volume").click()
    page.locator("#med-in input[type=file]").set_input_files(str(DATA / "mri" / "shear_small.nii.gz"))
    page.locator("#med-run").click()
    page.wait_for_function("document.querySelector('#med-geometry textarea').value.includes('->')")
    text = page.locator("#med-geometry textarea").input_value()
    assert "(40, 48, 6) -> (40, 48, 29)" in text  # by the voxels: 2.37 mm slices to the 0.48 mm pixels
    assert "through-plane with mri-thick" in text
    page.locator("#med-after img").wait_for()
    import nibabel as nib
    out = _download(page, "#med-download", tmp_path / "sr.nii.gz")
    assert nib.load(str(out)).shape == (40, 48, 29)


@needs_chromium
def test_video_tab_in_a_browser(page, tmp_path, server):
    import av

    page.goto(server)
    page.get_by_role("tab", name="Video").click()
    page.locator("#video-in input[type=file]").set_input_files(str(DATA / "video" / "vtest_320x180_2s.mp4"))
    page.locator("#video-run").click()
    page.wait_for_function("document.querySelector('#video-summary textarea').value.includes('frames')")
    assert "50 frames, 320x180 -> 1280x720" in page.locator("#video-summary textarea").input_value()
    out = _download(page, "#video-download", tmp_path / "sr.mp4")
    with av.open(str(out)) as c:
        assert c.streams.video[0].codec_context.width == 1280 and len(c.streams.audio) == 1


@needs_chromium
def test_a_bad_upload_shows_a_message_and_the_app_keeps_serving(page, tmp_path, server):
    page.goto(server)  # a fresh page: the earlier tests left files in the upload boxes
    fake = tmp_path / "holiday.png"
    fake.write_text("this is not an image")
    page.get_by_role("tab", name="Image").click()
    page.locator("#image-in input[type=file]").set_input_files(str(fake))
    page.locator("#image-run").click()
    page.get_by_text("Not an image we can read: holiday.png").first.wait_for()
    page.get_by_role("tab", name="Volume").click()
    bad_zip = tmp_path / "nothing.zip"
    import zipfile
    with zipfile.ZipFile(bad_zip, "w") as z:
        z.writestr("readme.txt", "no dicom in here")
    page.locator("#med-in input[type=file]").set_input_files(str(bad_zip))
    page.locator("#med-run").click()
    page.get_by_text("no DICOM images found").first.wait_for()
    assert urllib.request.urlopen(server, timeout=10).status == 200


def test_gradio_client_api(server):
    from gradio_client import Client, handle_file

    client = Client(server, verbose=False)
    _slider, download, size, metrics = client.predict(handle_file(str(DATA / "set5" / "bird.png")), "fast-x4",
                                                     handle_file(str(DATA / "set5" / "bird.png")),
                                                     api_name="/upscale_image")
    assert size.startswith("288x288 -> 1152x1152 (fast-x4 on cpu ") and Image.open(download).size == (1152, 1152)
    assert "PSNR" in metrics
    with pytest.raises(Exception, match="Not an image"):
        bad = Path(download).with_name("fake.png")
        bad.write_text("not an image")
        client.predict(handle_file(str(bad)), "fast-x4", None, api_name="/upscale_image")
    # The output size box, read as --outscale (a number) or --size (WxH).
    bird = handle_file(str(DATA / "set5" / "bird.png"))
    _, download, size, _ = client.predict(bird, "fast-x4", None, "3", api_name="/upscale_image")
    assert size.startswith("288x288 -> 864x864") and Image.open(download).size == (864, 864)
    _, download, _, _ = client.predict(bird, "fast-x4", None, "500x-1", api_name="/upscale_image")
    assert Image.open(download).size == (500, 500)
    with pytest.raises(Exception, match="Output size 'abc'"):
        client.predict(bird, "fast-x4", None, "abc", api_name="/upscale_image")


def test_volume_through_the_api_on_another_slice_axis(server):
    import nibabel as nib
    from gradio_client import Client, handle_file

    client = Client(server, verbose=False)
    volume = DATA / "mri" / "shear_small.nii.gz"  # 40 x 48 x 6 voxels
    download, geometry, _, _ = client.predict(handle_file(str(volume)), "mri-x2", "in-plane", 0,
                                              api_name="/upscale_volume")
    assert "(40, 48, 6) -> (40, 96, 12)" in geometry  # slices across axis 0: axes 1 and 2 doubled
    out = nib.load(download)
    assert out.shape == (40, 96, 12)
    assert np.allclose(out.header.get_zooms(), np.array(nib.load(volume).header.get_zooms()) / [1, 2, 2], atol=1e-4)
    # Through-plane to a spacing that is no integer ratio of the slices' 2.37 mm: 6 x 2.37 / 1.0 -> 14 slices.
    download, geometry, _, _ = client.predict(handle_file(str(volume)), "mri-thick-x4", "through-plane", 2, 1.0,
                                              api_name="/upscale_volume")
    assert "(40, 48, 6) -> (40, 48, 14)" in geometry and nib.load(download).header.get_zooms()[2] == \
        pytest.approx(1.0, abs=1e-4)


def test_a_time_series_through_the_api_by_the_voxels(server):
    import nibabel as nib
    from gradio_client import Client, handle_file

    client = Client(server, verbose=False)
    dwi = DATA / "mri" / "dwi_philips_crop.nii.gz"  # 48 x 48 x 8 voxels of 2 mm, 17 volumes
    download, geometry, _, _ = client.predict(handle_file(str(dwi)), api_name="/upscale_volume")
    assert geometry.startswith("17 volumes (showing 0); shape (48, 48, 8) -> (96, 96, 8)")
    assert "in-plane with mri-x2" in geometry and "not over 1.5x" in geometry
    assert nib.load(download).shape == (96, 96, 8, 17)
    download, geometry, _, _ = client.predict(handle_file(str(dwi)), volume="3", api_name="/upscale_volume")
    assert geometry.startswith("shape (48, 48, 8) -> (96, 96, 8)") and nib.load(download).shape == (96, 96, 8)
    _, geometry, _, _ = client.predict(handle_file(str(DATA / "mri" / "shear_small.nii.gz")),
                                       api_name="/upscale_volume")
    assert "through-plane with mri-thick" in geometry  # 0.48 x 0.48 x 2.37 mm: thick slices


def test_uploads_over_the_size_limit_are_refused(tmp_path):
    from gradio_client import Client, handle_file

    url, proc = _start_demo(tmp_path / "server.log", "--max-file-size", "100kb")
    try:
        client = Client(url, verbose=False)
        with pytest.raises(Exception, match=r"(?i)maximum|too large|413"):  # bird.png is 118 KiB
            client.predict(handle_file(str(DATA / "set5" / "bird.png")), "fast-x4", None, api_name="/upscale_image")
        small = tmp_path / "small.png"
        Image.open(DATA / "set5" / "bird.png").crop((0, 0, 64, 64)).save(small)
        result = client.predict(handle_file(str(small)), "fast-x4", None, api_name="/upscale_image")
        assert result[2].startswith("64x64 -> 256x256 (")  # the app still serves files under the limit
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_two_users_at_once_are_queued_not_crashed(server):
    from gradio_client import Client, handle_file

    image = handle_file(str(DATA / "set5" / "head.png"))
    jobs = [Client(server, verbose=False).submit(image, "fast-x4", None, api_name="/upscale_image") for _ in range(2)]
    sizes = [job.result(timeout=300)[2] for job in jobs]
    assert [s.split(" (")[0] for s in sizes] == ["280x280 -> 1120x1120"] * 2
