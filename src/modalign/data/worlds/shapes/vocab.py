"""The shapes world's words: shapes, colours, sizes, positions, and their synonyms.

One place for every attribute value and how it is said, so the renderer, the language generator and the evaluators
(CHAIR maps mentions back to canonical names with `chair_synonyms()`) agree on the vocabulary.
"""

from __future__ import annotations

SHAPES = ["circle", "square", "triangle", "star", "diamond", "hexagon", "pentagon", "cross"]

# Saturated colours far from the grey background (and from each other), so a pixel names its colour unambiguously.
COLORS = {
    "red": (220, 30, 30),
    "green": (30, 170, 50),
    "blue": (30, 70, 220),
    "yellow": (240, 220, 20),
    "purple": (140, 40, 180),
    "orange": (250, 140, 10),
    "cyan": (20, 210, 220),
    "pink": (250, 120, 190),
}
COLOR_NAMES = list(COLORS)

SIZES = ["small", "large"]
# Object extent (bounding-box side) as a fraction of the image side, per size class.
SIZE_FRACTION = {"small": 0.16, "large": 0.28}

# Other words a caption may use for a canonical shape; CHAIR maps them back.
SHAPE_SYNONYMS = {
    "circle": ["disc", "disk", "dot"],
    "square": ["box", "block"],
    "triangle": ["wedge"],
    "star": ["starburst"],
    "diamond": ["rhombus", "lozenge"],
    "hexagon": [],
    "pentagon": [],
    "cross": ["plus", "plus sign"],
}
COLOR_SYNONYMS = {"purple": ["violet"], "cyan": ["turquoise"], "pink": ["rose"]}

RELATIONS = ["left of", "right of", "above", "below"]
INVERSE_RELATION = {"left of": "right of", "right of": "left of", "above": "below", "below": "above"}

NUMBER_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"]


def plural(shape: str) -> str:
    """English plural of a shape word ("cross" -> "crosses")."""
    return shape + "es" if shape.endswith(("s", "x", "sh", "ch")) else shape + "s"


def number_word(n: int) -> str:
    return NUMBER_WORDS[n] if 0 <= n < len(NUMBER_WORDS) else str(n)


def object_names() -> list[str]:
    """Every colour+shape phrase ("red circle"), the POPE / CHAIR-phrase vocabulary, in a fixed order."""
    return [f"{c} {s}" for c in COLOR_NAMES for s in SHAPES]


def chair_synonyms() -> dict[str, list[str]]:
    """canonical shape -> [canonical, synonyms..., plurals...] (CHAIR's synonym table; all lower case)."""
    table = {}
    for shape, syns in SHAPE_SYNONYMS.items():
        words = [shape, *syns]
        table[shape] = words + [plural(w) for w in words]
    return table


def color_synonyms() -> dict[str, list[str]]:
    """canonical colour -> [canonical, synonyms...]."""
    return {c: [c, *COLOR_SYNONYMS.get(c, [])] for c in COLOR_NAMES}


def vocabulary() -> dict:
    """Everything above as one JSON-able dict (written beside generated data as vocabulary.json)."""
    return {
        "shapes": SHAPES,
        "colors": {k: list(v) for k, v in COLORS.items()},
        "sizes": SIZES,
        "relations": RELATIONS,
        "objects": object_names(),
        "synonyms": chair_synonyms(),
        "color_synonyms": color_synonyms(),
    }
