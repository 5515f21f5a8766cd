"""`modalign serve RUN [RUN ...] [--images DIR] [--host 127.0.0.1 --port 7860]`: the web demo over saved models.

A RUN is a saved model directory (runs/x/final) or a run folder holding final/; give vision-language models for
the Chat and Look tabs and dual encoders for Search and Gap. The page is served on localhost unless --host says
otherwise, and makes no outside requests.
"""

from __future__ import annotations


def add_serve_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "serve", help="a web demo in the browser: chat with a VLM, see where it looked, search, the modality gap"
    )
    p.add_argument("runs", nargs="+", metavar="RUN", help="saved model directories (runs/x/final) or run folders")
    p.add_argument("--images", help="a folder of images to search and to show the gap on (indexed once, cached)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=7860, help="port (default 7860; 0 picks a free one)")
    p.add_argument("--index-cache", help="folder for cached image embeddings (default ~/.cache/modalign/serve-index)")
    p.add_argument("--max-queue", type=int, default=16, help="requests that may wait for a model (default 16)")
    p.add_argument(
        "--trust-code", action="store_true", help="allow models built from your own Python classes to import them"
    )
    p.set_defaults(func=serve_main)


def serve_main(args) -> int:
    try:
        from ..serve.app import serve
    except ImportError as err:
        raise SystemExit(
            f"modalign serve needs gradio ({err}); install it with: pip install 'modalign[serve]'"
        ) from None
    serve(
        args.runs,
        host=args.host,
        port=args.port or None,
        images=args.images,
        index_cache=args.index_cache,
        max_queue=args.max_queue,
        trust_code=args.trust_code,
    )
    return 0
