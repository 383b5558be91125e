"""The sample world's vocabulary as data: categories, style profiles, projects, accessories.

Everything the generator draws from lives here so a reader can check the world's "designer
knowledge" in one place: which attributes each style prefers, which categories a project
buys, which accessories a category needs and how often each one is forgotten.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

STYLES: tuple[str, ...] = (
    "loft", "scandinavian", "classic", "modern", "provence", "minimalism", "boho", "art-deco",
)
"""Order matches ``recsys/data/styles.yaml``."""

STYLE_POPULARITY: dict[str, float] = {
    "loft": 0.16, "scandinavian": 0.18, "classic": 0.11, "modern": 0.17,
    "provence": 0.09, "minimalism": 0.12, "boho": 0.09, "art-deco": 0.08,
}

FAMILIES: tuple[str, ...] = ("finishing", "furniture", "lighting", "textiles", "decor", "tools")

TAG_RATE: dict[str, float] = {
    "finishing": 0.10, "furniture": 0.82, "lighting": 0.80, "textiles": 0.72, "decor": 0.75,
    "tools": 0.0,
}
"""Share of SKUs in a family that carry style tags (tools and consumables never do)."""

WRONG_TAG_RATE = 0.05
"""Share of tagged SKUs whose tag is a wrong style (catalog noise)."""

ATTRIBUTE_NOISE = 0.08
"""Share of an item's attribute draw that ignores its style (uniform over allowed values)."""

