"""The page at ``GET /`` in a real headless browser: Debian's Chromium driven by Playwright
(``executable_path``: Playwright's own browser download cannot work offline). A person picks a
rendered clip and sees its label at the top of the bars.

``VIDSORT_SCREENSHOT=path.png`` also saves the screenshot there (the README's comes from
``VIDSORT_SCREENSHOT=benchmarks/results/serve_page.png``).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from serve_helpers import live_server, uploads_left

sync_api = pytest.importorskip("playwright.sync_api", reason="needs playwright (dev extra)")

CHROMIUM = next((p for p in (os.environ.get("CHROMIUM"), shutil.which("chromium"),
                             shutil.which("chromium-browser")) if p), None)


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium (scripts/test.sh installs Debian's)")
def test_page_shows_the_label_of_a_picked_clip(tiny_motion_dir, rendered_clips, tmp_path):
    clip = rendered_clips["rotating clockwise"]
    with live_server(tiny_motion_dir, tmp_path) as server, sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                     args=["--no-sandbox"])  # CI runs as root
        try:
            page = browser.new_page(viewport={"width": 900, "height": 640})
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(server.url)
            page.wait_for_function("document.querySelector('#model').textContent"
                                   ".includes('tiny-motion')")
            page.select_option("#top-k", "3")
            page.set_input_files("#file", str(clip))
            first = page.locator("#predictions li .label").first
            first.wait_for(timeout=30_000)
            assert first.text_content() == "rotating clockwise"
            assert page.locator("#predictions li").count() == 3
            assert "took" in page.locator("#timings").text_content()
            assert page.locator("#file-name").text_content() == clip.name
            shot = tmp_path / "serve_page.png"
            page.screenshot(path=str(shot), full_page=True)
            assert shot.stat().st_size > 10_000
            if os.environ.get("VIDSORT_SCREENSHOT"):
                Path(os.environ["VIDSORT_SCREENSHOT"]).write_bytes(shot.read_bytes())

            if page.locator("#segments-option").is_visible():  # long-video segments exist
                page.check("#segments")
                page.set_input_files("#file", str(rendered_clips["growing"]))
                page.wait_for_function("document.querySelector('#file-name').textContent"
                                       ".startsWith('growing')")
                block = page.locator("#timeline > div").first
                block.wait_for(timeout=30_000)
                assert block.text_content() == "growing"
                assert "segments" in page.locator("#timings").text_content()
                page.uncheck("#segments")

            # an error is shown on the page, not as a broken page
            bad = tmp_path / "notes.mp4"
            bad.write_bytes(b"not a video at all\n" * 20)
            page.set_input_files("#file", str(bad))
            page.wait_for_selector("#status.error")
            assert page.locator("#status").text_content().startswith("VideoDecodeError")
            assert errors == []
        finally:
            browser.close()
    assert uploads_left(tmp_path) == []
