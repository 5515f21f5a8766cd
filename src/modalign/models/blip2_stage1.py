"""BLIP-2 stage 1 (Li et al. 2023): train a `QFormer` against a frozen image tower with ITC, ITM and ITG.

`Blip2Stage1` is the Q-Former's text side plus the three heads; the queries, their self-attention and the
cross-attention to the image stay in the `QFormer` (passed to every call, never owned, so weights are not
duplicated). As in BLIP-2, text tokens and queries share each layer's self-attention (and its LayerNorm), only the
queries cross-attend to the image, and queries and text have separate FFNs. Three masks over [queries; text]:
- "text" (ITC text side): text alone, bidirectional; its first token is [CLS].
- "match" (ITM): queries and text all see each other.
- "generate" (ITG): queries see only queries, text sees every query and the text before it; first token [DEC].
Losses (summed, as in BLIP-2): ITC, max over the K queries of <query, [CLS]> in the shared space over a learned
temperature, in-batch negatives; ITM, a 2-way head averaged over the K query outputs of a "match" pass, on the
positives plus one hard negative text per image and one hard negative image per text (`hard_negatives`); ITG,
next-token cross entropy of the caption given the queries.

Differences from the paper, on purpose: the text side starts from scratch (no BERT weights) with the VLM's tokenizer
plus two ids of its own ([CLS], [DEC]) and a BERT-style LM head tied to its word embeddings; its FFN widths, norms
and dropout are the Q-Former's; hard negatives are the most similar non-matching pair (argmax) by default
instead of a softmax sample (`sample=True` gives LAVIS's rule); identical captions in a batch count as positives
for ITC and are never mined as ITM negatives (BLIP-2 handles this by image id); no label smoothing on ITC; and
under torchrun each rank uses its own batch's negatives (BLIP-2 gathers them from every GPU).
`stage1_from_blip2` loads the text side and heads of transformers' `Blip2ForImageTextRetrieval`.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from ..connectors.attention import Attention
from ..connectors.hf_port import load_renamed, qformer_from_blip2
from ..connectors.qformer import QFormer
from ..losses import lm_loss

IGNORE_INDEX = -100


def hard_negatives(
    sim: torch.Tensor, same: torch.Tensor | None = None, sample: bool = False, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """sim [B, B] (image i vs text j) -> (negative text per image [B], negative image per text [B]).

    A pair is a candidate unless it matches: the diagonal, and pairs with `same[i, j]` (e.g. identical captions).
    Default: the most similar candidate; `sample`: drawn with probability softmax(sim) over candidates (LAVIS).
    """
    if sim.dim() != 2 or sim.shape[0] != sim.shape[1]:
        raise ValueError(f"hard_negatives: sim must be square [B, B], got {tuple(sim.shape)}")
    match = torch.eye(sim.shape[0], dtype=torch.bool, device=sim.device)
    if same is not None:
        match = match | same.bool()
    if bool(match.all(dim=1).any()):
        raise ValueError(
            "ITM needs a non-matching text for every image: use batches of at least 2 different "
            "captions (batch_size >= 2)"
        )
    out = []
    for s, m in ((sim, match), (sim.T, match.T)):
        s = s.detach().float().masked_fill(m, float("-inf"))  # [B, B]
        if sample:
            out.append(torch.multinomial(s.softmax(dim=1), 1, generator=generator).squeeze(1))
        else:
            out.append(s.argmax(dim=1))
    return out[0], out[1]


def _self_attention(attn: Attention, x: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
    """The Q-Former's self-attention weights under a full [B, 1, L, L] mask (its own forward takes key masks only)."""
    b, n, _ = x.shape
    q, k, v = (
        p(x).view(b, n, attn.heads, attn.head_dim).transpose(1, 2) for p in (attn.q_proj, attn.k_proj, attn.v_proj)
    )  # [B, h, L, hd]
    if attn.q_norm is not None:
        q, k = attn.q_norm(q), attn.k_norm(k)
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed)  # [B, h, L, hd]
    return attn.o_proj(out.transpose(1, 2).reshape(b, n, attn.heads * attn.head_dim))  # [B, L, H]


