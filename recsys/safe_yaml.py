"""The one YAML loader for text that comes from outside (rules imports, rules files).

``yaml.safe_load`` constructs no arbitrary objects but has no limits: a 396-byte alias bomb
("billion laughs") expands into an object that takes minutes and gigabytes to print, and
deeply nested brackets raise ``RecursionError``. ``load_yaml`` checks size before parsing,
and depth, alias count and the *expanded* node count (an alias counts as the size of what it
points at) while composing, before any Python object exists. Violations raise
``YamlLimitError`` (a ``yaml.YAMLError``) with a short message saying which limit and its value.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml


@dataclass(frozen=True)
class YamlLimits:
    """Bounds for one document. The defaults are far above any real rules file (hundreds of
    rules, a few levels deep, no aliases needed) and far below what hurts a worker."""

    max_bytes: int = 1_000_000
    max_depth: int = 32
    max_aliases: int = 100
    max_nodes: int = 200_000  # after alias expansion


DEFAULT_LIMITS = YamlLimits()


class YamlLimitError(yaml.YAMLError):
    """The document exceeds a ``YamlLimits`` bound; the message names the bound."""


class _LimitedLoader(yaml.SafeLoader):
    limits: YamlLimits = DEFAULT_LIMITS

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._aliases = 0
        self._nodes = 0
        self._expanded: dict[int, int] = {}  # id(node) -> nodes it expands to

    def _count(self, n: int) -> None:
        self._nodes += n
        if self._nodes > self.limits.max_nodes:
            raise YamlLimitError(
                f"document expands to more than {self.limits.max_nodes} nodes (aliases included)"
            )

    def compose_node(self, parent: Any, index: Any) -> Any:  # noqa: ANN401 - PyYAML's signature
        if self.check_event(yaml.AliasEvent):
            self._aliases += 1
            if self._aliases > self.limits.max_aliases:
                raise YamlLimitError(f"more than {self.limits.max_aliases} aliases (*name)")
            anchor = self.peek_event().anchor  # type: ignore[no-untyped-call]
            target = self.anchors.get(anchor)
            if target is not None:
                self._count(self._expanded.get(id(target), 1))
            return super().compose_node(parent, index)
        self._depth += 1
        if self._depth > self.limits.max_depth:
            raise YamlLimitError(f"nested deeper than {self.limits.max_depth} levels")
        start = self._nodes
        self._count(1)
        try:
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
        self._expanded[id(node)] = self._nodes - start
        return node


def load_yaml(text: str, limits: YamlLimits = DEFAULT_LIMITS) -> Any:  # noqa: ANN401 - any YAML
    """Parse one YAML document with PyYAML's safe constructors and the ``limits``."""
    size = len(text.encode("utf-8", errors="replace"))
    if size > limits.max_bytes:
        raise YamlLimitError(f"document is {size} bytes; at most {limits.max_bytes} allowed")
    loader = _LimitedLoader(text)
    loader.limits = limits
    try:
        return loader.get_single_data()
    except RecursionError:  # a scalar/flow construct deeper than the composer checks
        raise YamlLimitError(f"nested deeper than {limits.max_depth} levels") from None
    finally:
        loader.dispose()


def short_repr(value: Any, limit: int = 80) -> str:  # noqa: ANN401 - any parsed value
    """``repr`` cut to ``limit`` characters, for error messages that quote user input."""
    text = repr(value) if not isinstance(value, (list, dict)) else _short_container(value, limit)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _short_container(value: list[Any] | dict[Any, Any], limit: int) -> str:
    """A bounded preview of a container (never walks the whole, possibly huge, structure)."""
    if isinstance(value, dict):
        head = [f"{k!r:.20}: ..." for k in list(value)[:3]]
        return "{" + ", ".join(head) + (", ..." if len(value) > 3 else "") + "}"
    head = [f"{type(v).__name__}" for v in value[:3]]
    return f"[{', '.join(head)}{', ...' if len(value) > 3 else ''}] ({len(value)} items)"
