"""Layer 3: modality towers and their processors, found by name."""

VISION_ENCODERS: dict = {}
TEXT_ENCODERS: dict = {}