def attention_mask(num_queries: int, text_mask: torch.Tensor, mode: str) -> torch.Tensor:
    """[B, 1, K+T, K+T] bool (True = may attend) for mode text (K = 0), match or generate; see the module doc."""
    if mode not in ("text", "match", "generate"):
        raise ValueError(f"unknown stage-1 mode {mode!r}; choose text, match or generate")
    b, t = text_mask.shape
    k = 0 if mode == "text" else num_queries
    keys = torch.cat([text_mask.new_ones(b, k), text_mask], dim=1).bool()  # [B, L]
    allowed = keys[:, None, :].repeat(1, k + t, 1)  # [B, L, L]
    if mode == "generate":
        allowed[:, :k, k:] = False  # queries never read text
        allowed[:, k:, k:] &= torch.ones(t, t, dtype=torch.bool, device=keys.device).tril()
    return allowed[:, None]


class TextFFN(nn.Module):
    """The text tokens' own feed-forward block (BLIP-2's `intermediate`/`output`), post-norm like the queries'."""

    def __init__(self, hidden: int, intermediate: int, act: nn.Module, eps: float, dropout: float):
        super().__init__()
        self.fc1, self.act, self.fc2 = nn.Linear(hidden, intermediate), act, nn.Linear(intermediate, hidden)
        self.norm, self.dropout = nn.LayerNorm(hidden, eps=eps), nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x + self.dropout(self.fc2(self.act(self.fc1(x)))))  # [B, T, H]


