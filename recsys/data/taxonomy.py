"""The style taxonomy: which styles exist, loaded from a file so it travels with the model."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from recsys.data.errors import DataContractError

DEFAULT_TAXONOMY_PATH = Path(__file__).with_name("styles.yaml")
SLUG_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")


@dataclass(frozen=True)
class Style:
    slug: str
    name: str
    description: str


@dataclass(frozen=True)
class StyleTaxonomy:
    """An ordered set of styles; a style's position is its column in every style matrix."""

    styles: tuple[Style, ...]

    @property
    def slugs(self) -> tuple[str, ...]:
        return tuple(s.slug for s in self.styles)

    def __len__(self) -> int:
        return len(self.styles)

    def __contains__(self, slug: object) -> bool:
        return slug in self.slugs

    def index(self, slug: str) -> int:
        """Column of ``slug``; an unknown style raises ``KeyError`` listing the known ones."""
        try:
            return self.slugs.index(slug)
        except ValueError:
            raise KeyError(f"unknown style {slug!r}; known: {', '.join(self.slugs)}") from None

    def name(self, slug: str) -> str:
        return self.styles[self.index(slug)].name

    def to_dict(self) -> dict[str, Any]:
        return {"version": 1, "styles": [s.__dict__ for s in self.styles]}

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "<taxonomy>") -> StyleTaxonomy:
        entries = data.get("styles") if isinstance(data, dict) else None
        if not isinstance(entries, list) or not entries:
            raise DataContractError(source, "expected a non-empty 'styles' list")
        styles: list[Style] = []
        seen: set[str] = set()
        for i, entry in enumerate(entries, start=1):
            if not isinstance(entry, dict):
                raise DataContractError(source, "each style must be a mapping", row=i)
            slug = str(entry.get("slug", ""))
            if not SLUG_RE.match(slug):
                raise DataContractError(
                    source, f"style slug {slug!r} must be lower-case words joined by '-'", row=i
                )
            if slug in seen:
                raise DataContractError(source, f"duplicate style slug {slug!r}", row=i)
            seen.add(slug)
            styles.append(
                Style(slug, str(entry.get("name") or slug), str(entry.get("description") or ""))
            )
        return cls(tuple(styles))


def load_taxonomy(path: str | Path | None = None) -> StyleTaxonomy:
    """Load a taxonomy YAML/JSON file; the bundled default when ``path`` is None."""
    path = Path(path) if path else DEFAULT_TAXONOMY_PATH
    if not path.exists():
        raise DataContractError(str(path), "taxonomy file not found")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise DataContractError(str(path), f"not valid YAML: {exc}") from exc
    return StyleTaxonomy.from_dict(data, source=str(path))
