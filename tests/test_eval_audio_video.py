"""Audio and video evaluation: CLAP retrieval and zero-shot on hand-computed embeddings, spoken VQA, transcription
WER and the temporal probe on scripted models whose answers are known; the WER metric by hand."""

import numpy as np
import pytest
import torch
from fakes import ListDataset
from tiny_audio import tone

from modalign.eval.metrics import normalize_transcript, word_error_rate
from modalign.eval.suites import SUITES


def clip(key: int) -> np.ndarray:
    """A clip whose first sample stores `key` (what the fakes below read back)."""
    a = tone(0.2, 300)
    a[0] = key / 1000
    return a


def key_of(a) -> int:
    return int(round(float(a[0]) * 1000))


class KeyedAudioText(torch.nn.Module):
    def __init__(self, audio_vectors, text_vectors):
        super().__init__()
        self.audio_vectors, self.text_vectors = audio_vectors, text_vectors
        self.w = torch.nn.Parameter(torch.zeros(1))

    @staticmethod
    def _norm(rows):
        t = torch.tensor(np.stack(rows), dtype=torch.float32)
        return t / t.norm(dim=-1, keepdim=True)

    def embed_images(self, images):  # the dual-encoder interface; never called on audio items
        raise AssertionError("audio items must be embedded as audio")

    def embed_audio(self, clips):
        return self._norm([self.audio_vectors[key_of(c)] for c in clips])

    def embed_texts(self, texts):
        return self._norm([self.text_vectors[t] for t in texts])


def test_audio_retrieval_dedupes_texts_and_counts_both_directions():
    texts = {"a": [1, 0, 0], "b": [0, 1, 0], "c": [0, 0, 1]}
    # clips 1, 2 say "a" (clip 2 sounds like "b"), clip 3 says "b", clip 4 says "c"
    audio = {1: [1, 0, 0], 2: [0.2, 1, 0], 3: [0, 1, 0.1], 4: [0, 0, 1]}
    rows = [{"id": f"c{k}", "audio": clip(k), "text": t} for k, t in [(1, "a"), (2, "a"), (3, "b"), (4, "c")]]
    r = SUITES["audio_retrieval"](KeyedAudioText(audio, texts), ListDataset(rows), ks=(1, 2), progress=False)
    m = r["metrics"]
    assert m["a2t_R@1"] == 0.75 and m["a2t_R@2"] == 1.0  # clip 2 ranks "b" first, "a" second
    assert m["t2a_R@1"] == 1.0  # "a" has clip 1 nearest, "b" clip 3, "c" clip 4
    assert r["settings"]["n_texts"] == 3 and r["settings"]["n_clips"] == 4


def test_zeroshot_classifies_clips_from_text_prompts():
    texts = {"the sound of a beep.": [1, 0], "the sound of a chirp.": [0, 1]}
    audio = {1: [0.9, 0.1], 2: [0.2, 0.8], 3: [0.6, 0.4]}
    rows = [{"id": str(k), "audio": clip(k), "label": lab} for k, lab in [(1, 0), (2, 1), (3, 1)]]
    ds = ListDataset(rows, classnames=["beep", "chirp"], templates=["the sound of a {}."])
    r = SUITES["zeroshot"](KeyedAudioText(audio, texts), ds, progress=False)
    assert r["metrics"]["top1"] == pytest.approx(2 / 3)


class ScriptedSpeechVLM(torch.nn.Module):
    """Answers from what it is given: a written question, a spoken one (keyed clip), or a video's frame order."""

    def __init__(self, spoken_answers, written_answers):
        super().__init__()
        self.spoken, self.written = spoken_answers, written_answers
        self.w = torch.nn.Parameter(torch.zeros(1))

    def score(self, *a, **k):
        raise NotImplementedError

    def generate(self, images, prompts, max_new_tokens=8, do_sample=False, audio=None, video=None, **_):
        if video is not None:  # says "left" when its frames run in order, "right" otherwise
            return ["left" if [f for f in v] == sorted(v) else "right" for v in video]
        if audio is not None and prompts is not None and "<audio>" in prompts[0]:
            return [self.spoken[key_of(a)] for a in audio]
        if audio is not None:  # transcription in the caption format
            return [self.spoken[key_of(a)] for a in audio]
        return [self.written[p.split(" Answer")[0]] for p in prompts]


