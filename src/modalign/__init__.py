"""modalign: align other modalities with language.

Three paths, one toolkit: contrastive dual encoders (CLIP, SigLIP, LiT), connectors into a causal language model
(LLaVA, BLIP-2, Flamingo) trained in stages, and the measurements of both. See docs/ for the design.
"""

__version__ = "0.1.0"
