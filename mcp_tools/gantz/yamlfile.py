"""Reading a Gantz file's YAML the way gantz-cli's parser (Go's yaml.v3) sees it.

PyYAML follows YAML 1.1, yaml.v3 mostly 1.2; the differences that would
change a tool are closed here:

- ``yes``/``no``/``on``/``off`` are strings, not booleans (``args: [on]``);
- dates are strings, not ``date`` objects (``args: [2026-01-31]``), and no
  other non-JSON type (``!!binary``, ``!!set``, ...) is produced, so a tool's
  definition can be stored as JSON as written;
- a key written twice in one mapping is an error, as in yaml.v3 (PyYAML
  silently keeps the last one).
"""

from __future__ import annotations

import logging
import re
from typing import Any

import yaml

logger = logging.getLogger(__name__)


class GantzYamlLoader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 booleans, no timestamps and no duplicate keys."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # "<<: *defaults": merged keys may be overridden, as in yaml.v3
            key = self.construct_object(key_node, deep=True)
            if not isinstance(key, str | int | float | bool) and key is not None:
                raise yaml.constructor.ConstructorError(
                    None, None, "a mapping key must be a plain value", key_node.start_mark
                )
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"the key {key!r} is written twice", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _refuse(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    raise yaml.constructor.ConstructorError(
        None, None, f"{node.tag} values are not supported in a Gantz file", node.start_mark
    )


GantzYamlLoader.yaml_implicit_resolvers = {
    first: [
        (tag, regexp)
        for tag, regexp in resolvers
        if tag not in ("tag:yaml.org,2002:bool", "tag:yaml.org,2002:timestamp")
    ]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
GantzYamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
for _tag in ("timestamp", "binary", "set", "omap", "pairs"):
    GantzYamlLoader.add_constructor(f"tag:yaml.org,2002:{_tag}", _refuse)


def _construct_bool(loader: GantzYamlLoader, node: yaml.ScalarNode) -> bool:
    return loader.construct_yaml_bool(node)


GantzYamlLoader.add_constructor("tag:yaml.org,2002:bool", _construct_bool)


def read_yaml(text: str) -> Any:
    """The document in ``text``; ``yaml.YAMLError`` if it is not YAML we accept."""
    return yaml.load(text, Loader=GantzYamlLoader)  # a SafeLoader subclass: no arbitrary objects
