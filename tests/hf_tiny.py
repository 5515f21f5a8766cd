"""Tiny random Hugging Face checkpoints saved with their processors, built offline for the adapter tests.

A small byte-level BPE tokenizer is trained with the `tokenizers` library on a few sentences; each builder saves a
model (a tiny vision config + a tiny Llama or CLIP/SigLIP text config) and its processor into a directory, as a
user's downloaded checkpoint would be.
"""

from __future__ import annotations

from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

CORPUS = [
    "a red circle above a blue square",
    "Is there a dog in the image?",
    "What color is it? How many dogs? yes no red two",
    "Answer the question using a single word or phrase.",
    "USER: ASSISTANT: Question: Answer:",
]
BASE_SPECIAL = ["<s>", "</s>", "<pad>"]
# Llava-1.5's template in the llava-hf style: typed content parts, images before the text
LLAVA_TEMPLATE = (
    "{% for message in messages %}{{ message['role'].upper() + ': ' }}"
    "{% for part in message['content'] %}{% if part['type'] == 'image' %}<image>\n"
    "{% else %}{{ part['text'] }}{% endif %}{% endfor %}{% if not loop.last %} {% endif %}{% endfor %}"
    "{% if add_generation_prompt %} ASSISTANT:{% endif %}"
)
IDEFICS_TEMPLATE = (
    "<|im_start|>{% for message in messages %}{{ message['role'] | capitalize }}:"
    "{% for part in message['content'] %}{% if part['type'] == 'text' %}{{ part['text'] }}"
    "{% else %}<image>{% endif %}{% endfor %}<end_of_utterance>\n{% endfor %}"
    "{% if add_generation_prompt %}Assistant:{% endif %}"
)


def tokenizer(extra_special: list[str] = ()) -> PreTrainedTokenizerFast:
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300,
        special_tokens=["<unk>", *BASE_SPECIAL, *extra_special],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(CORPUS, trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="<unk>", bos_token="<s>", eos_token="</s>", pad_token="<pad>"
    )


def _llama(tok, max_positions: int = 256):
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=len(tok),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=max_positions,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )


def _sharpen(model) -> None:
    """Scale the random output layer so greedy choices are not near-ties (answers then differ by image)."""
    with torch.no_grad():
        model.get_output_embeddings().weight.mul_(8)


def llava(out: Path) -> Path:
    from transformers import (
        CLIPImageProcessor,
        CLIPVisionConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
    )

    torch.manual_seed(0)
    tok = tokenizer(["<image>"])
    vision = CLIPVisionConfig(
        image_size=16, patch_size=8, hidden_size=24, intermediate_size=48, num_hidden_layers=2, num_attention_heads=2
    )
    cfg = LlavaConfig(
        vision_config=vision,
        text_config=_llama(tok),
        image_token_index=tok.convert_tokens_to_ids("<image>"),
        vision_feature_layer=-2,
        vision_feature_select_strategy="default",
    )
    model = LlavaForConditionalGeneration(cfg).eval()
    _sharpen(model)
    model.save_pretrained(out)
    LlavaProcessor(
        image_processor=CLIPImageProcessor(size={"shortest_edge": 16}, crop_size={"height": 16, "width": 16}),
        tokenizer=tok,
        patch_size=8,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,
        chat_template=LLAVA_TEMPLATE,
    ).save_pretrained(out)
    return out