# Style profiles: relative preference of each style for attribute values. Values a style does
# not list get a small floor weight, so every value stays possible in every style (overlap).
STYLE_PROFILES: dict[str, dict[str, dict[str, float]]] = {
    "loft": {
        "color": {"grey": 6, "black": 5, "anthracite": 4, "brown": 2, "white": 1.5, "natural": 1,
                  "terracotta": 0.5},
        "material": {"metal": 6, "metal and wood": 5, "concrete": 5, "brick": 4, "clay": 2,
                     "reclaimed wood": 4, "leather": 3, "steel": 3, "porcelain stoneware": 2,
                     "non-woven": 4, "gypsum": 2, "oak": 1, "glass": 0.5, "jute": 0.5},
        "finish": {"matte": 4, "raw": 5, "aged": 4, "textured": 3},
        "pattern": {"concrete look": 7, "brick look": 5, "plain": 3, "industrial": 3,
                    "wood look": 1, "stone look": 1.5},
    },
    "scandinavian": {
        "color": {"white": 6, "light grey": 5, "natural": 5, "beige": 3, "grey": 1.5,
                  "pastel blue": 1, "sage": 1.5},
        "material": {"oak": 6, "birch": 5, "pine": 3, "wool": 4, "linen": 4, "cotton": 2,
                     "ceramic": 2, "porcelain stoneware": 1, "non-woven": 2, "paper": 2},
        "finish": {"matte": 5, "natural oil": 5, "textured": 1.5},
        "pattern": {"plain": 6, "wood look": 5, "geometric": 2, "stripes": 2, "knit": 2},
    },
    "classic": {
        "color": {"dark brown": 5, "cream": 4, "burgundy": 4, "gold": 3, "beige": 3, "ivory": 3,
                  "green": 1},
        "material": {"walnut": 5, "mahogany": 5, "velvet": 4, "brass": 3, "crystal": 5,
                     "marble": 2, "silk": 3, "ceramic": 1, "paper": 2, "vinyl": 2},
        "finish": {"polished": 4, "lacquered": 3, "carved": 5, "satin": 2},
        "pattern": {"damask": 6, "floral": 3, "ornament": 5, "marble look": 2, "herringbone": 3,
                    "plain": 1, "stripes": 1.5},
    },
    "modern": {
        "color": {"white": 4, "black": 3, "grey": 3, "blue": 3, "red": 2.5, "beige": 1},
        "material": {"glass": 5, "chrome": 5, "lacquered mdf": 4, "plastic": 3, "steel": 2,
                     "porcelain stoneware": 2, "leather": 1.5, "velvet": 1, "vinyl": 2},
        "finish": {"gloss": 6, "polished": 3, "satin": 2, "matte": 1},
        "pattern": {"plain": 4, "abstract": 5, "geometric": 3, "marble look": 2, "stone look": 2},
    },
    "provence": {
        "color": {"white": 4, "cream": 5, "lavender": 5, "pastel blue": 4, "mint": 4, "beige": 2},
        "material": {"painted wood": 6, "rattan": 3, "linen": 4, "cotton": 3, "ceramic": 3,
                     "wrought iron": 3, "pine": 1.5, "paper": 2},
        "finish": {"distressed": 6, "matte": 3, "aged": 2},
        "pattern": {"floral": 6, "check": 5, "stripes": 3, "toile": 4, "encaustic": 3,
                    "plain": 1, "wood look": 1},
    },
    "minimalism": {
        "color": {"white": 7, "black": 4, "grey": 3, "beige": 2, "light grey": 3},
        "material": {"lacquered mdf": 4, "steel": 4, "oak": 2, "concrete": 2, "glass": 1.5,
                     "porcelain stoneware": 2, "cotton": 2, "linen": 1.5, "non-woven": 3},
        "finish": {"matte": 7, "satin": 2},
        "pattern": {"plain": 10, "stone look": 1.5, "concrete look": 1.5},
    },
    "boho": {
        "color": {"terracotta": 6, "mustard": 5, "natural": 4, "green": 3, "multicolor": 5,
                  "beige": 2, "brown": 2},
        "material": {"rattan": 6, "jute": 6, "cotton": 3, "teak": 4, "clay": 4, "wool": 2,
                     "bamboo": 4, "ceramic": 2, "paper": 1},
        "finish": {"natural": 5, "woven": 5, "matte": 2, "textured": 2},
        "pattern": {"ethnic": 6, "macrame": 4, "floral": 2, "geometric": 2, "encaustic": 4,
                    "plain": 1, "stripes": 1},
    },
    "art-deco": {
        "color": {"emerald": 5, "black": 4, "gold": 6, "navy": 4, "ivory": 2, "burgundy": 1},
        "material": {"brass": 6, "velvet": 6, "marble": 5, "glass": 3, "lacquered mdf": 2,
                     "crystal": 3, "porcelain stoneware": 1, "silk": 2, "vinyl": 1},
        "finish": {"polished": 5, "gloss": 3, "gilded": 5},
        "pattern": {"geometric": 6, "chevron": 4, "fan": 4, "marble look": 5, "herringbone": 2,
                    "plain": 1},
    },
}

FLOOR_WEIGHT = 0.08
"""Weight of an attribute value a style does not list."""

COLORS = ("grey", "black", "anthracite", "white", "light grey", "beige", "natural", "brown",
          "dark brown", "cream", "ivory", "burgundy", "gold", "green", "sage", "blue",
          "pastel blue", "navy", "red", "lavender", "mint", "terracotta", "mustard",
          "multicolor", "emerald")
WOODS = ("oak", "birch", "pine", "walnut", "mahogany", "teak", "reclaimed wood", "painted wood")
FABRICS = ("velvet", "linen", "cotton", "wool", "leather", "silk", "jute")


@dataclass(frozen=True)
class CategorySpec:
    """One catalog category: how its SKUs are drawn and titled.

    ``colors``/``materials``/``finishes``/``patterns`` are the allowed values (empty = column
    left empty); ``extras`` are open-ended attributes drawn uniformly; ``styled_extras`` are
    open-ended attributes drawn from the style profile of ``material`` (e.g. a table top);
    ``title`` is a ``str.format`` template over all of them.
    """

    slug: str
    family: str
    weight: float                # share of SKUs
    price: float                 # median price (EUR)
    colors: tuple[str, ...] = ()
    materials: tuple[str, ...] = ()
    finishes: tuple[str, ...] = ()
    patterns: tuple[str, ...] = ()
    extras: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    styled_extras: dict[str, tuple[str, ...]] = field(default_factory=dict)
    title: str = "{Color} {material} {noun}"
    noun: str = ""
    styles: dict[str, float] | None = None  # style mix of this category's SKUs if not global
    profiles: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    """Per-style profile overrides for this category (style -> attribute -> weights)."""
    quantity: tuple[int, int] = (1, 1)        # units per purchase line (min, max)


