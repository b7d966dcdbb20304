"""The report page as a reader sees it: in a real browser (headless Chromium) every figure loads
and nothing scrolls sideways at 1280 px; group estimates from two participants are not results."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.fits import FitSettings
from analysis.html_blocks import MAX_TABLE_COLUMNS, table
from analysis.report import ReportConfig, build_report
from tests.analysis.test_report_stimuli import simulated_with_model

WINDOW_PX = (1280, 2000)
# Runs in the page after load and writes what it found into the DOM, for --dump-dom to return.
_CHECK_SCRIPT = """<script>
window.addEventListener('load', function () {
  var images = Array.from(document.images).map(function (im) {
    return {alt: im.alt, complete: im.complete, natural_width: im.naturalWidth};
  });
  var bodyRight = document.body.getBoundingClientRect().right;
  var sticking_out = Array.from(document.querySelectorAll('table, img, p, div, ul')).filter(
    function (el) { return el.getBoundingClientRect().right > bodyRight + 1; }).map(
    function (el) { var s = el.closest('section');
                    return el.tagName + ' in ' + (s ? s.id : 'page'); });
  var out = document.createElement('pre');
  out.id = 'browser-check';
  out.textContent = JSON.stringify({images: images, sticking_out: sticking_out,
    scroll_width: document.documentElement.scrollWidth,
    client_width: document.documentElement.clientWidth});
  document.body.appendChild(out);
});
</script>"""


def chromium() -> str | None:
    """Debian's Chromium (``chromium``) or Google's, if installed."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def _run_chromium(browser: str, *args: str) -> subprocess.CompletedProcess:
    width, height = WINDOW_PX
    command = [
        browser,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        f"--window-size={width},{height}",
        "--hide-scrollbars",
        *args,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def browser_check(html: Path, work: Path) -> tuple[dict, Path]:
    """Opens ``html`` in headless Chromium at 1280 px: (what the page found after load: images,
    widths, elements sticking out; the screenshot's path)."""
    browser = chromium()
    assert browser is not None
    checked = work / "checked.html"
    checked.write_text(
        html.read_text(encoding="utf-8").replace("</body>", _CHECK_SCRIPT + "</body>"),
        encoding="utf-8",
    )
    dom = _run_chromium(browser, "--virtual-time-budget=10000", "--dump-dom", checked.as_uri())
    found = re.search(r'<pre id="browser-check">(.*?)</pre>', dom.stdout, re.S)
    assert found, f"no check result in the DOM; chromium said: {dom.stderr[-2000:]}"
    screenshot = work / "report_1280.png"
    shot = _run_chromium(browser, f"--screenshot={screenshot}", html.as_uri())
    assert screenshot.is_file(), f"no screenshot; chromium said: {shot.stderr[-2000:]}"
    return json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&")), screenshot


@pytest.fixture(scope="module")
def two_participant_report(tmp_path_factory):
    """A study of two participants whose sessions recorded the tiny model (stimulus examples)."""
    root = tmp_path_factory.mktemp("two")
    data = simulated_with_model(root / "data", model="tiny", participants=2)
    config = ReportConfig(fit=FitSettings(n_boot=100), progress=False, workers=1)
    return build_report(data_dir=data, out_dir=root / "out", config=config)


@pytest.mark.skipif(chromium() is None, reason="no chromium on this machine (apt install chromium)")
def test_the_report_renders_in_a_browser_with_every_figure_and_no_sideways_scrolling(
    two_participant_report, tmp_path
):
    result = two_participant_report
    page, screenshot = browser_check(result.html, tmp_path)
    print(f"screenshot: {screenshot}")
    html = result.html.read_text(encoding="utf-8")
    assert len(page["images"]) == html.count("<img ") >= 5
    assert len(page["images"]) == len(list((result.out_dir / "figures").glob("*.png")))
    unloaded = [im["alt"] for im in page["images"] if not (im["complete"] and im["natural_width"])]
    assert not unloaded, f"figures that did not load: {unloaded}"
    assert any(im["alt"].startswith("stimulus example") for im in page["images"])
    assert page["scroll_width"] <= page["client_width"] <= WINDOW_PX[0], page
    assert not page["sticking_out"], page["sticking_out"]
    from PIL import Image

    with Image.open(screenshot) as im:
        assert im.size == WINDOW_PX
        pixels = np.asarray(im.convert("L"), dtype=float)
    assert pixels.std() > 10 and (pixels < 128).mean() > 0.005  # text and figures, not blank


def test_two_participants_give_no_group_result(two_participant_report):
    result = two_participant_report
    for c in result.summary["conditions"]:
        assert c["n_participants"] == 2
        assert c["group_note"].startswith("the group estimate needs more participants")
    html = result.html.read_text(encoding="utf-8")
    answer = html[html.index('<section id="answer">') : html.index('<section id="design">')]
    assert answer.count("no group threshold yet") == 2
    assert "interval" in answer and "each participant's threshold" in answer
    group = pd.read_csv(result.out_dir / "tables" / "group_thresholds.csv")
    assert group["note"].str.contains("needs more participants").all()
    group_html = html[html.index('<section id="group">') :]
    table_html = group_html[: group_html.index("</table>")]
    for value in group["ci_low"]:
        assert f">{float(value):.3g}<" not in table_html  # no interval shown as a result


def test_wide_tables_are_split_with_their_labels_repeated():
    columns = {"participant": ["01", "02"], **{f"metric_{i}": [i, i + 0.5] for i in range(24)}}
    html = table(pd.DataFrame(columns))
    assert html.count("<table>") == 2 and "25 columns, shown in 2 parts" in html
    assert html.count(">participant</th>") == 2
    heads = re.findall(r"<thead><tr>(.*?)</tr></thead>", html)
    assert all(h.count("<th") <= MAX_TABLE_COLUMNS for h in heads)
    assert "metric_<wbr>0" in html
    narrow = table(pd.DataFrame({"participant": ["01"], "x": [1.0]}))
    assert narrow.count("<table>") == 1 and "parts" not in narrow


def test_round_off_zeros_are_shown_as_zero():
    # A lapse rate fitted at its bound 0 comes out of the optimiser as 3.93e-16 (seen in a
    # report's thresholds table); the page shows it as 0, small real values keep their digits.
    html = table(pd.DataFrame({"participant": ["01"], "lapse": [3.93e-16], "eta": [2.5e-4]}))
    cells = re.findall(r"<td[^>]*>(.*?)</td>", html)
    assert cells == ["01", "0", "0.00025"]
