"""Multi-process check of the distributed losses: torchrun (gloo, CPU) runs tests/dist_scripts/losses.py.

The script asserts, per variant (CLIP gather / local_loss / gather without grad; SigLIP gather / ring, each plain
and chunked), that the mean loss over ranks and the DDP-averaged gradients equal the single-process loss on the
full batch. Three ranks make the SigLIP ring pass text blocks more than one hop.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parent / "dist_scripts" / "losses.py"


@pytest.mark.dist
@pytest.mark.parametrize("nproc", [2, 3])
def test_distributed_losses_equal_full_batch(nproc):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}", str(SCRIPT)],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "ALL OK" in proc.stdout
    assert proc.stdout.count("ok ") >= 7  # every variant reported