class Blip2Stage1(nn.Module):
    """Text side and ITC/ITM/ITG heads for a `QFormer`. `vocab_size` counts the [CLS] and [DEC] ids."""

    def __init__(
        self,
        qformer: QFormer,
        vocab_size: int,
        max_text_len: int,
        cls_id: int,
        dec_id: int,
        embed_dim: int = 256,
        temperature: float = 0.07,
    ):
        super().__init__()
        if not isinstance(qformer, QFormer):
            raise TypeError(f"BLIP-2 stage 1 trains a QFormer connector, got {type(qformer).__name__}")
        hidden, first = qformer.hidden_dim, qformer.layers[0]
        eps, drop = first.ffn_norm.eps, qformer.dropout.p
        self.num_queries, self.max_text_len = qformer.num_queries, max_text_len
        self.cls_id, self.dec_id = cls_id, dec_id
        self.sample_negatives = False  # True: LAVIS's softmax-sampled ITM negatives
        self.word_embeddings = nn.Embedding(vocab_size, hidden)
        self.position_embeddings = nn.Embedding(max_text_len, hidden)
        self.text_ffn = nn.ModuleList(
            TextFFN(hidden, layer.fc1.out_features, copy.deepcopy(layer.act), eps, drop) for layer in qformer.layers
        )
        self.vision_proj, self.text_proj = nn.Linear(hidden, embed_dim), nn.Linear(hidden, embed_dim)
        self.itm_head = nn.Linear(hidden, 2)
        # BERT's LM head: transform, then the word embeddings (tied) plus a bias
        self.lm_transform = nn.Sequential(
            nn.Linear(hidden, hidden), copy.deepcopy(first.act), nn.LayerNorm(hidden, eps=eps)
        )
        self.lm_bias = nn.Parameter(torch.zeros(vocab_size))
        self.temp = nn.Parameter(torch.tensor(float(temperature)))
        for emb in (self.word_embeddings, self.position_embeddings):  # BERT init; the tied LM head reads these
            nn.init.normal_(emb.weight, std=0.02)

    # -- passes -----------------------------------------------------------------------------------------------
    def run(
        self,
        qformer: QFormer,
        features: torch.Tensor | None,
        text_ids: torch.Tensor,
        text_mask: torch.Tensor,
        mode: str,
    ) -> tuple[torch.Tensor | None, torch.Tensor]:
        """Query outputs [B, K, H] (None in text mode) and text outputs [B, T, H] of one pass over [queries; text].
        `text_ids` [B, T] start with [CLS] (text, match) or [DEC] (generate); `features` [B, N, Din] the tower's."""
        b, t = text_ids.shape
        if t > self.max_text_len:
            raise ValueError(f"a {t}-token text exceeds the stage-1 text length {self.max_text_len}; shorten captions")
        pos = torch.arange(t, device=text_ids.device)
        x = self.word_embeddings(text_ids) + self.position_embeddings(pos)[None]  # [B, T, H]
        k = 0
        if mode != "text":
            if features is None:
                raise ValueError(f"stage-1 mode {mode!r} reads the image: pass the tower features [B, N, Din]")
            k = self.num_queries
            x = torch.cat([qformer.query_tokens.expand(b, -1, -1), x], dim=1)  # [B, K+T, H]
            features = qformer.feature_norm(features)  # [B, N, Din]
        x = qformer.dropout(qformer.input_norm(x))  # BLIP-2 normalises queries and text embeddings alike
        allowed = attention_mask(self.num_queries, text_mask, mode)  # [B, 1, L, L]
        for layer, text_ffn in zip(qformer.layers, self.text_ffn):
            x = layer.self_norm(x + layer.dropout(_self_attention(layer.self_attn, x, allowed)))
            q, txt = x[:, :k], text_ffn(x[:, k:])  # [B, K, H], [B, T, H]
            if k:
                if layer.cross_attn is not None:
                    q = layer.cross_norm(q + layer.dropout(layer.cross_attn(q, features)))
                q = layer.ffn_norm(q + layer.dropout(layer.fc2(layer.act(layer.fc1(q)))))
            x = torch.cat([q, txt], dim=1)
        return (x[:, :k] if k else None), x[:, k:]

    def image_embeds(self, query_out: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.vision_proj(query_out), dim=-1)  # [B, K, E]

    def text_embeds(self, text_out: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.text_proj(text_out[:, 0]), dim=-1)  # [B, E] from [CLS]

    @staticmethod
    def similarity(image_emb: torch.Tensor, text_emb: torch.Tensor) -> torch.Tensor:
        """[B, K, E] x [C, E] -> [B, C]: the best-matching query per pair."""
        return torch.einsum("bke,ce->bkc", image_emb, text_emb).amax(dim=1)

    def with_mode_token(self, tokens: torch.Tensor, mask: torch.Tensor, token_id: int):
        """Caption tokens [B, T] (+ mask) -> [B, 1+T] with [CLS] or [DEC] in front."""
        first = torch.full_like(tokens[:, :1], token_id)
        return torch.cat([first, tokens], dim=1), torch.cat([torch.ones_like(mask[:, :1]), mask], dim=1)

    def itc_scores(self, qformer: QFormer, features: torch.Tensor, tokens: torch.Tensor, mask: torch.Tensor):
        """ITC similarity [B_img, B_txt] of images (tower features) and caption tokens (without [CLS])."""
        ids, m = self.with_mode_token(tokens, mask, self.cls_id)
        return self.similarity(
            self.image_embeds(qformer.encode_queries(features)),
            self.text_embeds(self.run(qformer, None, ids, m, "text")[1]),
        )

    # -- losses -----------------------------------------------------------------------------------------------
    def losses(self, qformer: QFormer, features: torch.Tensor, tokens: torch.Tensor, mask: torch.Tensor) -> dict:
        """features [B, N, Din], caption tokens [B, T] with mask [B, T] -> loss (= itc + itm + itg) and parts."""
        b = tokens.shape[0]
        mask = mask.long()
        with torch.no_grad():
            self.temp.clamp_(0.001, 0.5)  # as BLIP-2: keeps the learned temperature in a sane range
        # ITG: the queries of this pass see only queries, so they are the image side of ITC too
        gen_ids, gen_mask = self.with_mode_token(tokens, mask, self.dec_id)
        query_out, gen_out = self.run(qformer, features, gen_ids, gen_mask, "generate")  # [B, K, H], [B, 1+T, H]
        logits = self.lm_transform(gen_out) @ self.word_embeddings.weight.T + self.lm_bias  # [B, 1+T, V]
        labels = gen_ids.masked_fill(gen_mask == 0, IGNORE_INDEX)
        labels[:, 0] = IGNORE_INDEX
        itg = lm_loss(logits, labels, ignore_index=IGNORE_INDEX)

        # ITC: captions identical token for token are positives of each other
        cls_ids, cls_mask = self.with_mode_token(tokens, mask, self.cls_id)
        text_emb = self.text_embeds(self.run(qformer, None, cls_ids, cls_mask, "text")[1])  # [B, E]
        sim = self.similarity(self.image_embeds(query_out), text_emb)  # [B, B]
        padded = tokens.masked_fill(mask == 0, -1)
        same = (padded[:, None] == padded[None]).all(dim=-1)  # [B, B]
        target = same.float() / same.sum(dim=1, keepdim=True)
        logits_itc = sim / self.temp
        itc = (F.cross_entropy(logits_itc, target) + F.cross_entropy(logits_itc.T, target.T)) / 2

        # ITM: positives, a hard negative text per image, a hard negative image per text
        neg_text, neg_image = hard_negatives(sim, same, sample=self.sample_negatives)
        feats = torch.cat([features, features, features[neg_image]])  # [3B, N, Din]
        ids = torch.cat([cls_ids, cls_ids[neg_text], cls_ids])  # [3B, 1+T]
        ids_mask = torch.cat([cls_mask, cls_mask[neg_text], cls_mask])
        match_q, _ = self.run(qformer, feats, ids, ids_mask, "match")  # [3B, K, H]
        itm_logits = self.itm_head(match_q).mean(dim=1)  # [3B, 2]
        itm_labels = torch.cat([tokens.new_ones(b), tokens.new_zeros(2 * b)])
        itm = F.cross_entropy(itm_logits, itm_labels)
        return {
            "loss": itc + itm + itg,
            "itc": itc,
            "itm": itm,
            "itg": itg,  # parts keep their graph (tests)
            "itm_acc": (itm_logits.argmax(-1) == itm_labels).float().mean().detach(),
            "temp": self.temp.detach(),
        }


