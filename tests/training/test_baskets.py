from __future__ import annotations

import pytest

from training.baskets import BasketFormatError, parse_basket


def test_full_record_becomes_a_request() -> None:
    basket_id, req = parse_basket(
        {"basket_id": "b1", "skus": ["a", "b"], "user_id": "u1", "page": "checkout", "k": 5}, 10
    )
    assert basket_id == "b1"
    assert [line.sku for line in req.basket] == ["a", "b"]
    assert (req.user_id, req.page, req.k) == ("u1", "checkout", 5)


def test_optional_fields_take_defaults() -> None:
    _, req = parse_basket({"basket_id": "b2", "skus": [], "user_id": None}, 7)
    assert (req.user_id, req.page, req.k, req.basket) == (None, "cart", 7, ())


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ([1, 2], "expected a JSON object"),
        ({"skus": ["a"]}, "'basket_id' must be a non-empty string"),
        ({"basket_id": "b", "skus": "a"}, "'skus' must be a list of SKU strings"),
        ({"basket_id": "b", "skus": [1]}, "'skus' must be a list of SKU strings"),
        ({"basket_id": "b", "skus": [], "page": "home"}, "'page' must be one of"),
        ({"basket_id": "b", "skus": [], "k": 0}, "'k' must be a whole number"),
        ({"basket_id": "b", "skus": [], "k": "10"}, "'k' must be a whole number"),
        ({"basket_id": "b", "skus": [], "user_id": 5}, "'user_id' must be a string or null"),
        ({"basket_id": "b", "skus": [], "colour": "red"}, "unknown field(s) colour"),
    ],
)
def test_bad_records_name_the_field(record: object, message: str) -> None:
    with pytest.raises(BasketFormatError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_basket(record, 10)
