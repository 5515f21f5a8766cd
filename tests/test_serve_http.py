"""`modalign serve` as a server, without a browser: the command's errors, what the server serves and what it refuses
(files outside its upload folder, paths smuggled into an event, its client API)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest
from serve_models import image_folder, save_run, tiny_dual

from modalign.cli import main

pytest.importorskip("gradio", reason="the web demo needs gradio: pip install 'modalign[serve]'")


def test_the_command_names_what_is_wrong_before_serving(tmp_path, capsys):
    assert main(["serve", str(tmp_path / "nothing")]) == 2
    assert "is neither a saved model" in capsys.readouterr().err
    tiny_dual().save_pretrained(tmp_path / "d")
    assert main(["serve", str(tmp_path / "d"), "--images", str(tmp_path / "none")]) == 2
    err = capsys.readouterr().err
    assert "--images" in err and "not a folder" in err


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from modalign.serve.app import serve

    root = tmp_path_factory.mktemp("http")
    save_run(tiny_dual(), root / "dual")
    image_folder(root / "folder", n=2)
    demo, url = serve([root / "dual"], images=root / "folder", index_cache=root / "cache", block=False)
    yield url, root
    demo.close()


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def test_the_page_is_served_on_localhost_and_files_are_not(server):
    url, root = server
    assert url.startswith("http://127.0.0.1:")
    status, html = _get(url)
    assert status == 200 and "modalign demo" in html
    for path in ("/etc/passwd", str(root / "dual" / "final" / "config.json"), str(root / "folder" / "extra.jpg")):
        status, body = _get(f"{url}gradio_api/file={path}")
        assert status == 403, (path, status, body)
    status, info = _get(f"{url}gradio_api/info")
    assert json.loads(info) == {"named_endpoints": {}, "unnamed_endpoints": {}}  # no client API to the models


def test_a_path_smuggled_into_an_event_is_refused(server):
    url, root = server
    config = json.loads(_get(f"{url}config")[1])
    ids = {c["id"]: c.get("props", {}).get("elem_id") for c in config["components"]}
    (fn,) = [d["id"] for d in config["dependencies"] if any(ids.get(t[0]) == "classify" for t in d["targets"])]
    target = str(root / "folder" / "extra.jpg")  # a real image, but not one uploaded through the page
    body = {
        "data": ["dual", {"path": target, "meta": {"_type": "gradio.FileData"}}, "red, green"],
        "fn_index": fn,
        "session_hash": "smuggler",
    }
    req = urllib.request.Request(
        f"{url}gradio_api/queue/join", json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    urllib.request.urlopen(req, timeout=30).read()
    with urllib.request.urlopen(f"{url}gradio_api/queue/data?session_hash=smuggler", timeout=60) as stream:
        for line in stream:
            msg = json.loads(line.decode()[len("data: ") :]) if line.startswith(b"data: ") else {}
            if msg.get("msg") == "process_completed":
                break
    assert msg["success"] is False and "output" in msg and not msg["output"].get("data")


def test_the_queue_runs_one_model_call_at_a_time_and_no_event_is_a_client_api(tmp_path):
    from modalign.serve.app import build_app
    from modalign.serve.index import FolderIndex
    from modalign.serve.runs import load_served

    save_run(tiny_dual(), tmp_path / "dual")
    demo = build_app(load_served([tmp_path / "dual"]), FolderIndex(None, tmp_path / "cache"), max_queue=5)
    assert demo._queue.max_size == 5
    fns = list(demo.fns.values())
    assert all(fn.api_visibility == "private" for fn in fns)
    model_calls = [fn for fn in fns if fn.name in ("on_send", "on_run", "on_classify", "on_search")]
    assert len(model_calls) == 7  # send (button, enter), look, classify, search (button, enter), gap
    assert {(fn.concurrency_id, fn.concurrency_limit) for fn in model_calls} == {("vlm", 1), ("dual", 1)}


def test_a_port_in_use_is_named_and_only_loopback_counts_as_local(tmp_path):
    import socket

    from modalign.registry import ConfigError
    from modalign.serve.app import is_loopback, serve

    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.2") and not is_loopback("example.org")
    tiny_dual().save_pretrained(tmp_path / "d")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ConfigError, match=f"cannot listen on 127.0.0.1:{port}.*choose another --port"):
            serve([tmp_path / "d"], port=port, index_cache=tmp_path / "c", block=False)
