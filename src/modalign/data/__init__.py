"""Layer 1: readers of real data and the built-in worlds (worlds/). Knows nothing of models.

`DATASETS[name](**params)` builds a map-style torch Dataset whose items follow docs/INTERFACES.md:
- "shapes": the built-in shapes world (captions, instructions, VQA, POPE, probes, Winoground, grounding, CHAIR);
- "llava-json": LLaVA-format conversation JSON/JSONL with an image root;
- "image-captions": an image folder with a captions CSV or JSONL;
- "fashion-mnist": Fashion-MNIST from its IDX files, with name or attribute-description captions;
- "small-objects": one tiny shape in a large image, where only tiling (AnyRes) can read it;
- "fashion-mnist-qa": Fashion-MNIST with knowledge questions ("Is this worn on the feet?") from a per-class table;
- "vqa-conversations": any VQA-format dataset as short-answer training conversations;
- "mixture": several datasets drawn with weights into one stage (e.g. instruct data plus a share of captions);
- "photo-qa": questions with written-down answers about scikit-image / scikit-learn photos and a document page;
- "shards": tar shards (PNG/JPEG + JSON per sample), e.g. written by `modalign data shapes`;
- "audio-captions": audio clips with transcripts or captions (LibriSpeech `*.trans.txt`, CSV / JSONL audio,text);
- "pocketsphinx": the real read speech of Debian's pocketsphinx-testdata, with transcripts;
- "spoken": the shapes world read aloud by espeak-ng voices (captions, spoken questions about images);
- "sounds": beeps, chirps and noise bursts with captions and questions (how many, which is higher, ...);
- "motion": the shapes world in motion: short clips with tracks, captions and questions about motion, order, change;
- the benchmark files in their published layouts (benchmarks/, docs/EVAL.md): "vqav2", "qa", "pope",
  "coco-captions", "karpathy", "coco-chair", "sugarcrepe", "aro", "winoground", "mmbench" / "multiple-choice".
Every reader opens images through `images.open_image` (pixel limit, EXIF, 16-bit) and checks captions and
conversations with `conversations.py`; `records.py` is the bad-record policy (name it, or skip and count it).
"""

from .audio_readers import AudioCaptions, PocketSphinxClips
from .benchmarks import BENCHMARKS
from .fashion_knowledge import FashionKnowledge
from .fashion_mnist import FashionMNIST
from .mixture import Mixture
from .photo_qa import PhotoQA
from .readers import ImageCaptions, LlavaJson, ShardDataset
from .vqa_conversations import VQAConversations
from .worlds import MotionWorld, ShapesWorld, SmallObjects, SoundWorld, SpokenWorld

DATASETS: dict = {
    "shapes": ShapesWorld,
    "llava-json": LlavaJson,
    "image-captions": ImageCaptions,
    "shards": ShardDataset,
    "fashion-mnist": FashionMNIST,
    "small-objects": SmallObjects,
    "audio-captions": AudioCaptions,
    "pocketsphinx": PocketSphinxClips,
    "spoken": SpokenWorld,
    "sounds": SoundWorld,
    "motion": MotionWorld,
    "fashion-mnist-qa": FashionKnowledge,
    "photo-qa": PhotoQA,
    "vqa-conversations": VQAConversations,
    "mixture": Mixture,
    **BENCHMARKS,
}
