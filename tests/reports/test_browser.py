"""The report in a real browser: headless Chromium driven over the DevTools protocol (stdlib only).

Chromium talks DevTools over a pipe (``--remote-debugging-pipe``: NUL-separated JSON on fds 3/4), so
no websocket client or port is needed. The test records every console message, exception, log entry,
dialog and network request while the page loads from file://, then checks the leaderboard order,
that HTML in names stays text, that the sortable tables work, and that every image decodes.
Set BFRBENCH_SAVE_SCREENSHOT=1 to also keep the screenshots in reports/_screenshots/.
"""
from __future__ import annotations

import base64
import json
import os
import queue
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from reports.render import render_report
from tests._helpers.report_synth import DS_A, EVIL, EXPECTED_ORDER, METRICS, make_run

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("BFRBENCH_CHROMIUM", "/usr/bin/chromium")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not Path(CHROMIUM).is_file(),
        reason=f"headless browser test needs Chromium at {CHROMIUM} (Debian: apt-get install -y chromium; "
        "or set BFRBENCH_CHROMIUM to its path)",
    ),
    pytest.mark.timeout(120),
]

FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
    "--no-default-browser-check", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--disable-extensions", "--disable-default-apps", "--mute-audio", "--hide-scrollbars",
    "--disable-features=Translate,MediaRouter,OptimizationHints", "--remote-debugging-pipe",
]


