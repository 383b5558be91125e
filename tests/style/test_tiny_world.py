"""Unit tests of the item style model and the basket reader on the tiny world (known answer)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys.data.catalog import validate_catalog
from recsys.data.errors import DataContractError
from recsys.style import BasketStyleInferer, ItemStyleModel

from .conftest import STYLES, TinyWorld, build_tiny_world, tiny_taxonomy


@pytest.fixture(scope="module")
def fitted(tiny_world: TinyWorld) -> tuple[ItemStyleModel, BasketStyleInferer]:
    model = ItemStyleModel(seed=1).fit(tiny_world.catalog, tiny_world.orders)
    return model, BasketStyleInferer.from_model(model, tiny_world.catalog)


def rows(world: TinyWorld, *skus: str) -> np.ndarray:
    return np.array([world.catalog.ids.row(s) for s in skus])


def test_untagged_items_get_their_true_style_and_gloves_are_neutral(tiny_world, fitted):
    model, _ = fitted
    styled = tiny_world.item_style >= 0
    predicted = model.item_styles_.argmax(axis=1)
    assert (predicted[styled] == tiny_world.item_style[styled]).all()
    gloves = ~styled
    assert model.neutral_[gloves].all() and not model.neutral_[styled].any()
    assert (model.item_styles_[gloves] == 0).all() and (model.informativeness_[gloves] == 0).all()


def test_outputs_are_distributions_and_tags_are_kept(tiny_world, fitted):
    model, _ = fitted
    sums = model.item_styles_.sum(axis=1)
    assert np.allclose(sums[~model.neutral_], 1.0, atol=1e-5)
    assert ((model.informativeness_ >= 0) & (model.informativeness_ <= 1)).all()
    assert model.item_styles_.dtype == np.float32 and model.informativeness_.dtype == np.float32
    labels = tiny_world.catalog.style_labels()
    tagged = labels.sum(axis=1) > 0
    assert (model.item_styles_[tagged].argmax(axis=1) == labels[tagged].argmax(axis=1)).all()


def test_without_behaviour_an_item_with_unseen_content_gets_the_prior_not_a_guess(tiny_world):
    # tiles are never tagged, so no tile feature is in the content vocabulary: a calibrated
    # model can only answer the market prior, i.e. "no style"
    model = ItemStyleModel().fit(tiny_world.catalog, None)
    tiles = tiny_world.catalog.frame["category"].to_numpy() == "tile"
    assert model.neutral_[tiles].all()
    assert model.summary_["behaviour"] is False


def test_held_out_tag_predictions_are_not_overconfident(tiny_world, fitted):
    # calibration sanity: on the tagged items, mean confidence of held-out predictions is
    # close to their accuracy (this world is easy, so both must be high)
    model, _ = fitted
    labels = tiny_world.catalog.style_labels()
    tagged = labels.sum(axis=1) > 0
    held = model.heldout_styles_[tagged]
    accuracy = (held.argmax(axis=1) == labels[tagged].argmax(axis=1)).mean()
    confidence = held.max(axis=1).mean()
    assert accuracy == 1.0
    assert abs(confidence - accuracy) < 0.15


def test_basket_of_one_style_reads_that_style_with_evidence(tiny_world, fitted):
    _, inferer = fitted
    reading = inferer.infer(rows(tiny_world, "loft-tile-0", "loft-sofa-1", "gloves-0"))
    assert reading.top == "loft" and reading.second is None
    assert reading.confidence > 0.9
    assert {e.sku for e in reading.evidence} == {"loft-tile-0", "loft-sofa-1"}
    assert "suggest loft" in reading.explanation
    assert sum(e.weight for e in reading.evidence if e.style == "loft") == pytest.approx(
        1.0, abs=1e-3
    )


def test_no_signal_basket_has_no_top_style(tiny_world, fitted):
    _, inferer = fitted
    for basket in (rows(tiny_world, "gloves-0", "gloves-1"), np.array([], dtype=np.int64)):
        reading = inferer.infer(basket)
        assert reading.top is None and reading.second is None and reading.evidence == ()
        assert "no clear style" in reading.explanation
        assert (inferer.infer_vector(basket) == 0).all()


def test_mixed_basket_yields_two_styles(tiny_world, fitted):
    _, inferer = fitted
    reading = inferer.infer(
        rows(tiny_world, "loft-sofa-0", "loft-lamp-1", "boho-sofa-2", "boho-lamp-0")
    )
    assert {reading.top, reading.second} == {"loft", "boho"}
    assert reading.distribution["scandinavian"] < 0.05
    assert "loft" in reading.explanation and "boho" in reading.explanation


def test_quantities_count_but_logarithmically(tiny_world, fitted):
    _, inferer = fitted
    basket = rows(tiny_world, "loft-sofa-0", "boho-sofa-2")
    even = inferer.infer_vector(basket, np.array([1, 1]))
    more_loft = inferer.infer_vector(basket, np.array([3, 1]))
    assert more_loft[STYLES.index("loft")] > even[STYLES.index("loft")]
    with pytest.raises(ValueError, match="quantities"):
        inferer.infer_vector(basket, np.array([0, 1]))
    with pytest.raises(IndexError, match="basket rows"):
        inferer.infer_vector(np.array([len(tiny_world.catalog)]))


def test_infer_vector_matches_infer(tiny_world, fitted):
    _, inferer = fitted
    basket = rows(tiny_world, "scandinavian-tile-1", "scandinavian-lamp-3")
    vec = inferer.infer_vector(basket, np.array([2, 1]))
    reading = inferer.infer(basket, np.array([2, 1]))
    assert np.allclose(vec, [reading.distribution[s] for s in STYLES])


def test_save_load_gives_identical_output(tiny_world, fitted, tmp_path):
    model, inferer = fitted
    model.save(tmp_path / "style")
    loaded = ItemStyleModel.load(tmp_path / "style")
    for attr in ("item_styles_", "informativeness_", "neutral_", "heldout_styles_", "prior_"):
        assert np.array_equal(getattr(model, attr), getattr(loaded, attr)), attr
    assert loaded.taxonomy_ == model.taxonomy_
    again = BasketStyleInferer.from_model(loaded, tiny_world.catalog)
    basket = rows(tiny_world, "loft-tile-0", "boho-lamp-2", "gloves-1")
    assert again.infer(basket) == inferer.infer(basket)
    assert not list((tmp_path / "style").glob("*.pkl"))


def test_load_rejects_unknown_schema(tiny_world, fitted, tmp_path):
    model, _ = fitted
    model.save(tmp_path)
    meta = (
        (tmp_path / "style_model.json")
        .read_text()
        .replace('"schema_version": 1', '"schema_version": 99')
    )
    (tmp_path / "style_model.json").write_text(meta)
    with pytest.raises(ValueError, match="schema version 99"):
        ItemStyleModel.load(tmp_path)


def test_unknown_style_is_rejected(tiny_world):
    with pytest.raises(ValueError, match="unknown style 'gothic'"):
        ItemStyleModel(keyword_seeds={"gothic": ["skull"]}).fit(
            tiny_world.catalog, tiny_world.orders
        )
    frame = tiny_world.catalog.to_frame()
    frame.loc[0, "styles"] = ["gothic"]
    with pytest.raises(DataContractError, match="unknown style 'gothic'"):
        validate_catalog(frame, "<bad>", tiny_taxonomy())
    model = ItemStyleModel().fit(tiny_world.catalog, tiny_world.orders)
    with pytest.raises(ValueError, match="columns but the taxonomy"):
        BasketStyleInferer(
            model.item_styles_[:, :2],
            model.informativeness_,
            ["t"] * 35,
            ["s"] * 35,
            tiny_taxonomy(),
        )


def test_orders_for_another_catalog_are_rejected(tiny_world):
    with pytest.raises(ValueError, match="item columns but the catalog has"):
        ItemStyleModel().fit(tiny_world.catalog, tiny_world.orders[:, :10])


def test_catalog_without_tags_learns_nothing_and_says_so(tiny_world, caplog):
    frame = tiny_world.catalog.to_frame()
    frame["styles"] = [[] for _ in range(len(frame))]
    frame["category"] = None
    bare = validate_catalog(frame, "<bare>", tiny_taxonomy())
    model = ItemStyleModel().fit(bare, tiny_world.orders)
    assert not model.learned_ and model.neutral_.all()
    assert "learned nothing" in model.summary_["message"] and "learned nothing" in caplog.text
    inferer = BasketStyleInferer.from_model(model, bare)
    assert inferer.infer(np.arange(5)).top is None


def test_keyword_seeding_is_an_explicit_option(tiny_world):
    frame = tiny_world.catalog.to_frame()
    frame["styles"] = [[] for _ in range(len(frame))]
    bare = validate_catalog(frame, "<bare>", tiny_taxonomy())
    seeds = {"loft": ["industrial"], "scandinavian": ["nordic"], "boho": ["woven"]}
    model = ItemStyleModel(keyword_seeds=seeds).fit(bare, tiny_world.orders)
    assert model.summary_["n_keyword_seeded"] == 24
    tiles = np.flatnonzero(bare.frame["category"].to_numpy() == "tile")
    assert (model.item_styles_[tiles].argmax(axis=1) == tiny_world.item_style[tiles]).all()


def test_tag_disagreements_find_a_wrong_tag(tiny_world):
    frame = tiny_world.catalog.to_frame()
    wrong = frame.index[frame["sku"] == "loft-sofa-2"][0]
    frame.loc[wrong, "styles"] = ["boho"]
    catalog = validate_catalog(frame, "<mistagged>", tiny_taxonomy())
    model = ItemStyleModel().fit(catalog, build_tiny_world().orders)
    report = model.tag_disagreements(catalog)
    assert list(report.columns) == ["sku", "title", "tagged", "predicted", "confidence"]
    assert report.iloc[0]["sku"] == "loft-sofa-2"
    assert report.iloc[0]["tagged"] == "boho" and report.iloc[0]["predicted"] == "loft"
    assert len(report) == 1
    other = validate_catalog(
        pd.concat([frame, frame.iloc[[0]].assign(sku="x")]), "<other>", tiny_taxonomy()
    )
    with pytest.raises(ValueError, match="not the one the style model was fitted on"):
        model.tag_disagreements(other)


def test_basket_evidence_weights_are_calibrated_on_late_training_orders(tiny_world, fitted):
    model, _ = fitted
    assert model.basket_weights_.shape == (2,) and (model.basket_weights_ > 0).all()
    # in the tiny world every basket item shares the basket's style
    assert model.basket_item_agreement_ > 0.8
    plain = ItemStyleModel(calibration_share=0.0).fit(tiny_world.catalog, tiny_world.orders)
    assert np.array_equal(plain.basket_weights_, np.ones(2))


def test_content_evidence_is_scaled_by_how_much_of_the_product_the_tagger_knows(tiny_world, fitted):
    model, _ = fitted
    coverage = model.content_coverage_
    cats = tiny_world.catalog.frame["category"].to_numpy()
    assert ((coverage >= 0) & (coverage <= 1)).all()
    # sofas are fully known; gloves (never tagged, only words and values never seen) are not
    assert coverage[cats == "sofa"].min() == 1.0
    assert coverage[cats == "gloves"].max() == 0.0


def test_build_orders_keeps_purchases_of_the_window_in_time_order(tiny_world):
    from recsys.data.interactions import validate_interactions
    from recsys.data.orders import build_orders

    skus = tiny_world.catalog.skus
    raw = pd.DataFrame(
        {
            "order_id": ["b", "b", "a", "a", "c", "v"],
            "user_id": "u",
            "sku": [skus[0], skus[1], skus[2], skus[2], skus[3], skus[4]],
            "quantity": [1, 2, 1, 3, 1, 1],
            "ts": [
                "2024-01-01",
                "2024-01-01",
                "2024-01-02",
                "2024-01-02",
                "2024-02-01",
                "2024-01-01",
            ],
            "event": ["purchase"] * 5 + ["view"],
        }
    )
    interactions = validate_interactions(raw, "<t>", tiny_world.catalog)
    table = build_orders(
        interactions, tiny_world.catalog, before=pd.Timestamp("2024-01-15", tz="UTC")
    )
    matrix, ids = table.matrix, table.order_ids
    assert list(ids) == ["b", "a"]  # time order, view-only and late orders left out
    assert matrix.shape == (2, len(tiny_world.catalog))
    assert matrix[0, 1] == 2 and matrix[1, 2] == 4  # repeated lines summed
