"""The page and its server: four tabs (Chat, Look, Search, Gap) over the served models, launched on localhost with
every outside request off.

Offline and bounded by construction: analytics and the version check off (package __init__), no share link, no
MCP server, no monitoring, the built-in theme (its fonts ship with gradio), no server-side rendering (no Node);
uploads limited in bytes by gradio and in pixels by safety.py; one generation at a time per model family, with at
most `max_queue` requests waiting; handlers are not callable through gradio's client API; nothing outside gradio's
upload folder is served.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from pathlib import Path

import gradio as gr

from ..registry import ConfigError
from .chat import build_chat_tab
from .gap import build_gap_tab
from .index import FolderIndex
from .look import build_look_tab
from .runs import ServedModel
from .safety import MAX_UPLOAD_BYTES
from .search import build_search_tab

TITLE = "modalign demo"
INTRO = (
    "# modalign demo\n"
    "Talk to a vision-language model about an image, see where it looked, search and classify images with a dual "
    "encoder, and look at the modality gap. Everything runs on this machine; the page makes no outside requests."
)


def build_app(served: list[ServedModel], folder: FolderIndex, max_queue: int = 16) -> gr.Blocks:
    vlms = [s for s in served if s.kind == "vlm"]
    duals = [s for s in served if s.kind == "dual"]
    with gr.Blocks(title=TITLE, analytics_enabled=False, delete_cache=(3600, 3600)) as demo:
        gr.Markdown(INTRO)
        with gr.Tab("Chat", id="tab-chat"):
            chat = build_chat_tab(vlms)
        with gr.Tab("Look", id="tab-look"):
            build_look_tab(chat)
        with gr.Tab("Search", id="tab-search"):
            build_search_tab(duals, folder)
        with gr.Tab("Gap", id="tab-gap"):
            build_gap_tab(duals, folder)
    demo.queue(default_concurrency_limit=1, max_size=max_queue)
    return demo


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def launch(demo: gr.Blocks, host: str = "127.0.0.1", port: int | None = None) -> str:
    """Start serving in a background thread; returns the page's URL (`demo.close()` stops it)."""
    port = port or free_port(host)
    try:
        _launch(demo, host, port)
    except OSError as err:  # gradio says "Cannot find empty port" for a port in use
        raise ConfigError(
            f"cannot listen on {host}:{port} ({err.strerror or 'in use'}): choose another --port"
        ) from None
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    return f"http://[{shown}]:{port}/" if ":" in shown else f"http://{shown}:{port}/"


def _launch(demo: gr.Blocks, host: str, port: int) -> None:
    demo.launch(
        server_name=host,
        server_port=port,
        share=False,
        prevent_thread_lock=True,
        quiet=True,
        show_error=False,
        max_file_size=MAX_UPLOAD_BYTES,
        ssr_mode=False,
        pwa=False,
        mcp_server=False,
        enable_monitoring=False,
        footer_links=[],
        theme=gr.themes.Default(),  # its fonts are LocalFont files shipped with gradio
        allowed_paths=[],
        inbrowser=False,
    )


def default_index_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "modalign" / "serve-index"


def serve(
    runs: list[str | Path],
    host: str = "127.0.0.1",
    port: int | None = None,
    images: str | Path | None = None,
    index_cache: str | Path | None = None,
    max_queue: int = 16,
    trust_code: bool = False,
    block: bool = True,
):
    """Load the RUNs, build the page and serve it; with `block` until Ctrl-C, else returns (demo, url)."""
    from .runs import load_served

    if images is not None and not Path(images).is_dir():
        raise ConfigError(f"--images {images}: not a folder")
    if max_queue < 1:
        raise ConfigError(f"--max-queue must be >= 1, got {max_queue}")
    served = load_served(runs, trust_code=trust_code)
    folder = FolderIndex(images, index_cache or default_index_cache())
    demo = build_app(served, folder, max_queue)
    url = launch(demo, host, port)
    for s in served:
        print(f"serving {s.label} ({s.kind}) from {s.directory}")
    if not is_loopback(host):
        print(f"warning: listening on {host}: anyone who can reach this machine can use these models (no login)")
    print(f"open {url}  (Ctrl-C stops)", flush=True)
    if not block:
        return demo, url
    demo.block_thread()  # until Ctrl-C, then closes the server
    return demo, url
