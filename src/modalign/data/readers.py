"""Readers for external data through the sample interfaces: LLaVA conversations, image folder + captions, tar shards.

Each validates what is cheap at construction (JSON, text, paths inside the root) and decodes images lazily, under the
policy of `records.py`: a bad record raises `BadRecord` naming file and line/index, or with `skip_bad=True` is
skipped and counted in `dataset.skipped`. In training (`dataset[i]`) a lazily found bad image is replaced by the next
good record (so a batch never has a hole), and the index is remembered so it is counted once; evaluation reads
`dataset.load_record(i)`, which never substitutes, and counts what it leaves out itself.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from torch.utils.data import Dataset

from .audio_io import load_audio
from .conversations import check_caption, check_conversation
from .records import BadRecord, SkipPolicy, decode_image, decode_lines, resolve_under, table_rows
from .shards import index_shards, parse_meta, read_member
from .video_io import sample_frames

IMAGE_KEYS = ("image", "file", "filename", "path", "file_name")
TEXT_KEYS = ("text", "caption", "captions")


class _LazyImageDataset(Dataset):
    """Records validated up front; `_load(record)` decodes pixels and may raise BadRecord."""

    def __init__(self, skip_bad: bool):
        self._policy = SkipPolicy(skip_bad)
        self.records: list[dict] = []

    @property
    def skipped(self) -> int:
        return self._policy.skipped

    def __len__(self) -> int:
        return len(self.records)

    def _load(self, rec: dict) -> dict:
        raise NotImplementedError

    @property
    def skip_bad(self) -> bool:
        return self._policy.skip_bad

    def load_record(self, idx: int) -> dict:
        """Record `idx` exactly, or BadRecord: no substitution and no counting. Evaluation reads through this, so a
        bad record is left out and counted by the suite rather than replaced by a neighbour that then counts twice."""
        if not 0 <= idx < len(self.records):
            raise IndexError(f"item {idx} out of range 0..{len(self.records) - 1}")
        return self._load(self.records[idx])

    def __getitem__(self, idx: int) -> dict:
        # Training: a sampler has already chosen idx, so a bad record is replaced by the next good one.
        if not 0 <= idx < len(self.records):
            raise IndexError(f"item {idx} out of range 0..{len(self.records) - 1}")
        for step in range(len(self.records)):
            k = (idx + step) % len(self.records)
            try:
                return self._load(self.records[k])
            except BadRecord as err:
                self._policy.handle(err, key=k)
        raise BadRecord("every record failed to load; see the warnings above")

    def __iter__(self):
        for k, rec in enumerate(self.records):
            try:
                yield self._load(rec)
            except BadRecord as err:
                self._policy.handle(err, key=k)


class ImageCaptions(_LazyImageDataset):
    """An image folder plus a captions file: CSV with a header, or JSONL, columns image (or file/path) and text
    (or caption). `id` defaults to the image path, so several captions of one image share its feature cache."""

    def __init__(self, path: str, image_root: str | None = None, skip_bad: bool = False):
        super().__init__(skip_bad)
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"captions file {self.path} does not exist")
        self.root = Path(image_root) if image_root else self.path.parent
        self.source_files = [self.path]  # hashed into every eval result's settings
        rows = table_rows(self.path, self._policy)
        for where, row in rows:
            try:
                self.records.append(self._validate(row, where))
            except BadRecord as err:
                self._policy.handle(err)

    def _validate(self, row: dict, where: str) -> dict:
        key = next((k for k in IMAGE_KEYS if k in row), None)
        if key is None:
            raise BadRecord(f"{where}: no image column; name it one of {', '.join(IMAGE_KEYS)}")
        image = resolve_under(self.root, row[key], where)
        tkey = next((k for k in TEXT_KEYS if k in row), None)
        text = row.get(tkey) if tkey else None
        if isinstance(text, list):  # JSONL may carry several captions: take the first non-empty
            text = next((t for t in text if isinstance(t, str) and t.strip()), None)
        text = check_caption(text, where)
        rec = {"id": str(row.get("id") or row[key]), "path": image, "text": text, "where": where}
        if row.get("label") not in (None, ""):
            try:
                rec["label"] = int(row["label"])
            except (TypeError, ValueError):
                raise BadRecord(f"{where}: label {row['label']!r} is not an integer") from None
        return rec

    def _load(self, rec: dict) -> dict:
        item = {
            "id": rec["id"],
            "image": decode_image(rec["path"], rec["where"]),
            "text": rec["text"],
            "meta": {"source": rec["where"]},
        }
        if "label" in rec:
            item["label"] = rec["label"]
        return item

    def texts(self):
        return (r["text"] for r in self.records)


class LlavaJson(_LazyImageDataset):
    """LLaVA-format conversations: a JSON list or JSONL of {"id", "image": path | [paths], "conversations": [...]},
    optionally with "audio": path | [paths] and "video": path | [paths] (each clip / video one `<audio>` / `<video>`
    marker in the turns, in order).

    Conversations are checked by `conversations.check_conversation` (an optional first system turn, then turns
    alternating human/gpt, an answer exists, one "<image>" per image and only in questions; a single-image record
    without one gets it prepended); the `<audio>` / `<video>` markers must number the clips / videos. Records with no
    image, audio or video are bad unless `allow_text_only=True` (then image=None). Clips load as 16 kHz waveforms,
    videos as `num_frames` evenly spaced frames (or one per 1/`fps` seconds). Items also carry the first exchange as
    `question` (its `<image>` markers stripped) and `answer`, so a LLaVA-format test file is scored by the `vqa`
    suite as it is.
    """

    def __init__(
        self,
        path: str,
        image_root: str | None = None,
        skip_bad: bool = False,
        allow_text_only: bool = False,
        num_frames: int | None = 8,
        fps: float | None = None,
    ):
        super().__init__(skip_bad)
        self.num_frames, self.fps = (None, fps) if fps is not None else (num_frames, None)
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"conversation file {self.path} does not exist")
        self.root = Path(image_root) if image_root else self.path.parent
        self.source_files = [self.path]  # hashed into every eval result's settings
        self.allow_text_only = allow_text_only
        for where, row in self._rows():
            try:
                self.records.append(self._validate(row, where))
            except BadRecord as err:
                self._policy.handle(err)

    def _rows(self):
        if self.path.suffix.lower() == ".jsonl":
            for n, line in decode_lines(self.path, self._policy):
                if line.strip():
                    try:
                        yield f"{self.path}:{n}", json.loads(line)
                    except ValueError as err:
                        self._policy.handle(BadRecord(f"{self.path}:{n}: invalid JSON ({err})"))
            return
        raw = self.path.read_bytes()
        try:
            rows = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError as err:
            line = raw[: err.start].count(b"\n") + 1
            raise BadRecord(
                f"{self.path}:{line}: bytes are not UTF-8; a JSON list cannot skip one record, "
                f"fix the file or convert it to JSONL"
            ) from err
        except ValueError as err:
            raise BadRecord(f"{self.path}: invalid JSON ({err})") from err
        if not isinstance(rows, list):
            raise BadRecord(f"{self.path}: expected a JSON list of records, got {type(rows).__name__}")
        for k, row in enumerate(rows):
            yield f"{self.path}[{k}]", row

    def _validate(self, row, where: str) -> dict:
        if not isinstance(row, dict):
            raise BadRecord(f"{where}: record is not a JSON object")
        images = row.get("image")
        images = [] if images is None else images if isinstance(images, list) else [images]
        paths = [resolve_under(self.root, p, where) for p in images]
        turns = check_conversation(row.get("conversations"), where, len(paths))
        media = {}
        for field in ("audio", "video"):
            given = row.get(field)
            given = [] if given is None else given if isinstance(given, list) else [given]
            media[field] = [resolve_under(self.root, p, where, what=field) for p in given]
            n_markers = sum(t["value"].count(f"<{field}>") for t in turns)
            if n_markers != len(media[field]):
                raise BadRecord(f"{where}: {n_markers} <{field}> tokens for {len(media[field])} {field} file(s)")
        if not paths and not any(media.values()) and not self.allow_text_only:
            raise BadRecord(f"{where}: no image (pass allow_text_only=True to keep text-only conversations)")
        rec = {"id": str(row.get("id") or where), "paths": paths, "conversations": turns, "where": where}
        return {**rec, **{f"{k}_paths": v for k, v in media.items() if v}}

    def _load(self, rec: dict) -> dict:
        images = [decode_image(p, rec["where"]) for p in rec["paths"]]
        item = {"id": rec["id"], "image": images[0] if images else None, "conversations": rec["conversations"]}
        turns = [t for t in rec["conversations"] if t["from"] != "system"]
        item["question"] = re.sub(r"\s*<image>\s*", " ", turns[0]["value"]).strip()
        if len(turns) > 1:
            item["answer"] = turns[1]["value"]
        if len(images) > 1:
            item["images"] = images
        if rec.get("audio_paths"):
            clips = [_decode(load_audio, p, rec["where"]) for p in rec["audio_paths"]]
            item.update({"audio": clips[0]} if len(clips) == 1 else {"audios": clips})
        if rec.get("video_paths"):
            videos = [
                _decode(lambda p: sample_frames(p, self.num_frames, self.fps), p, rec["where"])
                for p in rec["video_paths"]
            ]
            item.update({"video": videos[0]} if len(videos) == 1 else {"videos": videos})
        return item

    def texts(self):
        return (t["value"] for r in self.records for t in r["conversations"])


def _decode(loader, path, where: str):
    """A clip or a video through its loader, its failure a BadRecord naming the record."""
    try:
        return loader(path)
    except (ValueError, OSError) as err:  # AudioError and VideoError are ValueErrors
        raise BadRecord(f"{where}: {err}") from err


class ShardDataset(_LazyImageDataset):
    """Tar shards of samples `<key>.png|jpg` + `<key>.json` (webdataset layout); map-style over an index of member
    offsets, so random access reads one member. `path` is a shard, a directory of `*.tar`, or a list of shards.
    The JSON's fields are the item (e.g. text, conversations, meta); `id` defaults to the key."""

    def __init__(self, path, skip_bad: bool = False):
        super().__init__(skip_bad)
        for sample in index_shards(path, self._policy):
            try:
                self.records.append(self._validate(sample))
            except BadRecord as err:
                self._policy.handle(err)

    def _validate(self, sample: dict) -> dict:
        where = sample["where"]
        if "json" not in sample["members"]:
            raise BadRecord(f"{where}: no .json member")
        if sample["image_ext"] is None:
            raise BadRecord(f"{where}: no image member (.png/.jpg/...)")
        meta = parse_meta(read_member(sample["shard"], sample["members"]["json"]), where, sample["key"])
        return {
            "meta": meta,
            "shard": sample["shard"],
            "image": sample["members"][sample["image_ext"]],
            "where": f"{where}.{sample['image_ext']}",
        }

    def _load(self, rec: dict) -> dict:
        data = read_member(rec["shard"], rec["image"])
        return {**rec["meta"], "image": decode_image(data, rec["where"])}

    def texts(self):
        for r in self.records:
            if "text" in r["meta"]:
                yield r["meta"]["text"]
            for turn in r["meta"].get("conversations", []):
                yield turn["value"]


__all__ = ["BadRecord", "ImageCaptions", "LlavaJson", "ShardDataset"]
