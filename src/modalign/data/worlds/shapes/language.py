"""Captions derived from a scene graph: short ("a red circle and a blue star") and detailed (every object with its
attributes, position and a relation), through several templates and paraphrases (synonyms, grouped counts).

Every sentence is true of its scene by construction: words come only from the graph.
"""

from __future__ import annotations

from .vocab import COLOR_SYNONYMS, SHAPE_SYNONYMS, number_word, plural

SHORT_TEMPLATES = [
    "{objs}",
    "there is {objs}",
    "an image of {objs}",
    "a picture with {objs}",
    "{objs} on a grey background",
    "a scene containing {objs}",
]
DETAILED_OPENINGS = [
    "There {be} {n} {objects} on a {bg} background.",
    "The image shows {n} {objects} on a {bg} background.",
    "In this picture there {be} {n} {objects}; the background is {bg}.",
]
OBJECT_SENTENCES = [
    "{A} {phrase} is {where}",
    "{Where}, there is {a} {phrase}",
    "{A} {phrase} sits {where}",
]
BACKGROUND_WORDS = {"plain": "plain grey", "noise": "noisy grey", "texture": "striped grey"}


def article(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"


def with_article(phrase: str) -> str:
    return f"{article(phrase)} {phrase}"


def join_list(items: list[str]) -> str:
    """["a", "b", "c"] -> "a, b and c"."""
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def where_phrase(position: str) -> str:
    """Position word from the graph -> a prepositional phrase ("top left" -> "in the top left")."""
    if position == "center":
        return "in the center"
    if position in ("top", "bottom"):
        return f"at the {position}"
    if position in ("left", "right"):
        return f"on the {position}"
    return f"in the {position}"


def _word(rng, canonical: str, synonyms: dict, p: float) -> str:
    options = synonyms.get(canonical) or []
    if options and p > 0 and rng.random() < p:
        return options[int(rng.integers(len(options)))]
    return canonical


def object_phrase(obj: dict, rng=None, synonym_p: float = 0.0, with_size: bool = False) -> str:
    """ "red circle" / "large red circle", optionally with synonyms ("red disc")."""
    color, shape = obj["color"], obj["shape"]
    if rng is not None and synonym_p > 0:
        color = _word(rng, color, COLOR_SYNONYMS, synonym_p)
        shape = _word(rng, shape, SHAPE_SYNONYMS, synonym_p)
    return f"{obj['size']} {color} {shape}" if with_size else f"{color} {shape}"


def short_caption(scene: dict, rng, synonym_p: float = 0.2) -> str:
    """One short caption listing the objects by colour and shape, from a random template and paraphrase."""
    objs = scene["objects"]
    order = [int(k) for k in rng.permutation(len(objs))]
    with_size = bool(rng.random() < 0.3)
    phrases = [object_phrase(objs[k], rng, synonym_p, with_size) for k in order]
    if rng.random() < 0.5:
        # Paraphrase by grouping identical phrases: "two red circles and a blue star".
        groups: dict[str, int] = {}
        for p in phrases:
            groups[p] = groups.get(p, 0) + 1
        items = []
        for p, k in groups.items():
            head, _, noun = p.rpartition(" ")
            items.append(with_article(p) if k == 1 else f"{number_word(k)} {head} {plural(noun)}".replace("  ", " "))
    else:
        items = [with_article(p) for p in phrases]
    template = SHORT_TEMPLATES[int(rng.integers(len(SHORT_TEMPLATES)))]
    return template.format(objs=join_list(items))


def detailed_caption(scene: dict, rng) -> str:
    """Every object with size, colour, shape and position, in drawing order, and a relation to its nearest
    neighbour (the relation the scene graph holds between them, else "next to")."""
    objs = scene["objects"]
    n = len(objs)
    opening = DETAILED_OPENINGS[int(rng.integers(len(DETAILED_OPENINGS)))].format(
        be="is" if n == 1 else "are",
        n=number_word(n),
        objects="object" if n == 1 else "objects",
        bg=BACKGROUND_WORDS.get(scene.get("background", "plain"), "grey"),
    )
    sentences = [opening]
    rel_by_pair: dict[tuple[int, int], list[str]] = {}
    for i, r, j in scene["relations"]:
        rel_by_pair.setdefault((i, j), []).append(r)
    for i, obj in enumerate(objs):
        phrase = object_phrase(obj, with_size=True)
        where = where_phrase(obj["position"])
        Where = where[0].upper() + where[1:]
        tmpl = OBJECT_SENTENCES[int(rng.integers(len(OBJECT_SENTENCES)))]
        s = tmpl.format(A=article(phrase).capitalize(), a=article(phrase), phrase=phrase, where=where, Where=Where)
        j = scene["nearest"][i]
        if j >= 0:
            other = object_phrase(objs[j])
            rels = rel_by_pair.get((i, j))
            s += f", {rels[int(rng.integers(len(rels)))]} the {other}" if rels else f", next to the {other}"
        sentences.append(s + ".")
    return " ".join(sentences)


def caption(scene: dict, rng, style: str = "short", synonym_p: float = 0.2) -> str:
    """A caption of the given style: "short", "detailed", or "mixed" (either, with probability 1/2 each)."""
    if style == "short":
        return short_caption(scene, rng, synonym_p)
    if style == "detailed":
        return detailed_caption(scene, rng)
    if style == "mixed":
        if rng.random() < 0.5:
            return short_caption(scene, rng, synonym_p)
        return detailed_caption(scene, rng)
    raise ValueError(f"caption style must be short, detailed or mixed, got {style!r}")