def idefics3(out: Path) -> Path:
    from transformers import (
        Idefics3Config,
        Idefics3ForConditionalGeneration,
        Idefics3ImageProcessor,
        Idefics3Processor,
        Idefics3VisionConfig,
    )

    torch.manual_seed(0)
    special = ["<image>", "<fake_token_around_image>", "<global-img>", "<end_of_utterance>"]
    tok = tokenizer(special + [f"<row_{i + 1}_col_{j + 1}>" for i in range(6) for j in range(6)])
    vision = Idefics3VisionConfig(
        image_size=32, patch_size=8, hidden_size=24, intermediate_size=48, num_hidden_layers=2, num_attention_heads=2
    )
    cfg = Idefics3Config(
        vision_config=vision.to_dict(),
        text_config=_llama(tok).to_dict(),
        scale_factor=2,
        image_token_id=tok.convert_tokens_to_ids("<image>"),
        pad_token_id=tok.pad_token_id,
    )
    model = Idefics3ForConditionalGeneration(cfg).eval()
    _sharpen(model)
    model.save_pretrained(out)
    Idefics3Processor(
        image_processor=Idefics3ImageProcessor(
            do_image_splitting=False, size={"longest_edge": 32}, max_image_size={"longest_edge": 32}
        ),
        tokenizer=tok,
        image_seq_len=(32 // 8) ** 2 // 2**2,
        chat_template=IDEFICS_TEMPLATE,
    ).save_pretrained(out)
    return out


def idefics2(out: Path) -> Path:
    from transformers import (
        Idefics2Config,
        Idefics2ForConditionalGeneration,
        Idefics2ImageProcessor,
        Idefics2Processor,
    )

    torch.manual_seed(0)
    tok = tokenizer(["<image>", "<fake_token_around_image>", "<end_of_utterance>"])
    vision = dict(
        image_size=32, patch_size=8, hidden_size=24, intermediate_size=48, num_hidden_layers=2, num_attention_heads=2
    )
    perceiver = dict(
        hidden_size=32,
        resampler_n_latents=4,
        resampler_depth=1,
        resampler_n_heads=2,
        resampler_head_dim=8,
        num_key_value_heads=1,
    )
    cfg = Idefics2Config(
        vision_config=vision,
        perceiver_config=perceiver,
        text_config=_llama(tok).to_dict(),
        image_token_id=tok.convert_tokens_to_ids("<image>"),
    )
    model = Idefics2ForConditionalGeneration(cfg).eval()
    _sharpen(model)
    model.save_pretrained(out)
    Idefics2Processor(
        image_processor=Idefics2ImageProcessor(
            do_image_splitting=False, size={"longest_edge": 32, "shortest_edge": 16}
        ),
        tokenizer=tok,
        image_seq_len=4,
        chat_template=IDEFICS_TEMPLATE,
    ).save_pretrained(out)
    return out


def blip2(out: Path) -> Path:
    from transformers import (
        Blip2Config,
        Blip2ForConditionalGeneration,
        Blip2Processor,
        Blip2QFormerConfig,
        Blip2VisionConfig,
        BlipImageProcessor,
    )

    torch.manual_seed(0)
    tok = tokenizer(["<image>"])
    tok.image_token = "<image>"
    vision = Blip2VisionConfig(
        image_size=16, patch_size=8, hidden_size=24, intermediate_size=48, num_hidden_layers=2, num_attention_heads=2
    )
    qformer = Blip2QFormerConfig(
        hidden_size=24,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=48,
        encoder_hidden_size=24,
        vocab_size=64,
    )
    cfg = Blip2Config(
        vision_config=vision.to_dict(),
        qformer_config=qformer.to_dict(),
        text_config=_llama(tok).to_dict(),
        num_query_tokens=3,
        image_token_index=tok.convert_tokens_to_ids("<image>"),
    )
    model = Blip2ForConditionalGeneration(cfg).eval()
    _sharpen(model)
    model.save_pretrained(out)
    Blip2Processor(
        image_processor=BlipImageProcessor(size={"height": 16, "width": 16}), tokenizer=tok, num_query_tokens=3
    ).save_pretrained(out)
    return out


def clip(out: Path) -> Path:
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor, CLIPTextConfig, CLIPVisionConfig

    torch.manual_seed(0)
    tok = tokenizer()
    text = CLIPTextConfig(
        vocab_size=len(tok),
        hidden_size=24,
        intermediate_size=48,
        num_hidden_layers=1,
        num_attention_heads=2,
        max_position_embeddings=32,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
        projection_dim=16,
    )
    vision = CLIPVisionConfig(
        image_size=16,
        patch_size=8,
        hidden_size=24,
        intermediate_size=48,
        num_hidden_layers=1,
        num_attention_heads=2,
        projection_dim=16,
    )
    CLIPModel(
        CLIPConfig(text_config=text.to_dict(), vision_config=vision.to_dict(), projection_dim=16)
    ).save_pretrained(out)
    ip = CLIPImageProcessor(size={"shortest_edge": 16}, crop_size={"height": 16, "width": 16})
    CLIPProcessor(image_processor=ip, tokenizer=tok).save_pretrained(out)
    return out


def siglip(out: Path) -> Path:
    from transformers import (
        SiglipConfig,
        SiglipImageProcessor,
        SiglipModel,
        SiglipProcessor,
        SiglipTextConfig,
        SiglipVisionConfig,
    )

    torch.manual_seed(0)
    tok = tokenizer()
    text = SiglipTextConfig(
        vocab_size=len(tok),
        hidden_size=24,
        intermediate_size=48,
        num_hidden_layers=1,
        num_attention_heads=2,
        max_position_embeddings=16,
        pad_token_id=tok.pad_token_id,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
    )
    vision = SiglipVisionConfig(
        image_size=16, patch_size=8, hidden_size=24, intermediate_size=48, num_hidden_layers=1, num_attention_heads=2
    )
    SiglipModel(SiglipConfig(text_config=text.to_dict(), vision_config=vision.to_dict())).save_pretrained(out)
    SiglipProcessor(
        image_processor=SiglipImageProcessor(size={"height": 16, "width": 16}), tokenizer=tok
    ).save_pretrained(out)
    return out


BUILDERS = {"llava": llava, "idefics2": idefics2, "idefics3": idefics3, "blip-2": blip2, "clip": clip, "siglip": siglip}
