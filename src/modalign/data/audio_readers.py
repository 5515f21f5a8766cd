"""Readers for audio with text: a folder of clips with transcripts or captions, and Debian's pocketsphinx clips.

`AudioCaptions(path)` (dataset `audio-captions`) reads what speech and sound datasets ship:
- a folder with LibriSpeech-style `*.trans.txt` files (`<id> <TRANSCRIPT>` per line, the clip `<id>.flac|wav|...`
  beside it), searched recursively;
- a CSV with a header or JSONL: an audio column (`audio`, `file_name`, `file`, `filename`, `path`) and one or more
  text columns (`text`, `caption`, `transcript`, or Clotho's `caption_1` ... `caption_5`, each its own item).
`PocketSphinxClips` (dataset `pocketsphinx`) is the real read speech of Debian's `pocketsphinx-testdata`: five
"cards" utterances and five LibriVox sentences (Austen) with their transcription files, `goforward.raw` with the text
pocketsphinx's own tests expect and a TIDIGITS clip whose name spells its digits.

Items: `{"id", "audio": float32 [n] at 16 kHz, "text", "meta": {"source", "seconds"}}`; clips are decoded when an
item is read. Bad records follow records.py: a missing or undecodable clip, an empty text, a bad line raise
`BadRecord` naming file and line, or are skipped and counted with `skip_bad=True`.
"""

from __future__ import annotations

import re
from pathlib import Path

from .audio_io import AUDIO_EXTENSIONS, AudioError, load_audio, load_raw_pcm
from .readers import _LazyImageDataset
from .records import BadRecord, check_text, decode_lines, resolve_under, table_rows

AUDIO_KEYS = ("audio", "file_name", "file", "filename", "path")
TEXT_KEYS = ("text", "caption", "transcript", "captions")
POCKETSPHINX = Path("/usr/share/pocketsphinx/test/data")


def _load_clip(rec: dict) -> dict:
    try:
        audio = load_raw_pcm(rec["path"]) if rec["path"].suffix == ".raw" else load_audio(rec["path"])
    except (AudioError, FileNotFoundError) as err:
        raise BadRecord(f"{rec['where']}: {err}") from err
    meta = {"source": rec["where"], "seconds": round(audio.size / 16000, 3)}
    return {"id": rec["id"], "audio": audio, "text": rec["text"], "meta": meta}


class AudioCaptions(_LazyImageDataset):
    """Audio clips with transcripts or captions: a folder of LibriSpeech `*.trans.txt`, or a CSV / JSONL file."""

    def __init__(self, path: str, audio_root: str | None = None, skip_bad: bool = False):
        super().__init__(skip_bad)
        self.path = Path(path)
        if not self.path.exists():
            raise FileNotFoundError(f"audio captions {self.path} do not exist (a folder, a CSV or a JSONL file)")
        self.root = Path(audio_root) if audio_root else (self.path if self.path.is_dir() else self.path.parent)
        if self.path.is_dir():
            self.source_files = sorted(self.path.rglob("*.trans.txt"))  # hashed into every eval result's settings
            rows = self._librispeech_rows()
        else:
            self.source_files, rows = [self.path], table_rows(self.path, self._policy)
        for where, row in rows:
            try:
                self.records.extend(self._validate(row, where))
            except BadRecord as err:
                self._policy.handle(err)
        if not self.records and not self.skipped:
            raise BadRecord(f"{self.path}: no clips found (LibriSpeech *.trans.txt, or CSV/JSONL with audio,text)")

    def _librispeech_rows(self):
        files = sorted(self.path.rglob("*.trans.txt"))
        for tfile in files:
            for n, line in decode_lines(tfile, self._policy):
                if not line.strip():
                    continue
                uid, _, text = line.strip().partition(" ")
                clip = next(
                    (tfile.parent / f"{uid}.{e}" for e in AUDIO_EXTENSIONS if (tfile.parent / f"{uid}.{e}").is_file()),
                    None,
                )
                rel = str(clip.relative_to(self.root)) if clip is not None else f"{tfile.parent.name}/{uid}"
                yield f"{tfile}:{n}", {"audio": rel, "text": text.lower(), "id": uid}

    def _validate(self, row: dict, where: str) -> list[dict]:
        key = next((k for k in AUDIO_KEYS if row.get(k)), None)
        if key is None:
            raise BadRecord(f"{where}: no audio column; name it one of {', '.join(AUDIO_KEYS)}")
        path = resolve_under(self.root, row[key], where, what="audio")
        texts = [row[k] for k in TEXT_KEYS if k in row]
        texts += [row[k] for k in sorted(row) if re.fullmatch(r"caption_\d+", k)]  # Clotho: caption_1 .. caption_5
        texts = [t for v in texts for t in (v if isinstance(v, list) else [v])]
        if not texts:
            raise BadRecord(f"{where}: no text column; name it one of {', '.join(TEXT_KEYS)} (or caption_1, ...)")
        uid = str(row.get("id") or row[key])
        return [{"id": uid, "path": path, "text": check_text(t, where), "where": where} for t in texts]

    def _load(self, rec: dict) -> dict:
        return _load_clip(rec)

    def texts(self):
        return (r["text"] for r in self.records)


# clips without a transcription file: the text pocketsphinx's tests expect, and digits spelled by the file name
_KNOWN = {"goforward.raw": "go forward ten meters", "tidigits/dhd.2934z.raw": "two nine three four zero"}


class PocketSphinxClips(_LazyImageDataset):
    """Real read speech with transcripts from Debian `pocketsphinx-testdata` (12 clips, 1-7 s, 16 kHz)."""

    def __init__(self, root: str = str(POCKETSPHINX), skip_bad: bool = False):
        super().__init__(skip_bad)
        self.root = Path(root)
        self.source_files = [self.root / "cards" / "cards.transcription", self.root / "librivox" / "transcription"]
        if not self.root.is_dir():
            raise FileNotFoundError(
                f"{self.root} does not exist: apt-get install pocketsphinx-testdata (make setup does), or pass root="
            )
        for sub, tfile in (("cards", "cards.transcription"), ("librivox", "transcription")):
            for n, line in decode_lines(self.root / sub / tfile, self._policy):
                m = re.match(r"^(.*)\(([^()]+)\)\s*$", line.strip())
                if not m:
                    continue
                text = " ".join(re.sub(r"</?s>", " ", m.group(1)).split())
                uid = m.group(2).strip()
                rec = {"id": uid, "text": text, "where": f"{self.root / sub / tfile}:{n}"}
                self.records.append({**rec, "path": self.root / sub / f"{uid}.wav"})
        for rel, text in _KNOWN.items():
            self.records.append(
                {"id": Path(rel).stem, "text": text, "where": str(self.root / rel), "path": self.root / rel}
            )

    def _load(self, rec: dict) -> dict:
        return _load_clip(rec)

    def texts(self):
        return (r["text"] for r in self.records)
