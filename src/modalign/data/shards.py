"""Tar shards in the webdataset layout: write them byte-identically, index them, stream them.

A sample is the members sharing a key: `<key>.png` (or .jpg ...) and `<key>.json`. `ShardWriter` fixes every tar
header field (mtime 0, uid/gid 0, no user names) so the same samples give the same bytes. `index_shards` records
member offsets for random access; `iter_shards` streams samples shard by shard without an index.
"""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

from .conversations import check_caption, check_conversation
from .records import IMAGE_EXTENSIONS, BadRecord, SkipPolicy, decode_image


class ShardWriter:
    """Write samples into `dir/shard-000000.tar`, `shard-000001.tar` ... with `per_shard` samples each."""

    def __init__(self, directory, per_shard: int = 1000, prefix: str = "shard"):
        if per_shard < 1:
            raise ValueError(f"per_shard must be >= 1, got {per_shard}")
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.per_shard, self.prefix = per_shard, prefix
        self.count, self.paths = 0, []
        self._tar: tarfile.TarFile | None = None

    def _add(self, name: str, data: bytes) -> None:
        info = tarfile.TarInfo(name)
        info.size, info.mtime, info.mode = len(data), 0, 0o644
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        self._tar.addfile(info, io.BytesIO(data))

    def write(self, key: str, image_png: bytes, meta: dict) -> None:
        if "." in key or "/" in key:
            raise ValueError(f"shard keys may not contain '.' or '/': {key!r}")
        if self.count % self.per_shard == 0:
            self.close()
            path = self.dir / f"{self.prefix}-{len(self.paths):06d}.tar"
            self.paths.append(path)
            # kept open across add() calls and closed by close() / the next shard
            self._tar = tarfile.open(path, "w", format=tarfile.USTAR_FORMAT)  # noqa: SIM115
        self._add(f"{key}.png", image_png)
        self._add(f"{key}.json", json.dumps(meta, ensure_ascii=False).encode("utf-8"))
        self.count += 1

    def close(self) -> None:
        if self._tar is not None:
            self._tar.close()
            self._tar = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def shard_paths(path) -> list[Path]:
    if isinstance(path, (list, tuple)):
        paths = [Path(p) for p in path]
    elif Path(path).is_dir():
        paths = sorted(Path(path).glob("*.tar"))
    else:
        paths = [Path(path)]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing or not paths:
        raise FileNotFoundError(f"no tar shards at {path}" + (f" (missing: {', '.join(missing)})" if missing else ""))
    return paths


def _split(name: str) -> tuple[str, str]:
    base = name.rsplit("/", 1)[-1]
    key, _, ext = base.partition(".")
    return key, ext.lower()


def _samples(shard: Path, policy: SkipPolicy, with_data: bool):
    """Group consecutive members by key; a truncated or corrupt tar ends that shard with a named bad record."""
    current, key = {}, None
    try:
        with tarfile.open(shard, "r:") as tar:
            for m in tar:
                if not m.isfile():
                    continue
                k, ext = _split(m.name)
                if k != key and current:
                    yield key, current
                    current = {}
                key = k
                current[ext] = tar.extractfile(m).read() if with_data else (m.offset_data, m.size)
    except (tarfile.TarError, OSError, EOFError) as err:
        policy.handle(
            BadRecord(
                f"{shard}: shard is truncated or corrupt after key {key!r} ({err}); the samples before it are kept"
            )
        )
        current = {}
    if current:
        yield key, current


def index_shards(path, policy: SkipPolicy) -> list[dict]:
    """[{"shard", "key", "members": {ext: (offset, size)}, "image_ext", "where"}] over all shards."""
    out = []
    for shard in shard_paths(path):
        for key, members in _samples(shard, policy, with_data=False):
            image_ext = next((e for e in IMAGE_EXTENSIONS if e in members), None)
            out.append(
                {"shard": shard, "key": key, "members": members, "image_ext": image_ext, "where": f"{shard}:{key}"}
            )
    return out


def parse_meta(raw: bytes, where: str, key: str) -> dict:
    """A sample's .json member: a JSON object whose text and conversations (if any) pass the checks every reader
    applies (conversations.py); `id` defaults to the sample key."""
    try:
        meta = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as err:
        raise BadRecord(f"{where}.json: invalid JSON ({err})") from err
    if not isinstance(meta, dict):
        raise BadRecord(f"{where}.json: expected a JSON object")
    if "text" in meta:
        check_caption(meta["text"], f"{where}.json")
    if "conversations" in meta:  # a sample holds one image
        meta["conversations"] = check_conversation(meta["conversations"], f"{where}.json", 1)
    meta["id"] = str(meta.get("id") or key)
    return meta


def read_member(shard: Path, member: tuple[int, int]) -> bytes:
    offset, size = member
    with open(shard, "rb") as fh:
        fh.seek(offset)
        data = fh.read(size)
    if len(data) != size:
        raise BadRecord(f"{shard}: member at offset {offset} is truncated ({len(data)} of {size} bytes)")
    return data


def iter_shards(path, skip_bad: bool = False):
    """Stream decoded samples ({json fields..., "image": PIL}) shard by shard, for IterableDataset-style use."""
    policy = SkipPolicy(skip_bad)
    for shard in shard_paths(path):
        for key, members in _samples(shard, policy, with_data=True):
            where = f"{shard}:{key}"
            try:
                ext = next((e for e in IMAGE_EXTENSIONS if e in members), None)
                if ext is None or "json" not in members:
                    raise BadRecord(f"{where}: needs an image member and a .json member, has {sorted(members)}")
                meta = parse_meta(members["json"], where, key)
                yield {**meta, "image": decode_image(members[ext], f"{where}.{ext}")}
            except BadRecord as err:
                policy.handle(err)