_TILE_COLORS = ("grey", "anthracite", "white", "light grey", "beige", "black", "natural",
                "brown", "cream", "terracotta", "green", "blue", "ivory", "emerald", "navy",
                "sage", "mustard")
_FURN_FINISH = ("matte", "raw", "aged", "natural oil", "polished", "lacquered", "carved",
                "gloss", "satin", "distressed", "natural", "woven", "gilded")
_FURN_COLORS = ("black", "white", "grey", "natural", "dark brown", "brown", "cream", "gold",
                "beige", "light grey", "anthracite", "lavender", "pastel blue", "mint", "navy",
                "emerald", "terracotta", "mustard", "red", "blue", "ivory", "burgundy", "green")
_FURN_MATERIALS = ("metal", "metal and wood", "steel", "oak", "birch", "pine", "walnut",
                   "mahogany", "teak", "reclaimed wood", "painted wood", "rattan", "bamboo",
                   "lacquered mdf", "glass", "chrome", "brass", "marble", "wrought iron",
                   "plastic")
_LIGHT_MATERIALS = ("metal", "metal and wood", "steel", "concrete", "glass", "crystal", "brass",
                    "chrome", "rattan", "bamboo", "jute", "ceramic", "wrought iron",
                    "painted wood", "oak", "linen", "plastic")
_UPHOLSTERY = ("velvet", "linen", "cotton", "wool", "leather", "silk", "jute")
_TEXTILE_PATTERNS = ("plain", "geometric", "stripes", "floral", "check", "damask", "ethnic",
                     "abstract", "chevron", "knit", "toile", "macrame", "ornament", "industrial")
_FURN_TOPS = ("oak", "glass", "marble", "concrete", "reclaimed wood", "walnut", "lacquered mdf",
              "birch", "painted wood", "teak", "mahogany", "rattan")

