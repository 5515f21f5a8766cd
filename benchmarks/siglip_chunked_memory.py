"""Claim: chunked SigLIP loss gives the same value and gradients at O(chunk * B) peak memory instead of O(B^2).

Runs `siglip_loss` forward + backward on the same random batch [B, D] twice — unchunked and chunked — each in a
fresh subprocess, and reports each one's peak resident memory (resource.getrusage max RSS) above the RSS it had
just before the loss (inputs allocated, kernels warmed up on a tiny batch), plus their ratio. Values and
gradients are compared.

    .venv/bin/python benchmarks/siglip_chunked_memory.py                # B=16384, D=256, chunk=1024
    .venv/bin/python benchmarks/siglip_chunked_memory.py --batch 4096   # quicker
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _max_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def run_variant(batch: int, dim: int, chunk: int | None, out: str) -> None:
    """Child process: one forward + backward, then print a JSON line with memory, time and value."""
    import torch
    import torch.nn.functional as F
    from safetensors.torch import save_file

    from modalign.losses import siglip_loss

    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(0)
    img = F.normalize(torch.randn(batch, dim, generator=g), dim=-1).requires_grad_(True)
    txt = F.normalize(torch.randn(batch, dim, generator=g), dim=-1).requires_grad_(True)
    scale = torch.tensor(10.0, requires_grad=True)
    bias = torch.tensor(-10.0, requires_grad=True)
    # Warm-up on a tiny batch: the first call of each kernel maps torch's code pages (hundreds of MiB of RSS),
    # which is not memory of the loss; both code paths run so both variants start from the same baseline.
    for c in (None, 8):
        w = torch.randn(32, dim, requires_grad=True)
        siglip_loss(w, w, scale, bias, chunk_size=c).backward()
    scale.grad = bias.grad = None
    before = _max_rss_mib()
    start = time.perf_counter()
    loss = siglip_loss(img, txt, scale, bias, chunk_size=chunk)
    loss.backward()
    seconds = time.perf_counter() - start
    peak = _max_rss_mib()
    save_file({"img": img.grad, "txt": txt.grad, "scale": scale.grad.reshape(1), "bias": bias.grad.reshape(1)}, out)
    print(json.dumps({"loss": loss.item(), "peak_mib": peak, "base_mib": before, "seconds": seconds}))


def measure(batch: int, dim: int, chunk: int | None, out: Path) -> dict:
    cmd = [sys.executable, __file__, "--child", "--batch", str(batch), "--dim", str(dim), "--out", str(out)]
    if chunk is not None:
        cmd += ["--chunk", str(chunk)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"variant chunk={chunk} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=16384)
    ap.add_argument("--dim", type=int, default=256)
    ap.add_argument("--chunk", type=int, default=None, help="rows per chunk (default 1024; child: None = plain)")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--out", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        run_variant(args.batch, args.dim, args.chunk, args.out)
        return

    from safetensors.torch import load_file

    chunk = args.chunk or 1024
    with tempfile.TemporaryDirectory() as tmp:
        plain = measure(args.batch, args.dim, None, Path(tmp) / "plain.safetensors")
        chunked = measure(args.batch, args.dim, chunk, Path(tmp) / "chunked.safetensors")
        ga, gb = load_file(str(Path(tmp) / "plain.safetensors")), load_file(str(Path(tmp) / "chunked.safetensors"))
        grad_diff = max((ga[k] - gb[k]).abs().max().item() for k in ga)

    print(f"siglip loss forward+backward, B={args.batch}, D={args.dim}, float32, 1 thread")
    print(f"{'variant':<22}{'peak RSS MiB':>14}{'above inputs MiB':>18}{'seconds':>10}{'loss':>14}")
    for name, r in (("unchunked", plain), (f"chunked ({chunk} rows)", chunked)):
        print(
            f"{name:<22}{r['peak_mib']:>14.0f}{r['peak_mib'] - r['base_mib']:>18.0f}"
            f"{r['seconds']:>10.2f}{r['loss']:>14.6f}"
        )
    extra_plain = plain["peak_mib"] - plain["base_mib"]
    extra_chunked = max(chunked["peak_mib"] - chunked["base_mib"], 1.0)
    print(
        f"memory for the loss, unchunked / chunked: {extra_plain / extra_chunked:.1f}x "
        f"(peak RSS ratio {plain['peak_mib'] / chunked['peak_mib']:.1f}x); "
        f"time chunked / unchunked: {chunked['seconds'] / plain['seconds']:.2f}x"
    )
    loss_diff = abs(plain["loss"] - chunked["loss"])
    print(f"agreement: |loss diff| = {loss_diff:.2e}, max |grad diff| = {grad_diff:.2e}")
    if not (loss_diff <= 1e-4 * max(1.0, abs(plain["loss"])) and grad_diff <= 1e-5):
        raise SystemExit("chunked and unchunked siglip losses disagree")


if __name__ == "__main__":
    main()
