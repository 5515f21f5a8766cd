"""The web demo in a real browser: `modalign serve` started on a free port over tiny saved models, driven in headless
Chromium through Playwright (the system's Chromium: no browser download). Every answer the page shows is checked
against what the same saved model gives through the Python API; every request the page makes must stay on this
machine. Screenshots go to each test's tmp_path; with MODALIGN_WRITE_FIGURES=1 the chat one also to
docs/figures/serve.png (the README's).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

import pytest
from PIL import Image, ImageDraw
from serve_models import ANSWERS, QUESTIONS, fitted_vlm, image_folder, save_run, tiny_dual

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[1]
HOW_TO_GET = (
    "no Chromium for the browser tests: install Debian's (`apt-get install chromium`, which `make setup` does as "
    "root), or run `python -m playwright install chromium`, or set MODALIGN_CHROMIUM=/path/to/chromium"
)
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip
LOCAL = {"127.0.0.1", "localhost", "::1", "[::1]"}


def find_chromium() -> str | None:
    """MODALIGN_CHROMIUM, a Chromium on the PATH, or the one Playwright downloaded, whichever exists first."""
    names = ("chromium", "chromium-browser", "google-chrome")
    for candidate in [os.environ.get("MODALIGN_CHROMIUM"), *(shutil.which(n) for n in names)]:
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        path = p.chromium.executable_path
    return path if os.access(path, os.X_OK) else None


def scene() -> Image.Image:
    """A red picture with a blue square: the tiny VLM was taught to call red pictures ANSWERS["red"]."""
    im = Image.new("RGB", (40, 32), "red")
    ImageDraw.Draw(im).rectangle((14, 20, 26, 30), fill="blue")
    return im


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    pytest.importorskip("gradio", reason="the web demo needs gradio: pip install 'modalign[serve]'")
    root = tmp_path_factory.mktemp("serve")
    save_run(fitted_vlm(), root / "runs" / "llava")
    tiny_dual().save_pretrained(root / "runs" / "siglip" / "final")
    image_folder(root / "folder", n=12)
    scene().save(root / "scene.png")
    (root / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(3000))
    Image.new("1", (7000, 6000)).save(root / "bomb.png")  # 42 million pixels in a few kB
    (root / "notes.txt").write_text("not an image")
    (root / "huge.png").write_bytes(os.urandom(11 * 2**20))  # over the 10 MB upload limit
    return root


@pytest.fixture(scope="module")
def server(files):
    """`modalign serve` in its own process on a free port; its URL once it says it is listening."""
    from modalign.serve.app import free_port

    port = free_port()
    log = files / "server.log"
    cmd = [sys.executable, "-m", "modalign.cli", "serve", "runs/llava", "runs/siglip/final", "--images", "folder",
           "--port", str(port), "--index-cache", str(files / "cache")]  # fmt: skip
    import modalign

    src = str(Path(modalign.__file__).resolve().parents[1])  # the modalign under test, whatever the cwd
    path = os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": "1", "GRADIO_TEMP_DIR": str(files / "uploads")}
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, cwd=files, stdout=out, stderr=subprocess.STDOUT, env=env)
    deadline = time.monotonic() + 300
    while "open http" not in log.read_text():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"modalign serve did not start:\n{log.read_text()[-3000:]}")
        time.sleep(0.2)
    yield f"http://127.0.0.1:{port}/"
    proc.send_signal(signal.SIGINT)  # gradio closes its server on Ctrl-C
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="module")
def browser():
    playwright = pytest.importorskip("playwright.sync_api", reason="pip install playwright (the test extra has it)")
    chromium = find_chromium()
    if chromium is None:
        pytest.skip(HOW_TO_GET)
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium, headless=True, args=ARGS)
        yield b
        b.close()


@pytest.fixture()
def page(browser, server):
    from playwright.sync_api import expect

    expect.set_options(timeout=60_000)  # a busy two-core machine: waiting is not what is tested
    ctx = browser.new_context(viewport={"width": 1280, "height": 1000})
    outside: list[str] = []

    def route(r):
        u = urlparse(r.request.url)
        if u.scheme in ("data", "blob") or u.hostname in LOCAL:
            r.continue_()
        else:
            outside.append(r.request.url)
            r.abort()

    ctx.route("**/*", route)
    pg = ctx.new_page()
    pg.goto(server)
    pg.wait_for_selector("#send")
    yield pg
    ctx.close()
    assert outside == [], f"the page tried to reach outside: {outside}"


def upload(page, elem: str, path: Path) -> None:
    page.locator(f"#{elem} input[type=file]").set_input_files(str(path))


def choose(page, elem: str, option: str) -> None:
    """Pick `option` in the dropdown `#elem` (its list opens inside the dropdown's block)."""
    page.locator(f"#{elem} input").click()
    page.locator(f"#{elem}").get_by_role("option", name=option, exact=True).click()


def tab(page, name: str) -> None:
    page.get_by_role("tab", name=name).click()


def test_chat_answers_turn_after_turn_and_look_shows_where(page, files, tmp_path):
    from playwright.sync_api import expect

    from modalign.cli.chat import reply
    from modalign.models import load_model

    model = load_model(files / "runs" / "llava" / "final")
    upload(page, "chat-upload", files / "scene.png")
    expect(page.locator("#chat-status")).to_contain_text("40 x 32 pixels")
    expect(page.locator("#chat-card")).to_contain_text("llava · vision-language model")
    expect(page.locator("#chat-card")).to_contain_text("stage instruct: 100 steps")
    messages = []
    for q in QUESTIONS:
        messages.append({"role": "user", "content": ("<image>\n" if not messages else "") + q})
        want = reply(model, scene(), messages, max_new_tokens=64)
        messages.append({"role": "assistant", "content": want})
        page.locator("#question textarea").fill(q)
        page.locator("#send").click()
        bots = page.locator('#chat [data-testid="bot"]')
        expect(bots).to_have_count(len(messages) // 2)
        expect(bots.last).to_have_text(want)
    assert messages[1]["content"] == ANSWERS["red"]  # the model answers what it was taught
    expect(page.locator('#chat [data-testid="user"]')).to_have_text(QUESTIONS)
    page.screenshot(path=str(tmp_path / "chat.png"), full_page=True)
    if os.environ.get("MODALIGN_WRITE_FIGURES") == "1":
        page.screenshot(path=str(REPO / "docs" / "figures" / "serve.png"), full_page=True)

    tab(page, "Look")
    latest = f"{len(messages) // 2}. {messages[-1]['content']}"
    expect(page.locator("#look-answer input")).to_have_value(latest)  # the chat's last update has reached Look
    choose(page, "look-answer", f"1. {ANSWERS['red']}")
    choose(page, "look-word", "circle")
    page.locator("#look-run").click()
    expect(page.locator("#look-peak")).to_contain_text("circle (rollout): the map peaks at patch row")
    expect(page.locator("#look-map img")).to_be_visible()
    page.screenshot(path=str(tmp_path / "look.png"), full_page=True)


def test_bad_uploads_are_answered_in_the_page(page, files, tmp_path):
    from playwright.sync_api import expect

    status = page.locator("#chat-status")
    upload(page, "chat-upload", files / "bad.png")
    expect(status).to_have_text(
        "Could not read bad.png as an image: the file is damaged or not a PNG, JPEG, WebP, BMP or GIF image"
    )
    page.screenshot(path=str(tmp_path / "corrupt.png"), full_page=True)
    upload(page, "chat-upload", files / "bomb.png")
    expect(status).to_have_text("bomb.png is 7000 x 6000 pixels; images are limited to 40 million pixels")
    page.locator("#question textarea").fill("What is in the picture?")
    page.locator("#send").click()

    def toast(text):  # toasts stack up; find the one that says this
        return page.locator('[data-testid="toast-body"]').filter(has_text=text).first

    expect(toast("Upload an image first")).to_be_visible()
    upload(page, "chat-upload", files / "notes.txt")  # refused by type in the page, never sent
    expect(toast("Invalid file type: notes.txt")).to_be_visible()
    upload(page, "chat-upload", files / "huge.png")  # refused by size in the page, never sent
    expect(toast("exceed the maximum allowed size")).to_be_visible()
    expect(page.locator('#chat [data-testid="bot"]')).to_have_count(0)


def test_classify_search_and_gap_show_the_dual_encoders_numbers(page, files, tmp_path):
    from playwright.sync_api import expect

    from modalign.eval.metrics.geometry import modality_gap
    from modalign.models import load_model
    from modalign.serve.gap import pair_texts
    from modalign.serve.index import build_index, folder_captions
    from modalign.serve.search import label_probabilities, search

    model = load_model(files / "runs" / "siglip" / "final")
    labels = ["red", "green", "blue"]
    probs = label_probabilities(model, scene(), labels)
    index = build_index(model, "test", files / "folder", files / "test-cache")
    hits = search(model, index, "a red circle", 8)
    rows, _, y = pair_texts(model, index, "captions", folder_captions(files / "folder"), None)
    gap = modality_gap(index.vectors[rows], y)[1]

    tab(page, "Search")
    upload(page, "classify-upload", files / "scene.png")
    page.locator("#labels textarea").fill(", ".join(labels))
    page.locator("#classify").click()
    expect(page.locator('#classify-result [data-testid="label-output-value"]')).to_have_text(max(probs, key=probs.get))
    page.locator("#query textarea").fill("a red circle")
    page.locator("#search").click()
    expect(page.locator("#index-status")).to_contain_text("13 images indexed in folder/")
    expect(page.locator("#index-status")).to_contain_text("1 skipped as unreadable or too large: images/broken.png")
    captions = page.locator("#results .caption-label")
    expect(captions).to_have_text([f"{s:.3f} · {index.names[i]}" for i, s in hits])
    page.screenshot(path=str(tmp_path / "search.png"), full_page=True)

    tab(page, "Gap")
    page.locator("#gap-run").click()
    expect(page.locator("#gap-number")).to_contain_text(f"Modality gap: {gap:.3f}")
    expect(page.locator("#gap-number")).to_contain_text("over 12 image-text pairs (captions")
    expect(page.locator("#gap-plot img")).to_be_visible()
    page.screenshot(path=str(tmp_path / "gap.png"), full_page=True)