CATEGORIES: tuple[CategorySpec, ...] = (
    # --- finishing materials: mostly untagged -------------------------------------------
    CategorySpec(
        "porcelain-tile", "finishing", 9, 32, _TILE_COLORS, ("porcelain stoneware",),
        ("matte", "polished", "textured", "gloss", "satin", "raw"),
        ("concrete look", "marble look", "wood look", "stone look", "plain", "encaustic",
         "geometric", "terrazzo"),
        extras={"size": ("60x60", "30x60", "120x60", "20x120", "80x80", "60x120")},
        title="{Color} porcelain stoneware tile {size} {pattern}", quantity=(4, 30),
        # a loft floor is grey concrete: the product's defining example
        profiles={"loft": {"color": {"grey": 10, "anthracite": 5, "black": 2, "white": 1},
                           "pattern": {"concrete look": 10, "stone look": 2, "plain": 1.5}}}),
    CategorySpec(
        "ceramic-tile", "finishing", 7, 24, _TILE_COLORS, ("ceramic",),
        ("gloss", "matte", "satin", "textured"),
        ("plain", "floral", "encaustic", "geometric", "marble look", "stone look", "ethnic",
         "ornament", "chevron", "fan", "check"),
        extras={"size": ("20x20", "10x30", "20x60", "30x30", "7.5x15", "25x40")},
        title="{Color} ceramic wall tile {size} {pattern}", quantity=(3, 20)),
    CategorySpec(
        "brick-tile", "finishing", 3, 38, ("brown", "terracotta", "white", "grey", "black",
                                           "anthracite", "beige"),
        ("clay", "gypsum", "concrete"), ("raw", "aged", "matte", "textured"), ("brick look",),
        extras={"size": ("24x7", "25x6.5", "21x5")},
        title="{Color} {material} brick tile {size}, {finish}", quantity=(3, 15),
        styles={"loft": 0.5, "scandinavian": 0.15, "boho": 0.15, "modern": 0.1,
                "minimalism": 0.1}),
    CategorySpec(
        "wallpaper", "finishing", 10, 28, COLORS, ("non-woven", "vinyl", "paper", "silk"),
        ("matte", "textured", "satin", "gloss"),
        ("plain", "concrete look", "brick look", "damask", "floral", "geometric", "stripes",
         "toile", "ethnic", "abstract", "wood look", "check", "chevron", "fan", "ornament",
         "industrial", "marble look"),
        extras={"roll": ("10.05x0.53 m", "10.05x1.06 m", "25x1.06 m")},
        title="{Paintable}{color} {material} wallpaper {roll}, {pattern}", quantity=(2, 12),
        # loft walls: plain or concrete/brick-textured non-woven, painted over
        profiles={"loft": {"pattern": {"concrete look": 6, "brick look": 5, "plain": 6,
                                       "industrial": 1.5},
                           "material": {"non-woven": 10, "vinyl": 1}}}),
    CategorySpec(
        "wall-paint", "finishing", 7, 35, tuple(c for c in COLORS if c != "multicolor"), ("acrylic", "latex", "mineral"),
        ("matte", "eggshell", "satin", "gloss"), (),
        extras={"volume_l": (1, 2.5, 5, 9, 10)},
        title="Interior wall paint {color}, {finish}, {volume_l} l", quantity=(1, 4)),
    CategorySpec(
        "laminate-flooring", "finishing", 6, 19,
        ("natural", "light grey", "grey", "white", "dark brown", "brown", "beige", "anthracite"),
        ("laminate",), ("matte", "textured", "aged", "satin", "gloss", "raw"),
        ("wood look", "stone look", "concrete look", "herringbone", "plain"),
        extras={"thickness_mm": (7, 8, 10, 12), "wear_class": ("AC3", "AC4", "AC5")},
        title="Laminate flooring {thickness_mm} mm, {color}, {pattern}, {wear_class}",
        quantity=(5, 40)),
    CategorySpec(
        "skirting-boards", "finishing", 2.5, 9,
        ("white", "natural", "light grey", "grey", "dark brown", "brown", "beige", "anthracite", "black"),
        ("oak", "pine", "lacquered mdf", "painted wood", "plastic"),
        ("matte", "gloss", "raw", "natural oil", "lacquered"), (),
        extras={"height_mm": (40, 60, 80, 100), "length_m": (2.4, 2.5, 2.8)},
        title="Skirting board {height_mm} mm x {length_m} m, {color} {material}", quantity=(4, 20)),
    # --- furniture: mostly tagged ----------------------------------------------------------
    CategorySpec(
        "coffee-table", "furniture", 4, 220, _FURN_COLORS, _FURN_MATERIALS, _FURN_FINISH, (),
        styled_extras={"top": _FURN_TOPS},
        title="Coffee table with {color} {material} frame and {top} top"),
    CategorySpec(
        "dining-table", "furniture", 3.5, 520, _FURN_COLORS, _FURN_MATERIALS, _FURN_FINISH, (),
        extras={"seats": (4, 6, 8)}, styled_extras={"top": _FURN_TOPS},
        title="Dining table for {seats} with {color} {material} legs and {top} top"),
    CategorySpec(
        "chair", "furniture", 5, 95, _FURN_COLORS, _FURN_MATERIALS + _UPHOLSTERY, _FURN_FINISH,
        (), title="{Color} {material} dining chair, {finish}", quantity=(2, 6)),
    CategorySpec(
        "sofa", "furniture", 3.5, 900, _FURN_COLORS, _UPHOLSTERY, ("matte", "natural", "satin"),
        _TEXTILE_PATTERNS, extras={"seats": (2, 3, 4)},
        styled_extras={"legs": ("metal", "oak", "brass", "walnut", "chrome", "painted wood",
                                "teak", "steel", "birch", "mahogany")},
        title="{seats}-seat sofa in {color} {material} with {legs} legs"),
    CategorySpec(
        "armchair", "furniture", 3, 380, _FURN_COLORS, _UPHOLSTERY + ("rattan", "bamboo"),
        ("matte", "natural", "satin", "woven"), _TEXTILE_PATTERNS,
        styled_extras={"legs": ("metal", "oak", "brass", "walnut", "chrome", "painted wood",
                                "teak", "steel", "birch", "mahogany")},
        title="{Color} {material} armchair with {legs} legs"),
    CategorySpec(
        "shelving", "furniture", 3, 160, _FURN_COLORS, _FURN_MATERIALS, _FURN_FINISH, (),
        extras={"shelves": (3, 4, 5, 6)},
        title="{Color} {material} shelving unit, {shelves} shelves"),
    CategorySpec("tv-stand", "furniture", 2.5, 240, _FURN_COLORS, _FURN_MATERIALS, _FURN_FINISH,
                 (), title="{Color} {material} TV stand, {finish}"),
    CategorySpec("bed", "furniture", 3, 650, _FURN_COLORS, _FURN_MATERIALS + _UPHOLSTERY,
                 _FURN_FINISH, (), extras={"size": ("140x200", "160x200", "180x200")},
                 title="{Color} {material} bed {size}"),
    CategorySpec("wardrobe", "furniture", 2.5, 560, _FURN_COLORS, _FURN_MATERIALS,
                 _FURN_FINISH, (), extras={"doors": (2, 3, 4)},
                 title="{Color} {material} wardrobe with {doors} doors, {finish}"),
    CategorySpec("sideboard", "furniture", 2.5, 430, _FURN_COLORS, _FURN_MATERIALS,
                 _FURN_FINISH, (), title="{Color} {material} sideboard, {finish}"),
    # --- lighting: mostly tagged -----------------------------------------------------------
    CategorySpec(
        "chandelier", "lighting", 3.5, 260, _FURN_COLORS, _LIGHT_MATERIALS,
        ("matte", "raw", "aged", "polished", "gloss", "gilded", "distressed", "natural"), (),
        extras={"arms": (3, 5, 6, 8, 12)},
        title="{Material} chandelier, {color}, {arms} arms"),
    CategorySpec("pendant-lamp", "lighting", 4, 95, _FURN_COLORS, _LIGHT_MATERIALS,
                 ("matte", "raw", "aged", "polished", "gloss", "gilded", "natural", "woven"),
                 (), title="{Color} {material} pendant lamp, {finish}"),
    CategorySpec("floor-lamp", "lighting", 3, 140, _FURN_COLORS, _LIGHT_MATERIALS,
                 ("matte", "raw", "aged", "polished", "gloss", "gilded", "natural"), (),
                 title="{Color} {material} floor lamp"),
    CategorySpec("sconce", "lighting", 3, 70, _FURN_COLORS, _LIGHT_MATERIALS,
                 ("matte", "raw", "aged", "polished", "gloss", "gilded", "natural"), (),
                 title="{Color} {material} wall sconce", quantity=(1, 2)),
    CategorySpec("table-lamp", "lighting", 3, 60, _FURN_COLORS, _LIGHT_MATERIALS,
                 ("matte", "raw", "aged", "polished", "gloss", "gilded", "natural"), (),
                 title="{Color} {material} table lamp"),
    # --- textiles: mostly tagged -----------------------------------------------------------
    CategorySpec("curtains", "textiles", 4, 55, COLORS, ("linen", "velvet", "cotton", "silk",
                                                         "jute", "wool"),
                 ("matte", "natural", "satin", "woven"), _TEXTILE_PATTERNS,
                 extras={"length_cm": (250, 270, 300)},
                 title="{Color} {material} curtains, {pattern}, {length_cm} cm"),
    CategorySpec("rug", "textiles", 4, 180, COLORS, ("wool", "jute", "cotton", "silk",
                                                     "leather", "linen"),
                 ("natural", "woven", "matte", "textured"), _TEXTILE_PATTERNS,
                 extras={"size": ("120x170", "160x230", "200x300")},
                 title="{Pattern} {material} rug {size}, {color}"),
    CategorySpec("cushion", "textiles", 3.5, 25, COLORS, _UPHOLSTERY,
                 ("matte", "natural", "satin", "woven"), _TEXTILE_PATTERNS,
                 title="{Color} {material} cushion, {pattern}", quantity=(1, 4)),
    # --- decor: mostly tagged --------------------------------------------------------------
    CategorySpec("mirror", "decor", 3, 120, _FURN_COLORS,
                 ("metal", "brass", "oak", "rattan", "painted wood", "walnut", "wrought iron",
                  "bamboo", "steel", "lacquered mdf", "mahogany"),
                 ("matte", "raw", "aged", "polished", "gilded", "distressed", "natural",
                  "carved"), (),
                 extras={"shape": ("round", "rectangular", "arched", "oval")},
                 title="{Shape} mirror with {color} {material} frame"),
    CategorySpec("vase", "decor", 3, 35, COLORS, ("ceramic", "glass", "clay", "concrete",
                                                  "brass", "crystal", "rattan"),
                 ("matte", "gloss", "raw", "polished", "natural", "distressed"), (),
                 title="{Color} {material} vase, {finish}"),
    CategorySpec("wall-art", "decor", 3, 65, COLORS, ("canvas", "paper"),
                 ("matte", "satin", "gloss"),
                 ("abstract", "floral", "geometric", "ethnic", "industrial", "botanical",
                  "fan", "toile", "plain", "ornament"),
                 extras={"size": ("30x40", "50x70", "70x100")},
                 title="{Pattern} wall art {size}, {color}, framed"),
    # --- tools and consumables: style-neutral, never tagged --------------------------------
    CategorySpec("paint-roller", "tools", 0.5, 9, ("white", "grey", "blue"),
                 ("microfibre", "foam", "polyamide", "wool"), (), (),
                 extras={"width_cm": (10, 18, 25)},
                 title="Paint roller {width_cm} cm, {material}"),
    CategorySpec("paint-brush", "tools", 0.5, 6, ("natural", "black"),
                 ("synthetic", "natural bristle"), (), (),
                 extras={"width_mm": (25, 38, 50, 75)},
                 title="Paint brush {width_mm} mm, {material}", quantity=(1, 3)),
    CategorySpec("masking-tape", "tools", 0.4, 4, ("beige", "blue", "yellow"), ("paper",),
                 (), (), extras={"width_mm": (19, 25, 38, 48)},
                 title="Masking tape {width_mm} mm x 50 m, {color}", quantity=(1, 3)),
    CategorySpec("protective-gloves", "tools", 0.4, 5, ("blue", "black", "grey"),
                 ("nitrile", "latex", "cotton"), (), (), extras={"size": ("M", "L", "XL")},
                 title="Protective gloves, {material}, size {size}"),
    CategorySpec("drop-cloth", "tools", 0.4, 8, ("transparent", "white"),
                 ("polyethylene", "canvas"), (), (), extras={"size": ("4x5 m", "3x6 m")},
                 title="Drop cloth {size}, {material}"),
    CategorySpec("construction-waste-bags", "tools", 0.4, 7, ("black", "grey"),
                 ("polypropylene", "polyethylene"), (), (),
                 extras={"volume_l": (60, 120, 240), "pieces": (5, 10, 20)},
                 title="Construction waste bags {volume_l} l, {pieces} pcs"),
    CategorySpec("tile-adhesive", "tools", 0.4, 14, ("grey", "white"), ("cement",), (), (),
                 extras={"bag_kg": (5, 25), "class": ("C1T", "C2TE", "C2TE S1")},
                 title="Tile adhesive {bag_kg} kg, {class}", quantity=(1, 4)),
    CategorySpec("grout", "tools", 0.5, 8, ("grey", "white", "anthracite", "beige", "black"),
                 ("cement", "epoxy"), (), (), extras={"bag_kg": (2, 5)},
                 title="Grout {bag_kg} kg, {color}, {material}"),
    CategorySpec("tile-spacers", "tools", 0.3, 4, ("red", "blue"), ("plastic",), (), (),
                 extras={"mm": (2, 3, 5), "pieces": (100, 200)},
                 title="Tile spacers {mm} mm, {pieces} pcs"),
    CategorySpec("wallpaper-paste", "tools", 0.3, 9, ("white",), ("methylcellulose",), (), (),
                 extras={"for": ("non-woven", "vinyl", "paper", "all types")},
                 title="Wallpaper paste for {for} wallpaper, 250 g"),
    CategorySpec("underlay", "tools", 0.4, 3, ("green", "grey", "blue"),
                 ("foam", "cork", "fibreboard"), (), (), extras={"mm": (2, 3, 5)},
                 title="Flooring underlay {mm} mm, {material}", quantity=(5, 40)),
    CategorySpec("primer", "tools", 0.5, 18, ("white", "transparent"),
                 ("acrylic", "deep penetrating"), (), (), extras={"volume_l": (1, 5, 10)},
                 title="Wall primer {volume_l} l, {material}"),
    CategorySpec("light-bulb", "tools", 0.5, 6, ("warm white", "neutral white"), ("led",),
                 (), (), extras={"socket": ("E27", "E14", "GU10"), "watt": (4, 7, 9, 12)},
                 title="LED bulb {socket} {watt} W, {color}", quantity=(1, 6)),
    CategorySpec("picture-hooks", "tools", 0.3, 5, ("silver", "brass"), ("steel",), (), (),
                 extras={"pieces": (10, 20, 50)}, title="Picture hooks, {pieces} pcs"),
)

