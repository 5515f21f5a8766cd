"""YAML as recipes need it: PyYAML's safe loader, except that a key given twice in one mapping is an error.

Plain `yaml.safe_load` keeps the last of two equal keys, so a recipe with `lr: 1e-4` near the top and a forgotten
`lr: 1.0` further down trains with 1.0 and says nothing. Here the second one is refused with both line numbers.
"""

from __future__ import annotations

from typing import Any

import yaml


class DuplicateKeyError(yaml.constructor.ConstructorError):
    pass


class UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader whose mappings refuse duplicate keys (merge keys `<<` keep their meaning)."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen: dict = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                line = key_node.start_mark.line + 1
                try:
                    if key in seen:
                        raise DuplicateKeyError(
                            "while constructing a mapping",
                            node.start_mark,
                            f"found key {key!r} twice (lines {seen[key]} and {line}); keep one",
                            key_node.start_mark,
                        )
                    seen[key] = line
                except TypeError:  # an unhashable key: the base class gives its own error
                    continue
        return super().construct_mapping(node, deep=deep)


def load(text: str) -> Any:
    """Parse YAML text safely (no tags that build Python objects), refusing duplicate keys."""
    return yaml.load(text, Loader=UniqueKeyLoader)  # a SafeLoader: builds no Python objects
