"""open_clip's loss.py loaded as a plain file (importing the package needs torchvision, which is not shipped):
the reference the loss tests compare against, in-process and under torchrun."""

import importlib.util
import site
from pathlib import Path


def open_clip_loss_module():
    """The module, or None when open_clip_torch is not installed (`make setup` installs it with --no-deps)."""
    for root in site.getsitepackages():
        path = Path(root) / "open_clip" / "loss.py"
        if path.exists():
            spec = importlib.util.spec_from_file_location("open_clip_reference_loss", path)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            return module
    return None