CATEGORY_BY_SLUG: dict[str, CategorySpec] = {c.slug: c for c in CATEGORIES}

# Accessories a main category needs, and the probability that a shopper forgets each one.
ACCESSORIES: dict[str, tuple[str, ...]] = {
    "wall-paint": ("paint-roller", "paint-brush", "masking-tape", "protective-gloves",
                   "drop-cloth", "construction-waste-bags", "primer"),
    "wallpaper": ("wallpaper-paste", "primer", "construction-waste-bags"),
    "porcelain-tile": ("tile-adhesive", "grout", "tile-spacers", "protective-gloves",
                       "construction-waste-bags"),
    "ceramic-tile": ("tile-adhesive", "grout", "tile-spacers", "protective-gloves",
                     "construction-waste-bags"),
    "brick-tile": ("tile-adhesive", "grout", "protective-gloves", "construction-waste-bags"),
    "laminate-flooring": ("underlay", "skirting-boards", "construction-waste-bags"),
    "chandelier": ("light-bulb",), "pendant-lamp": ("light-bulb",),
    "floor-lamp": ("light-bulb",), "sconce": ("light-bulb",), "table-lamp": ("light-bulb",),
    "wall-art": ("picture-hooks",), "mirror": ("picture-hooks",),
}

FORGET_PROBABILITY: dict[str, float] = {
    "protective-gloves": 0.45, "masking-tape": 0.40, "construction-waste-bags": 0.40,
    "paint-roller": 0.30, "paint-brush": 0.25, "drop-cloth": 0.35, "primer": 0.30,
    "tile-adhesive": 0.20, "grout": 0.25, "tile-spacers": 0.35, "wallpaper-paste": 0.20,
    "underlay": 0.25, "skirting-boards": 0.30, "light-bulb": 0.35, "picture-hooks": 0.30,
}
"""P(a needed accessory is not in the project's order); all within [0.20, 0.45]."""

