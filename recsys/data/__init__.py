"""Data contracts: catalog, interactions and the style taxonomy, validated on load."""

from recsys.data.catalog import Catalog, load_catalog
from recsys.data.errors import DataContractError
from recsys.data.interactions import EVENT_TYPES, Interactions, load_interactions
from recsys.data.taxonomy import StyleTaxonomy, load_taxonomy

__all__ = [
    "EVENT_TYPES",
    "Catalog",
    "DataContractError",
    "Interactions",
    "StyleTaxonomy",
    "load_catalog",
    "load_interactions",
    "load_taxonomy",
]