# -------------------------------------------------------------------------------------------------- VLM glue


def build_stage1(connector: nn.Module, tokenizer, max_positions: int) -> Blip2Stage1 | None:
    """The stage-1 module of a VisionLanguageModel with a `qformer` connector (None for other connectors): text ids
    are the tokenizer's plus [CLS] = len(tokenizer) and [DEC] = len(tokenizer) + 1."""
    if not isinstance(connector, QFormer):
        return None
    n = len(tokenizer)
    return Blip2Stage1(connector, vocab_size=n + 2, max_text_len=max_positions, cls_id=n, dec_id=n + 1)


def caption_tokens(batch: dict, image_token_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The caption tokens (with their end-of-text) of a collated caption batch: [B, T] ids and mask.

    They are the labelled tokens; a caption example labels one run of tokens right after its image, which an
    instruct example (chat template text between the image and the answers) never does.
    """
    rows = []
    for ids, labels in zip(batch["input_ids"], batch["labels"]):
        lab = (labels != IGNORE_INDEX).nonzero().squeeze(1)  # [n]
        img = (ids == image_token_id).nonzero().squeeze(1)
        if not len(lab) or not len(img) or lab[0] != img[-1] + 1 or lab[-1] - lab[0] + 1 != len(lab):
            raise ValueError(
                "objective qformer trains on image-caption pairs: give the stage caption data "
                "(e.g. data: {name: shapes, task: caption}), not instruct conversations"
            )
        rows.append(ids[lab])
    width = max(len(r) for r in rows)
    tokens = torch.zeros(len(rows), width, dtype=torch.long)  # [B, T]
    mask = torch.zeros(len(rows), width, dtype=torch.long)
    for i, r in enumerate(rows):
        tokens[i, : len(r)], mask[i, : len(r)] = r, 1
    return tokens, mask


def stage1_loss(model, batch: dict) -> dict:
    """`VisionLanguageModel.training_loss(batch, "qformer")`: BLIP-2 stage-1 losses on a caption batch."""
    from ..registry import ConfigError

    if getattr(model, "qformer_stage1", None) is None:
        raise ConfigError(
            f"objective qformer trains a Q-Former: set connector: {{name: qformer}} (this model's "
            f"connector is {model.cfg.connector.name!r})"
        )
    if batch.get("image_layouts") is not None or any(c != 1 for c in batch["image_counts"]):
        raise ConfigError("objective qformer takes one untiled image per caption: remove vision.anyres")
    tokens, mask = caption_tokens(batch, model.image_token_id)
    features = model.encode_images(batch["pixel_values"], batch.get("image_keys"))  # [B, N, Dv]
    return model.qformer_stage1.losses(model.connector, features, tokens, mask)


@torch.no_grad()
def itc_similarity(model, images: list, texts: list[str]) -> torch.Tensor:
    """ITC scores [n_images, n_texts] of a VisionLanguageModel with a `qformer` connector (e.g. for retrieval)."""
    enc = [model.tokenizer(t + (model.tokenizer.eos_token or ""), add_special_tokens=False)["input_ids"] for t in texts]
    width = max(len(e) for e in enc)
    tokens = torch.zeros(len(enc), width, dtype=torch.long)  # [C, T]
    mask = torch.zeros(len(enc), width, dtype=torch.long)
    for i, e in enumerate(enc):
        tokens[i, : len(e)], mask[i, : len(e)] = torch.tensor(e), 1
    features = model.encode_images(model.vision.preprocess(list(images)))  # [B, N, Dv]
    return model.qformer_stage1.itc_scores(model.connector, features, tokens, mask)


# -------------------------------------------------------------------------------------------------- ports

BLIP2_STAGE1_RULES = [
    (r"embeddings\.word_embeddings\.weight", r"word_embeddings.weight"),
    (r"embeddings\.position_embeddings\.weight", r"position_embeddings.weight"),
    (r"qformer\.encoder\.layer\.(\d+)\.intermediate\.dense\.(\w+)", r"text_ffn.\1.fc1.\2"),
    (r"qformer\.encoder\.layer\.(\d+)\.output\.dense\.(\w+)", r"text_ffn.\1.fc2.\2"),
    (r"qformer\.encoder\.layer\.(\d+)\.output\.LayerNorm\.(\w+)", r"text_ffn.\1.norm.\2"),
    (r"vision_projection\.(\w+)", r"vision_proj.\1"),
    (r"text_projection\.(\w+)", r"text_proj.\1"),
    (r"itm_head\.(\w+)", r"itm_head.\1"),
]


def stage1_from_blip2(stage1: Blip2Stage1, qformer: QFormer, hf_state: dict) -> None:
    """Fill `qformer` and `stage1` from `Blip2ForImageTextRetrieval.state_dict()` (a model built with
    `use_qformer_text_input=True`). Parts the reference lacks (ITG head, temperature) keep their values."""
    qformer_from_blip2(
        qformer,
        {k[len("qformer.") :]: v for k, v in hf_state.items() if k.startswith("qformer.")},
        hf_state["query_tokens"],
    )
    keep = {k: v for k, v in stage1.state_dict().items() if k.startswith(("lm_", "temp"))}
    load_renamed(
        stage1,
        hf_state,
        BLIP2_STAGE1_RULES,
        extra=keep,
        skip=[
            r"^vision_model\.",
            r"^query_tokens$",
            r"^qformer\.(layernorm|encoder\.layer\.\d+\."
            r"(attention|crossattention|intermediate_query|output_query))",
        ],
    )
