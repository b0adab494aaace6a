"""report.html in a real headless Chromium: no failed load, every image decodes, tables shown.

Without Chromium the test is skipped, unless XLV_REQUIRE_CHROMIUM=1 makes that a failure.
"""

from __future__ import annotations

import json
import re
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from browser import chromium_binary, chromium_page
from fake_runs import make_pipeline, make_sweep
from hydra import compose, initialize_config_dir
from PIL import Image

from xlvision.paths import config_dir
from xlvision.report.stage import report

pytestmark = pytest.mark.chromium

# Runs before any image loads: records every element whose load failed (capture phase sees
# img/link/script errors), then on `load` writes what the page holds onto <body data-*>.
PROBE = """<script>
window.__failed = [];
window.addEventListener("error", (e) => {
  const t = e.target;
  if (t && t !== window) window.__failed.push(t.alt || t.src || t.href || t.tagName);
}, true);
window.addEventListener("load", () => {
  const imgs = [...document.images];
  const tables = {};
  for (const table of document.querySelectorAll("table[data-metric]")) {
    tables[table.dataset.metric] = [...table.querySelectorAll("tbody tr")].map(
      (tr) => [...tr.children].map((c) => c.textContent.trim()));
  }
  const b = document.body.dataset;
  b.images = imgs.length;
  b.decoded = imgs.filter((i) => i.complete && i.naturalWidth > 0).length;
  b.broken = JSON.stringify(imgs.filter((i) => !(i.complete && i.naturalWidth > 0)).map((i) => i.alt));
  b.failed = JSON.stringify(window.__failed);
  b.tables = JSON.stringify(tables);
  b.probed = "yes";
});
</script>"""


@pytest.fixture(scope="module")
def chromium() -> str:
    """The Chromium binary; skips (or fails under XLV_REQUIRE_CHROMIUM=1) without one."""
    return chromium_binary()


class BodyData(HTMLParser):
    """The data-* attributes of <body> in a dumped DOM."""

    def __init__(self) -> None:
        super().__init__()
        self.data: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "body":
            self.data = {k[5:]: v or "" for k, v in attrs if k.startswith("data-")}


