"""What a run tells its user: one JSON object per line in `out_dir/log.jsonl`, the same scalars in TensorBoard
(`out_dir/tb/`), and a tqdm bar with loss, lr and steps/s. Only rank 0 writes; other ranks get a silent logger.

On resume the log is cut back to the checkpoint's step, so records of steps that are about to be re-run are not
duplicated (the re-run writes them again, with identical values when the run is exact).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path


class RunLogger:
    def __init__(self, out_dir: Path, enabled: bool, progress: bool, resume_step: int | None = None):
        self.enabled = enabled
        self.path = Path(out_dir) / "log.jsonl"
        self._file = None
        self._tb = None
        self._bar = None
        self._progress = progress and enabled
        if not enabled:
            return
        if resume_step is not None:
            self._truncate(resume_step)
        elif self.path.exists():
            self.path.unlink()
        self._file = self.path.open("a", buffering=1)
        from torch.utils.tensorboard import SummaryWriter  # lazy: tensorboard import is slow

        # purge_step drops events past the checkpoint, as for the JSONL above.
        self._tb = SummaryWriter(str(Path(out_dir) / "tb"), purge_step=resume_step)

    def _truncate(self, step: int) -> None:
        if not self.path.exists():
            return
        keep = []
        for line in self.path.read_text().splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:  # a line cut by the kill
                continue
            if rec.get("global_step", 0) <= step:
                keep.append(line)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text("".join(k + "\n" for k in keep))
        os.replace(tmp, self.path)

    def event(self, kind: str, global_step: int, **fields) -> None:
        """A non-scalar record: stage start (freeze report, dataset size), checkpoint, stage end."""
        if self.enabled:
            self._file.write(
                json.dumps({"event": kind, "global_step": global_step, "time": time.time(), **fields}) + "\n"
            )

    def scalars(self, global_step: int, values: dict[str, float], **fields) -> None:
        if not self.enabled:
            return
        self._file.write(json.dumps({"global_step": global_step, **fields, **values, "time": time.time()}) + "\n")
        for key, value in values.items():
            if isinstance(value, (int, float)):
                self._tb.add_scalar(key, value, global_step)

    def start_bar(self, total: int, initial: int, desc: str) -> None:
        if self._progress:
            from tqdm.auto import tqdm

            self.close_bar()
            self._bar = tqdm(total=total, initial=initial, desc=desc, dynamic_ncols=True)

    def update_bar(self, loss: float, lr: float, steps_per_s: float) -> None:
        if self._bar is not None:
            self._bar.set_postfix(loss=f"{loss:.4f}", lr=f"{lr:.2e}", it_s=f"{steps_per_s:.2f}", refresh=False)
            self._bar.update(1)

    def close_bar(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def close(self) -> None:
        self.close_bar()
        if self._file is not None:
            self._file.close()
        if self._tb is not None:
            self._tb.close()