def test_spoken_vqa_compares_the_same_questions_written_and_spoken():
    rows = [
        {"id": "1", "image": None, "question": "Is it red?", "question_audio": clip(1), "answer": "yes", "qtype": "e"},
        {"id": "2", "image": None, "question": "How many?", "question_audio": clip(2), "answer": "2", "qtype": "c"},
    ]
    model = ScriptedSpeechVLM({1: "yes", 2: "3"}, {"Is it red?": "yes", "How many?": "2"})
    m = SUITES["spoken_vqa"](model, ListDataset(rows), progress=False)["metrics"]
    assert m["accuracy_text"] == 1.0 and m["accuracy_spoken"] == 0.5 and m["ratio"] == 0.5
    assert m["spoken_c"] == 0.0 and m["text_c"] == 1.0


class ImageReadingSpeechVLM(ScriptedSpeechVLM):
    """Written questions: "yes" about a red picture, else "no"; spoken ones by clip as before."""

    def generate(self, images, prompts, max_new_tokens=8, do_sample=False, audio=None, video=None, **_):
        if audio is not None:
            return super().generate(images, prompts, audio=audio)
        return ["yes" if im.getpixel((0, 0)) == (255, 0, 0) else "no" for im in images]


def test_spoken_vqa_blind_baseline_counts_only_what_the_image_adds():
    from PIL import Image

    colours = {1: "red", 2: "red", 3: "blue", 4: "blue"}
    truth = {1: "yes", 2: "yes", 3: "no", 4: "no"}
    rows = [
        {
            "id": str(k),
            "image": Image.new("RGB", (8, 8), c),
            "question": "Is it red?",
            "question_audio": clip(k),
            "answer": truth[k],
            "qtype": "e",
        }
        for k, c in colours.items()
    ]
    model = ImageReadingSpeechVLM({1: "yes", 2: "no", 3: "no", 4: "no"}, {})
    r = SUITES["spoken_vqa"](model, ListDataset(rows), blind=True, progress=False)
    m = r["metrics"]
    # written 4/4, spoken 3/4; the grey picture gets "no": right for the two blue rows only
    assert m["accuracy_text"] == 1.0 and m["accuracy_spoken"] == 0.75 and m["accuracy_blind"] == 0.5
    assert m["ratio"] == 0.75 and m["ratio_above_blind"] == pytest.approx((0.75 - 0.5) / (1.0 - 0.5))
    assert m["blind_e"] == 0.5 and "mid-grey" in r["settings"]["blind"]
    plain = SUITES["spoken_vqa"](model, ListDataset(rows), progress=False)["metrics"]
    assert "accuracy_blind" not in plain


def test_transcription_wer_against_the_texts():
    rows = [{"id": "1", "audio": clip(1), "text": "ten of clubs"}, {"id": "2", "audio": clip(2), "text": "go forward"}]
    model = ScriptedSpeechVLM({1: "Ten of clubs.", 2: "go forwards now"}, {})
    r = SUITES["transcription"](model, ListDataset(rows), progress=False)
    assert r["metrics"]["wer"] == pytest.approx(2 / 5) and r["samples"][1]["model"] == "go forwards now"


def test_temporal_probe_drops_for_a_model_that_reads_order():
    rows = [
        {"id": str(i), "video": list(range(6)), "question": "Which way?", "answer": "left", "qtype": "motion"}
        for i in range(4)
    ]
    m = SUITES["temporal"](ScriptedSpeechVLM({}, {}), ListDataset(rows), progress=False)["metrics"]
    assert m["original_accuracy"] == 1.0 and m["reversed_accuracy"] == 0.0 and m["shuffled_accuracy"] == 0.0
    assert m["drop_shuffled_motion"] == 1.0


def test_word_error_rate_by_hand():
    assert normalize_transcript("Mr. Smith, 29340!") == "mister smith two nine three four zero"
    w = word_error_rate(["a b c d", "e f"], ["a x c", "e f g"])  # 1 sub + 1 del, 1 ins: 3 edits / 6 words
    assert w["wer"] == 0.5 and w["per_item"] == [0.5, 0.5] and w["ref_words"] == 6
    assert word_error_rate(["ten"], ["10"])["wer"] == 0.0