class DevTools:
    """A minimal Chrome DevTools Protocol client over ``--remote-debugging-pipe``."""

    def __init__(self, profile: Path, log: Path) -> None:
        to_chrome_r, self._to_chrome = os.pipe()
        self._from_chrome, from_chrome_w = os.pipe()

        def wire_fds() -> None:  # in the child: DevTools reads fd 3 and writes fd 4
            os.dup2(to_chrome_r, 3)
            os.dup2(from_chrome_w, 4)

        self._log = open(log, "wb")
        self.proc = subprocess.Popen(
            [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
            preexec_fn=wire_fds, pass_fds=(3, 4), start_new_session=True,
        )
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._next_id = 0
        self._replies: dict[int, dict] = {}
        self._events: queue.Queue[dict] = queue.Queue()
        self.events: list[dict] = []
        self._cond = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        buf = b""
        while True:
            chunk = os.read(self._from_chrome, 1 << 16)
            if not chunk:
                break
            buf += chunk
            while b"\0" in buf:
                raw, buf = buf.split(b"\0", 1)
                msg = json.loads(raw)
                with self._cond:
                    if "id" in msg:
                        self._replies[msg["id"]] = msg
                    else:
                        self.events.append(msg)
                    self._cond.notify_all()

    def send(self, method: str, params: dict | None = None, session: str | None = None, timeout: float = 30) -> dict:
        """Send one command and wait for its reply; raise on a protocol error."""
        self._next_id += 1
        mid = self._next_id
        msg: dict[str, Any] = {"id": mid, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._to_chrome, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        with self._cond:
            while mid not in self._replies:
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    raise TimeoutError(f"no reply to {method} (browser exit code {self.proc.poll()})")
                self._cond.wait(min(left, 0.5))
            reply = self._replies.pop(mid)
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply.get("result", {})

    def wait_event(self, method: str, session: str, since: int, timeout: float = 30) -> dict:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for ev in self.events[since:]:
                    if ev.get("method") == method and ev.get("sessionId") == session:
                        return ev
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no {method} event")
                self._cond.wait(min(left, 0.5))

    def close(self) -> None:
        try:
            self.send("Browser.close", timeout=5)
        except Exception:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)  # the group this test started
            self.proc.wait(timeout=10)
        for fd in (self._to_chrome, self._from_chrome):
            try:
                os.close(fd)
            except OSError:
                pass
        self._log.close()


class Page:
    """One tab: navigate, evaluate, screenshot, and the events it produced."""

    def __init__(self, dt: DevTools, width: int = 1400, height: int = 2000) -> None:
        self.dt = dt
        target = dt.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = dt.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.cmd(f"{domain}.enable")
        self.cmd("Emulation.setDeviceMetricsOverride",
                 {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})
        self.start = 0

    def cmd(self, method: str, params: dict | None = None) -> dict:
        return self.dt.send(method, params, session=self.session)

    def goto(self, url: str) -> None:
        self.start = len(self.dt.events)
        self.cmd("Page.navigate", {"url": url})
        self.dt.wait_event("Page.loadEventFired", self.session, self.start)

    def js(self, expression: str) -> Any:
        res = self.cmd("Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True})
        if "exceptionDetails" in res:
            raise AssertionError(f"page script failed: {res['exceptionDetails']}")
        return res["result"].get("value")

    def events(self) -> list[dict]:
        return [e for e in self.dt.events[self.start:] if e.get("sessionId") == self.session]

    def problems(self) -> list[str]:
        """Console errors/warnings, exceptions, error logs, dialogs and non-local requests since goto()."""
        out = []
        for e in self.events():
            m, p = e["method"], e.get("params", {})
            if m == "Runtime.exceptionThrown":
                out.append(f"exception: {p['exceptionDetails'].get('text')} {p['exceptionDetails'].get('exception', {}).get('description', '')}")
            elif m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "warning", "assert"):
                out.append(f"console.{p['type']}: {[a.get('value', a.get('description')) for a in p.get('args', [])]}")
            elif m == "Log.entryAdded" and p["entry"].get("level") in ("error", "warning"):
                out.append(f"log {p['entry']['level']}: {p['entry'].get('text')} {p['entry'].get('url', '')}")
            elif m == "Page.javascriptDialogOpening":
                out.append(f"dialog: {p.get('message')}")
            elif m == "Network.requestWillBeSent" and not p["request"]["url"].startswith(("file:", "data:")):
                out.append(f"network request: {p['request']['url']}")
            elif m == "Network.loadingFailed":
                out.append(f"load failed: {p.get('errorText')} {p.get('blockedReason', '')}")
        return out

    def requests(self) -> list[str]:
        return [e["params"]["request"]["url"] for e in self.events() if e["method"] == "Network.requestWillBeSent"]

    def screenshot(self, path: Path, clip: dict | None = None) -> Path:
        params: dict[str, Any] = {"format": "png"}
        if clip:
            params.update(clip=clip, captureBeyondViewport=True)
        path.write_bytes(base64.b64decode(self.cmd("Page.captureScreenshot", params)["data"]))
        return path


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("chromium")
    dt = DevTools(tmp / "profile", tmp / "chromium.log")
    try:
        dt.send("Browser.getVersion", timeout=60)
        yield dt
    finally:
        dt.close()


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    # 14 images: 56 rows per benchmark, more than one page of the per-image table
    return make_run(tmp_path_factory.mktemp("browser_run"), n_images=14)


@pytest.fixture(scope="module")
def report(run_dir) -> Path:
    return render_report(run_dir, data_roots=[run_dir.parent / "data"])  # the benchmark folder, trusted


def _save(shot: Path) -> None:
    if os.environ.get("BFRBENCH_SAVE_SCREENSHOT"):
        keep = REPO / "reports" / "_screenshots"
        keep.mkdir(exist_ok=True)
        shutil.copy(shot, keep / shot.name)


ALL_IMAGES_DECODE = """
Promise.all(Array.from(document.images).map(function (img) {
  img.loading = "eager";
  return img.decode().then(function () { return img.naturalWidth > 0 ? null : img.alt; },
                           function () { return "undecodable: " + img.alt; });
})).then(function (r) { return {n: r.length, bad: r.filter(function (x) { return x !== null; })}; })
"""


def test_report_in_headless_chromium(browser, report, tmp_path):
    html = report.read_text()
    assert "http://" not in html and "https://" not in html
    page = Page(browser)
    page.goto(report.as_uri())

    # screenshots of the page as it opens (before the clicks below re-sort tables)
    page.js(ALL_IMAGES_DECODE)
    shot = page.screenshot(tmp_path / "report-top.png")
    assert shot.stat().st_size > 20_000
    _save(shot)
    box = page.js("""(() => { const g = document.querySelector('#bench-1 .gallery-row');
        const r = g.getBoundingClientRect(); return {x: 0, y: r.top + window.scrollY - 40, width: 1400, height: 1100, scale: 1}; })()""")
    _save(page.screenshot(tmp_path / "report-gallery.png", clip=box))

    # our script ran (so its CSP hash is right) and nothing else did
    assert page.js("document.documentElement.getAttribute('data-js')") == "ready"
    assert page.js("typeof window.__pwned") == "undefined"
    assert page.js("document.querySelectorAll('script:not([type])').length") == 1

    # leaderboard order from the live DOM; the <script> method name is visible text
    order = page.js("Array.from(document.querySelectorAll('#overall tbody tr')).map(r => r.dataset.method)")
    assert order == EXPECTED_ORDER
    assert page.js(f"document.querySelector('#overall').innerText.includes({json.dumps(EVIL)})")
    assert page.js(f"document.body.innerText.includes({json.dumps(EVIL)})")

    # static tables sort on click: mean rank descending reverses the order
    order_desc = page.js("""(() => { const th = document.querySelectorAll('#overall thead th')[2];
        th.click(); th.click();
        return Array.from(document.querySelectorAll('#overall tbody tr')).map(r => r.dataset.method); })()""")
    assert order_desc == EXPECTED_ORDER[::-1]

    # the per-image table: built from JSON, sortable, filterable, paged
    assert page.js("document.getElementById('pi-1').dataset.ready") == "1"
    info = page.js("document.querySelector('#pi-1 .pi-info').textContent")
    assert info == "1\u201350 of 56 rows"
    col = page.js("""(() => { const ths = Array.from(document.querySelectorAll('#pi-1 thead th'));
        return ths.findIndex(th => th.textContent.startsWith('psnr')); })()""")
    assert col >= 3
    assert page.js(f"document.querySelectorAll('#pi-1 thead th')[{col}].title") == (
        f"psnr \u00b7 higher is better \u00b7 protocol: {METRICS['psnr']['protocol']}")
    sorted_psnr = page.js(f"""(() => {{ const th = document.querySelectorAll('#pi-1 thead th')[{col}];
        th.click();
        const asc = Array.from(document.querySelectorAll('#pi-1 tbody tr')).map(r => Number(r.cells[{col}].dataset.v));
        th.click();
        const desc = Array.from(document.querySelectorAll('#pi-1 tbody tr')).map(r => Number(r.cells[{col}].dataset.v));
        return [asc, desc]; }})()""")
    asc, desc = sorted_psnr
    assert asc == sorted(asc) and desc == sorted(desc, reverse=True) and len(asc) == 50
    assert asc[0] < 16 and desc[0] > 34  # the planted worst/best codeformer images lead each way
    filtered = page.js(f"""(() => {{ const s = document.querySelector('#pi-1 select');
        s.value = {json.dumps(EVIL)}; s.dispatchEvent(new Event('change'));
        const rows = Array.from(document.querySelectorAll('#pi-1 tbody tr'));
        return [rows.length, new Set(rows.map(r => r.cells[1].textContent)).size,
                rows[0].cells[1].textContent, document.querySelector('#pi-1 .pi-info').textContent]; }})()""")
    assert filtered == [14, 1, EVIL, "1\u201314 of 14 rows"]
    paged = page.js("""(() => { const s = document.querySelector('#pi-1 select');
        s.value = ''; s.dispatchEvent(new Event('change'));
        document.querySelectorAll('#pi-1 .pi-controls button')[1].click();
        return [document.querySelectorAll('#pi-1 tbody tr').length, document.querySelector('#pi-1 .pi-info').textContent]; })()""")
    assert paged == [6, "51\u201356 of 56 rows"]
    typed = page.js("""(() => { const q = document.querySelector('#pi-2 input[type=search]');
        q.value = 'onerror'; q.dispatchEvent(new Event('input'));
        return Array.from(document.querySelectorAll('#pi-2 tbody tr')).map(r => r.cells[0].textContent); })()""")
    assert len(typed) == 4 and all(t.startswith('"><img') for t in typed)

    decoded = page.js(ALL_IMAGES_DECODE)
    assert decoded["n"] > 50 and decoded["bad"] == []

    assert page.problems() == []
    assert all(u.startswith(("file:", "data:")) for u in page.requests())
    print(f"screenshots: {tmp_path / 'report-top.png'}, {tmp_path / 'report-gallery.png'}")


def test_linked_images_load_under_the_policy(browser, run_dir, tmp_path):
    out = tmp_path / "linked" / "report.html"
    render_report(run_dir, out, embed_images=False, data_roots=[run_dir.parent / "data"])
    page = Page(browser)
    page.goto(out.as_uri())
    decoded = page.js(ALL_IMAGES_DECODE)
    assert decoded["n"] > 50 and decoded["bad"] == []
    # a CSS crop shows the eye band: the crop box holds the scaled image, offset so the band fills it
    crop = page.js("""(() => { const c = document.querySelector('#bench-1 .tile.gt .crop.css');
        const b = c.getBoundingClientRect(), i = c.querySelector('img').getBoundingClientRect();
        return {ratio: b.width / b.height, scale: i.width / b.width, dx: (b.left - i.left) / i.width,
                 dy: (b.top - i.top) / i.height}; })()""")
    assert crop["ratio"] == pytest.approx(3.0, abs=0.05)
    assert crop["scale"] == pytest.approx(512 / 240, rel=0.02)
    assert crop["dx"] == pytest.approx(136 / 512, abs=0.01) and crop["dy"] == pytest.approx(200 / 512, abs=0.01)
    assert page.problems() == []
    requested = page.requests()
    assert all(u.startswith(("file:", "data:image/png")) for u in requested)  # plots stay embedded
    assert any(u.startswith("file:") and f"/images/{DS_A}/" in u for u in requested)


def test_relative_data_root_run_shows_every_gallery_image(browser, tmp_path, monkeypatch):
    """A run made from ``./datasets`` with a relative --out, then moved: every gallery image decodes."""
    from tests.bench.engine.test_run_folder_paths import N_IMAGES, make_relative_run

    run = make_relative_run(tmp_path / "work", monkeypatch)
    moved = tmp_path / "moved"
    shutil.move(str(run), moved)
    monkeypatch.chdir(tmp_path)
    page = Page(browser)
    page.goto(render_report(moved, data_roots=[tmp_path / "work" / "datasets"]).as_uri())
    decoded = page.js(ALL_IMAGES_DECODE)
    gallery = page.js("document.querySelectorAll('.gallery-row img').length")
    missing = page.js("Array.from(document.querySelectorAll('.gallery-row .missing')).map(e => e.textContent)")
    assert missing == []
    assert gallery >= N_IMAGES * 4  # LQ, lq, classical and GT thumbnails of each face (plus crops)
    assert decoded["bad"] == [] and decoded["n"] >= gallery
    assert page.problems() == []


def _not_blank(png: Path) -> float:
    """The standard deviation of a screenshot's grey levels (a blank or failed plot is ~0)."""
    import cv2

    img = cv2.imread(str(png), cv2.IMREAD_GRAYSCALE)
    assert img is not None
    return float(img.std())


def test_paper_plots_slider_and_page_width(browser, report, tmp_path):
    """The figures for paper readers are present, decoded and large enough to read; the before/after
    slider clips and zooms; nothing is wider than a 1400 px window; every leaderboard value shows n."""
    page = Page(browser)
    page.goto(report.as_uri())
    page.js(ALL_IMAGES_DECODE)
    plots = page.js("""Array.from(document.querySelectorAll('img.paper-plot')).map(function (img) {
        var r = img.getBoundingClientRect();
        return {kind: img.dataset.kind, w: img.naturalWidth, h: img.naturalHeight, shown: r.width,
                y: r.top + window.scrollY, alt: img.alt}; })""")
    assert sorted(p["kind"] for p in plots) == ["dots", "dots", "forest", "pd", "ranks"]
    for p in plots:  # drawn at (almost) their own size: labels at 7-9 pt stay readable
        assert p["w"] >= 400 and p["h"] >= 200 and p["shown"] >= 0.75 * min(p["w"], 1350), p
    for p in plots:
        shot = page.screenshot(tmp_path / f"plot-{p['kind']}-{int(p['y'])}.png",
                               clip={"x": 0, "y": p["y"], "width": 1400, "height": min(p["h"], 900), "scale": 1})
        assert _not_blank(shot) > 10, p
        _save(shot)

    # no page-wide horizontal scrolling at 1400 px: wide tables scroll inside their own box
    assert page.js("document.documentElement.scrollWidth") <= 1400
    # every value of the per-benchmark leaderboards shows its n, and the significance letters are there
    cells = page.js("""Array.from(document.querySelectorAll('table.board tbody td.num[title]'))
        .filter(td => td.title.indexOf(' = ') > 0).map(td => td.innerText)""")
    assert cells and all("n=" in c for c in cells)
    assert page.js("document.querySelectorAll('table.board sup.grp').length") >= 12
    assert "Holm" in page.js("document.querySelector('.sig-note').textContent")

    # the slider: right side clipped at the slider, both sides zoomed about the pointer
    assert page.js("document.querySelector('#cmp-1').dataset.ready") == "1"
    state = page.js("""(() => { const box = document.querySelector('#cmp-1');
        const pos = box.querySelector('.cmp-pos'), zoom = box.querySelector('.cmp-zoom');
        const right = box.querySelector('.cmp-right');
        right.value = String(right.options.length - 1); right.dispatchEvent(new Event('change'));
        pos.value = '20'; pos.dispatchEvent(new Event('input'));
        zoom.value = '4'; zoom.dispatchEvent(new Event('change'));
        const r = box.querySelector('.cmp-view').getBoundingClientRect();
        box.querySelector('.cmp-view').dispatchEvent(new PointerEvent('pointermove',
            {clientX: r.left + r.width * 0.25, clientY: r.top + r.height * 0.75, bubbles: true}));
        const shown = Array.from(box.querySelectorAll('.cmp-layer')).filter(l => !l.hidden);
        const b = box.querySelector('.cmp-layer.cmp-b');
        return {shown: shown.map(l => l.dataset.label), clip: b.style.clipPath, label: b.dataset.label,
                transform: b.querySelector('img').style.transform, origin: b.querySelector('img').style.transformOrigin,
                zoom: box.dataset.zoom, line: box.querySelector('.cmp-line').style.left}; })()""")
    assert state["shown"] == ["LQ", "GT"] and state["label"] == "GT"
    assert state["clip"] == "inset(0px 0px 0px 20%)" and state["line"] == "20%"
    assert state["transform"] == "scale(4)" and state["origin"] == "25% 75%" and state["zoom"] == "4"
    box = page.js("""(() => { const r = document.querySelector('#cmp-1').getBoundingClientRect();
        return {x: r.left, y: r.top + window.scrollY, width: r.width, height: r.height, scale: 1}; })()""")
    shot = page.screenshot(tmp_path / "report-slider.png", clip=box)
    assert _not_blank(shot) > 10
    _save(shot)
    assert page.problems() == []