def probe(chromium: str, page: Path, tmp_path: Path, screenshot: Path) -> dict[str, str]:
    """Open a probed copy of `page` beside it; returns what the probe wrote on <body>."""
    probed = page.with_name(f"probed_{page.name}")
    probed.write_text(
        page.read_text(encoding="utf-8").replace("<head>", "<head>" + PROBE, 1), encoding="utf-8"
    )
    profile = tmp_path / f"profile-{page.stem}"
    command = [
        chromium,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        f"--user-data-dir={profile}",
        f"--screenshot={screenshot}",
        "--window-size=1280,2000",
        "--dump-dom",
        probed.as_uri(),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    parser = BodyData()
    parser.feed(done.stdout)
    assert parser.data.get("probed") == "yes", f"probe did not run: {done.stdout[:500]}"
    return parser.data


@pytest.fixture(scope="module")
def report_page(chromium: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp_path = tmp_path_factory.mktemp("report")
    sweep = make_sweep(tmp_path)
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = compose(
            config_name="report",
            overrides=[f"runs=[{sweep}]", f"report.out_dir={tmp_path / 'out'}"],
        )
    _, artifacts = report(cfg)
    return artifacts["report.html"]


def test_report_html_renders_in_chromium(chromium: str, report_page: Path, tmp_path: Path) -> None:
    shot = tmp_path / "shot.png"
    body = probe(chromium, report_page, tmp_path, shot)
    n_png = len(list(report_page.parent.glob("*.png")))
    assert int(body["images"]) == n_png == 5
    assert int(body["decoded"]) == n_png
    assert json.loads(body["broken"]) == [] and json.loads(body["failed"]) == []
    tables = json.loads(body["tables"])
    assert list(tables) == ["test/{lang}/acc"]
    assert tables["test/{lang}/acc"] == [
        ["ar", "0.830 ± 0.042 (n=2, 1 failed)", "—"],
        ["hi", "incomplete (n=1)", "—"],
        ["kn", "0.920 ± 0.020 (n=3)", "0.960 ± 0.014 (n=2, 1 failed)"],
    ]
    with Image.open(shot) as image:
        assert image.format == "PNG" and image.size == (1280, 2000)
        colours = image.convert("L").getextrema()
        assert colours[1] - colours[0] > 100  # not a blank page


def test_probe_catches_a_broken_image_and_a_failed_load(
    chromium: str, report_page: Path, tmp_path: Path
) -> None:
    text = report_page.read_text(encoding="utf-8")
    first = re.search(r"data:image/png;base64,([A-Za-z0-9+/=]{200})", text)
    assert first is not None
    broken = text.replace(first.group(1), first.group(1)[:100] + "A" * 100, 1)
    broken = broken.replace("</body>", '<img alt="gone" src="gone.png"></body>')
    page = report_page.with_name("broken.html")
    page.write_text(broken, encoding="utf-8")
    body = probe(chromium, page, tmp_path, tmp_path / "broken.png")
    assert int(body["decoded"]) == int(body["images"]) - 2
    assert json.loads(body["broken"]) == ["heatmap_test-lang-acc", "gone"]
    assert json.loads(body["failed"]) == ["heatmap_test-lang-acc", "gone"]


# Every element of the page that has a box: none is wider than its box or sticks out of the
# body (text cut, a table running off the page); scrolling boxes (`pre`) are meant to.
OVERFLOWS = """(() => {
  const out = [];
  const page = document.documentElement;
  if (page.scrollWidth > window.innerWidth) out.push(`page: ${page.scrollWidth} px wide`);
  const right = document.body.getBoundingClientRect().right;
  for (const el of document.querySelectorAll("body *")) {
    const box = el.getBoundingClientRect();
    if (!box.width) continue;  // not shown (a closed <details>)
    const name = `${el.tagName.toLowerCase()} "${el.textContent.trim().slice(0, 40)}"`;
    const style = getComputedStyle(el);
    if (el.clientWidth && el.scrollWidth > el.clientWidth + 1 && style.overflowX === "visible")
      out.push(`${name}: text ${el.scrollWidth} px in a ${el.clientWidth} px box`);
    if (box.right > right + 1) out.push(`${name}: ends at ${box.right} px, the body at ${right}`);
  }
  return out;
})()"""


def test_pipeline_report_fits_its_boxes_in_chromium(
    chromium: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    from xlvision.stages.pipeline import report_config

    root = make_pipeline(tmp_path_factory.mktemp("pipeline") / "pipe")
    stages = ["pretrain", "finetune_kn", "finetune_ar", "finetune_hi", "integrate", "eval"]
    _, artifacts = report(report_config(root, [root / stage for stage in stages]))
    page_file = artifacts["report.html"]
    evaluated = json.loads((root / "eval" / "metrics.json").read_text())["metrics"]
    profile = tmp_path_factory.mktemp("profile")
    with chromium_page(profile, page_file.as_uri()) as page:
        # the tab opens on about:blank: wait for the report itself to have loaded
        page.wait_for("document.getElementById('summary') && document.readyState === 'complete'")
        page.evaluate("document.querySelectorAll('details').forEach((d) => (d.open = true))")
        assert page.evaluate(OVERFLOWS) == []
        tiles = page.evaluate(
            "Object.fromEntries([...document.querySelectorAll('#summary .tile')].map("
            "(t) => [t.querySelector('.label').textContent, t.querySelector('.value').textContent]))"
        )
        shown = page.evaluate("[...document.images].every((i) => i.complete && i.naturalWidth)")
        # The check sees what it is for: a cell whose number cannot wrap, wider than the page.
        page.evaluate(
            "document.querySelector('#summary td').textContent = '0.123456789'.repeat(40)"
        )
        caught = page.evaluate(OVERFLOWS)
    assert any(problem.startswith('td "0.123456789') for problem in caught), caught
    assert tiles["digits read, script given"] == f"{evaluated['test/mean/acc']:.3f}"
    assert tiles["digits read, script not given"] == f"{evaluated['test/mean/routed_acc']:.3f}"
    assert shown