FORGET_RANGE = (0.20, 0.45)

RETURN_PROBABILITY = {"registered": 0.65, "guest": 0.30}
"""P(a forgotten accessory is bought in a later order within ``RETURN_WITHIN_DAYS``)."""

RETURN_WITHIN_DAYS = 14


@dataclass(frozen=True)
class ProjectSpec:
    """A renovation or furnishing job: the main categories its order may hold.

    ``items`` maps category -> (probability the order holds it, min SKUs, max SKUs).
    """

    slug: str
    popularity: float
    items: dict[str, tuple[float, int, int]]


PROJECTS: tuple[ProjectSpec, ...] = (
    ProjectSpec("paint-room", 0.16, {"wall-paint": (1.0, 1, 3)}),
    ProjectSpec("tile-bathroom", 0.11, {"ceramic-tile": (0.8, 1, 2), "porcelain-tile": (0.6, 1, 2),
                                        "mirror": (0.3, 1, 1), "sconce": (0.2, 1, 2)}),
    ProjectSpec("hang-wallpaper", 0.10, {"wallpaper": (1.0, 1, 2), "wall-paint": (0.25, 1, 1)}),
    ProjectSpec("lay-flooring", 0.08, {"laminate-flooring": (1.0, 1, 1),
                                       "porcelain-tile": (0.15, 1, 1), "rug": (0.2, 1, 1)}),
    ProjectSpec("renovate-room", 0.10, {"porcelain-tile": (0.7, 1, 1), "wallpaper": (0.75, 1, 2),
                                        "wall-paint": (0.35, 1, 2), "brick-tile": (0.2, 1, 1),
                                        "laminate-flooring": (0.2, 1, 1)}),
    ProjectSpec("furnish-living-room", 0.12, {
        "sofa": (0.55, 1, 1), "coffee-table": (0.6, 1, 1), "armchair": (0.35, 1, 2),
        "tv-stand": (0.3, 1, 1), "shelving": (0.3, 1, 1), "rug": (0.4, 1, 1),
        "floor-lamp": (0.3, 1, 1), "curtains": (0.3, 1, 1), "cushion": (0.4, 1, 3),
        "chandelier": (0.2, 1, 1), "pendant-lamp": (0.15, 1, 1)}),
    ProjectSpec("furnish-dining-room", 0.07, {
        "dining-table": (0.8, 1, 1), "chair": (0.9, 1, 1), "pendant-lamp": (0.4, 1, 1),
        "chandelier": (0.3, 1, 1), "sideboard": (0.25, 1, 1), "rug": (0.15, 1, 1),
        "vase": (0.2, 1, 1)}),
    ProjectSpec("furnish-bedroom", 0.08, {
        "bed": (0.7, 1, 1), "wardrobe": (0.4, 1, 1), "curtains": (0.4, 1, 1), "rug": (0.3, 1, 1),
        "sconce": (0.3, 1, 1), "table-lamp": (0.3, 1, 1), "mirror": (0.3, 1, 1),
        "cushion": (0.3, 1, 2)}),
    ProjectSpec("lighting-refresh", 0.08, {
        "chandelier": (0.4, 1, 1), "pendant-lamp": (0.5, 1, 2), "floor-lamp": (0.3, 1, 1),
        "sconce": (0.4, 1, 2), "table-lamp": (0.3, 1, 1)}),
    ProjectSpec("decorate", 0.10, {
        "mirror": (0.3, 1, 1), "vase": (0.4, 1, 2), "wall-art": (0.5, 1, 2),
        "cushion": (0.4, 1, 3), "rug": (0.3, 1, 1), "curtains": (0.3, 1, 1)}),
)
