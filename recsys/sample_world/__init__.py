"""A synthetic home-improvement world with known ground truth (``recsys sample-data``)."""

from recsys.sample_world.catalog import CatalogDraw, draw_catalog, generate_catalog
from recsys.sample_world.world import DEFAULT_ORDERS, DEFAULT_SKUS, World, generate_world

__all__ = [
    "DEFAULT_ORDERS",
    "DEFAULT_SKUS",
    "CatalogDraw",
    "World",
    "draw_catalog",
    "generate_catalog",
    "generate_world",
]
