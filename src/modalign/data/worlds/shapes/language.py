"""Captions derived from a scene graph: short ("a red circle and a blue star") and detailed (every object with its
attributes, position and a relation), through several templates and paraphrases (synonyms, grouped counts).

Every sentence is true of its scene by construction: words come only from the graph.
"""

from __future__ import annotations

import numpy as np

from .vocab import COLOR_SYNONYMS, SHAPE_SYNONYMS, number_word, ordinal_word, plural

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
# The same facts with the shape named first: "The star in the top left is large and red." Plain descriptions practise
# reading a shape given a colour ("a red ..." -> "star"); these practise the other direction (colour given shape),
# which is what "What color is the star?" asks.
SHAPE_FIRST_SENTENCES = [
    "The {shape} {where} is {size} and {color}",
    "There is {a_shape} {where}; it is {color} and {size}",
    "{A_shape} {where} is {color}; it is {size}",
]
# The place named first: "In the top left, there is a small red star." A description in reading order then writes
# the scan out (top left, then top, ...), so the next place to name is in the text, and each object is read from the
# image at a place already written rather than picked among those not named yet.
WHERE_FIRST_SENTENCES = [
    "{Where}, there is {a} {phrase}",
    "{Where} is {a} {phrase}",
    "{Where} we see {a} {phrase}",
]
# Both at once: "In the top left, there is a star; it is small and red." A colour-first phrase asks the LM to write
# the shape after the colour, so a colour-shape pair never seen in training ("green diamond") loses to a seen one
# ("green pentagon"); here the shape is read after the place alone, and the colour follows in its own clause.
# Measured on the shapes world: it does not name more held-out pairs (docs/results/generative.md, seventh round).
WHERE_SHAPE_FIRST_SENTENCES = [
    "{Where}, there is {a_shape}; it is {size} and {color}",
    "{Where} is {a_shape}, {color} and {size}",
    "{Where} we see {a_shape} that is {size} and {color}",
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


DESCRIBE_ORDERS = ("drawn", "reading", "numbered")


def check_describe_order(order: str) -> None:
    if order not in DESCRIBE_ORDERS:
        raise ValueError(
            f"describe_order is the order a description names the objects in: one of "
            f"{', '.join(DESCRIBE_ORDERS)}; got {order!r}"
        )


DESCRIBE_RELATIONS = ("nearest", "earlier", "none")


def check_describe_relations(relations: str) -> None:
    if relations not in DESCRIBE_RELATIONS:
        raise ValueError(
            f"describe_relations is which neighbour a description's sentence relates its object to: one "
            f"of {', '.join(DESCRIBE_RELATIONS)}; got {relations!r}"
        )


def _neighbour(scene: dict, i: int, described: list[int], relations: str) -> int:
    """The object sentence i relates its object to, or -1 (see detailed_caption's `relations`)."""
    if relations == "nearest":
        return scene["nearest"][i]
    if relations == "none" or not described:
        return -1
    centers = np.array([scene["objects"][j]["center"] for j in described], dtype=np.float64)  # [k, 2]
    dist = np.linalg.norm(centers - np.asarray(scene["objects"][i]["center"], dtype=np.float64), axis=-1)
    return described[int(np.argmin(dist))]


def reading_order(objs: list[dict]) -> list[int]:
    """Object indices row by row of the thirds grid (top, middle, bottom), left to right, then by centre."""

    def key(k):
        pos, (cx, cy) = objs[k]["position"], objs[k]["center"]
        row = 0 if pos.startswith("top") else 2 if pos.startswith("bottom") else 1
        col = 0 if pos.endswith("left") else 2 if pos.endswith("right") else 1
        return row, col, cy, cx

    return sorted(range(len(objs)), key=key)


def detailed_caption(
    scene: dict,
    rng,
    shape_first_p: float = 0.0,
    order: str = "drawn",
    where_first_p: float = 0.0,
    where_shape_first_p: float = 0.0,
    relations: str = "nearest",
) -> str:
    """Every object with size, colour, shape and position, and (by default) a relation to its nearest neighbour.

    With probability `shape_first_p` an object's sentence names its shape first (SHAPE_FIRST_SENTENCES); at 0 no extra
    random draw is made, so descriptions stay exactly those of earlier data. `order`: "drawn" (the scene's drawing
    order, i.e. random) or "reading" (reading_order), so that the next object to name is the next one in a fixed scan
    rather than any one not named yet, or "numbered": reading order with each object's sentence opened by its ordinal
    ("First, ...", "Second, ..."; "Next, ..." past the tenth), so that a description counts its own scan against the
    number in its opening. With probability `where_first_p` an object's sentence names its place first
    (WHERE_FIRST_SENTENCES; drawn before the shape-first choice); at 0 no extra random draw is made. A place-first
    sentence names, with probability `where_shape_first_p`, the shape before colour and size too
    (WHERE_SHAPE_FIRST_SENTENCES); at 0 no extra random draw is made. `relations`: a sentence ends with a relation
    to its object's "nearest" neighbour (which may be described later, so a colour and shape written in a relation
    come back in that object's own sentence), to the nearest of the objects "earlier" described (the first sentence
    has none; an object's own sentence then never repeats words written before about it), or to "none".
    """
    check_describe_order(order)
    check_describe_relations(relations)
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
    described: list[int] = []
    for rank, i in enumerate(range(n) if order == "drawn" else reading_order(objs)):
        obj = objs[i]
        phrase = object_phrase(obj, with_size=True)
        where = where_phrase(obj["position"])
        Where = where[0].upper() + where[1:]
        a_shape = with_article(obj["shape"])
        if where_first_p > 0 and rng.random() < where_first_p:
            if where_shape_first_p > 0 and rng.random() < where_shape_first_p:
                tmpl = WHERE_SHAPE_FIRST_SENTENCES[int(rng.integers(len(WHERE_SHAPE_FIRST_SENTENCES)))]
                s = tmpl.format(Where=Where, a_shape=a_shape, size=obj["size"], color=obj["color"])
            else:
                tmpl = WHERE_FIRST_SENTENCES[int(rng.integers(len(WHERE_FIRST_SENTENCES)))]
                s = tmpl.format(a=article(phrase), phrase=phrase, Where=Where)
        elif shape_first_p > 0 and rng.random() < shape_first_p:
            tmpl = SHAPE_FIRST_SENTENCES[int(rng.integers(len(SHAPE_FIRST_SENTENCES)))]
            s = tmpl.format(
                shape=obj["shape"],
                where=where,
                size=obj["size"],
                color=obj["color"],
                a_shape=a_shape,
                A_shape=a_shape[0].upper() + a_shape[1:],
            )
        else:
            tmpl = OBJECT_SENTENCES[int(rng.integers(len(OBJECT_SENTENCES)))]
            s = tmpl.format(A=article(phrase).capitalize(), a=article(phrase), phrase=phrase, where=where, Where=Where)
        j = _neighbour(scene, i, described, relations)
        described.append(i)
        if j >= 0:
            other = object_phrase(objs[j])
            rels = rel_by_pair.get((i, j))
            s += f", {rels[int(rng.integers(len(rels)))]} the {other}" if rels else f", next to the {other}"
        if order == "numbered":
            s = f"{ordinal_word(rank + 1)}, {s[0].lower()}{s[1:]}"
        sentences.append(s + ".")
    return " ".join(sentences)


def caption(
    scene: dict,
    rng,
    style: str = "short",
    synonym_p: float = 0.2,
    order: str = "drawn",
    where_first_p: float = 0.0,
    where_shape_first_p: float = 0.0,
    relations: str = "nearest",
) -> str:
    if style == "short":
        return short_caption(scene, rng, synonym_p)
    if style == "detailed":
        return detailed_caption(
            scene,
            rng,
            order=order,
            where_first_p=where_first_p,
            where_shape_first_p=where_shape_first_p,
            relations=relations,
        )
    if style == "mixed":
        if rng.random() < 0.5:
            return short_caption(scene, rng, synonym_p)
        return detailed_caption(
            scene,
            rng,
            order=order,
            where_first_p=where_first_p,
            where_shape_first_p=where_shape_first_p,
            relations=relations,
        )
    raise ValueError(f"caption style must be short, detailed or mixed, got {style!r}")
