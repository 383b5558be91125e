"""Style intelligence: a style distribution for every product and the style of a basket.

``ItemStyleModel`` learns item style vectors from tags, content and co-purchase behaviour;
``BasketStyleInferer`` reads a basket's style from them with evidence and an explanation.
"""

from recsys.style.basket import BasketStyleInferer
from recsys.style.item_model import ItemStyleModel

__all__ = ["BasketStyleInferer", "ItemStyleModel"]
