"""The shipped galaxy models through `predict_galaxies`: the decision rule and accuracy floors.

The floors sit below what the models measure (bundled bars 20/24 = 0.83,
morphology 12/12; test splits: bars 0.859, morphology 0.943), so they catch
a broken pipeline (swapped classes, an inverted threshold, wrong input
scaling), not a retrained model that is a little worse.
"""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from deepscope.core.batch.options import BatchOptions
from deepscope.errors import BatchError, InputError
from deepscope.galaxy.orientation import apply_views, dihedral_view
from deepscope.galaxy.predictor import GalaxyPredictor, predict_galaxies
from deepscope.registry import resolve_model
from deepscope.samples import sample_dir

# model, bundled sample folder, target, probability column, positive class
SHIPPED = [
    ("galaxy_bars", "bars", "barred", "p_bar", 1),
    ("galaxy_morphology", "morphology", "morphology", "p_spiral", "spiral"),
]
# What galaxy predict writes with the shipped bar model, after the file column.
PREDICTION_COLUMNS = ["p_bar", "barred", "threshold", "scale_flag", "bar_length_arcsec", "bar_pa_deg"]


def _predict(model, labels, tmp_path):
    """Rows of `predict_galaxies` for the files of a labels table, with the true label as `<target>_true`."""
    catalog = tmp_path / "catalog.csv"
    pd.DataFrame({"file": [str(p) for p in labels["path"]]}).to_csv(catalog, index=False)
    out = tmp_path / "pred.csv"
    assert predict_galaxies([], out, model=model, options=BatchOptions(catalog=catalog, progress=False)) == len(labels)
    pred = pd.read_csv(out)
    truth = labels.assign(name=[Path(p).name for p in labels["path"]]).drop(columns=["file", "path"])
    return pred.assign(name=[Path(f).name for f in pred["file"]]).merge(truth, on="name", suffixes=("", "_true"))


def _bundled(kind):
    folder = sample_dir("galaxy", kind)
    labels = pd.read_csv(folder / "labels.csv")
    return labels.assign(path=[folder / f for f in labels["file"]])


@pytest.mark.parametrize(("model", "kind", "target", "p_column", "positive"), SHIPPED)
def test_decision_is_probability_at_least_threshold(model, kind, target, p_column, positive, tmp_path):
    pred = _predict(model, _bundled(kind), tmp_path)
    assert list(pred.columns[:4]) == ["file", p_column, target, "threshold"]
    # The threshold written is the one stored with the shipped weights.
    stored = torch.load(resolve_model(model, "galaxy"), weights_only=True)["meta"]["threshold"]
    assert (pred["threshold"] == round(stored, 6)).all()
    expected = (pred[p_column] >= pred["threshold"]).map({True: str(positive), False: None})
    said_positive = pred[target].astype(str) == str(positive)
    assert (said_positive == expected.notna()).all()
    # Both decisions occur, so the row-by-row check above is not vacuous.
    assert 0 < said_positive.sum() < len(pred)


@pytest.mark.parametrize(("model", "kind", "target", "floor"),
                         [("galaxy_bars", "bars", "barred", 0.75), ("galaxy_morphology", "morphology", "morphology", 0.9)])
def test_accuracy_floor_on_bundled_samples(model, kind, target, floor, tmp_path):
    pred = _predict(model, _bundled(kind), tmp_path)
    accuracy = (pred[target].astype(str) == pred[f"{target}_true"].astype(str)).mean()
    assert accuracy >= floor


@pytest.mark.parametrize(("model", "folder", "target", "floor"),
                         [("galaxy_bars", "sdss_gz2_bars", "barred", 0.82),
                          ("galaxy_morphology", "sdss_gz_ellip_spiral", "morphology", 0.9)])
def test_accuracy_floor_on_the_test_split(model, folder, target, floor, shared_data, tmp_path):
    labels_path = shared_data / "galaxy" / folder / "labels.csv"
    labels = pd.read_csv(labels_path)
    labels = labels[labels["split"] == "test"]
    labels = labels.assign(path=[labels_path.parent / f for f in labels["file"]])
    pred = _predict(model, labels, tmp_path)
    assert len(pred) == len(labels)
    accuracy = (pred[target].astype(str) == pred[f"{target}_true"].astype(str)).mean()
    assert accuracy >= floor


def test_predictor_rows_match_its_probabilities():
    predictor = GalaxyPredictor.from_checkpoint()
    items = [predictor.load_input(p) for p in _bundled("bars")["path"][:4]]
    probs = predictor.probabilities(np.stack(items))
    rows = predictor.rows(items)
    assert [row["p_bar"] for row in rows] == [round(float(p), 6) for p in probs[:, 1]]
    assert all(list(row) == predictor.output_columns == PREDICTION_COLUMNS for row in rows)


def test_catalogue_columns_follow_the_predictions(tmp_path):
    bundled = _bundled("bars").head(3)
    files = [str(p) for p in bundled["path"]]
    # A path listed twice, a missing file, a 64-bit objid and a column named like a prediction.
    catalog = tmp_path / "catalog.csv"
    objids = [587722981747982465 + i for i in range(5)]
    pd.DataFrame({"file": [files[0], files[1], str(tmp_path / "absent.jpeg"), files[2], files[0]],
                  "objid": objids, "barred": [9, 8, 7, 6, 5], "note": list("abcde")}).to_csv(catalog, index=False)
    out = tmp_path / "pred.csv"
    with pytest.raises(BatchError, match="absent.jpeg"):
        predict_galaxies([], out, options=BatchOptions(catalog=catalog, progress=False))
    pred = pd.read_csv(out)
    assert list(pred.columns) == ["file", *PREDICTION_COLUMNS, "catalog_file", "objid", "catalog_barred", "note"]
    assert pred["objid"].tolist() == [objids[i] for i in (0, 1, 3, 4)]
    assert pred["note"].tolist() == list("abde")
    assert (pred["catalog_file"] == pred["file"]).all()
    assert set(pred["barred"]) <= {0, 1}


def test_keep_columns_off_asked_for_in_parts_or_refused(tmp_path):
    catalog = tmp_path / "catalog.csv"
    pd.DataFrame({"file": [str(_bundled("bars")["path"].iloc[0])], "objid": [1]}).to_csv(catalog, index=False)
    options = BatchOptions(catalog=catalog, progress=False)
    predict_galaxies([], tmp_path / "pred.csv", options=options, keep_columns=False)
    assert list(pd.read_csv(tmp_path / "pred.csv").columns) == ["file", *PREDICTION_COLUMNS]
    # A directory of parts gets the prediction columns only, unless asked: the parts carry them then.
    predict_galaxies([], tmp_path / "plain", options=options)
    predict_galaxies([], tmp_path / "kept", options=options, keep_columns=True)
    assert list(pd.read_parquet(tmp_path / "plain").columns) == ["file", *PREDICTION_COLUMNS]
    assert pd.read_parquet(tmp_path / "kept")["objid"].tolist() == [1]
    with pytest.raises(InputError, match="--keep-columns needs --catalog"):
        predict_galaxies([_bundled("bars")["path"].iloc[0]], tmp_path / "none.csv",
                         options=BatchOptions(progress=False), keep_columns=True)
    assert not (tmp_path / "none.csv").exists()


def test_reader_processes_give_the_rows_threads_give(bars_dir, tmp_path):
    """A partition of >= 256 cutouts is decoded in reader processes (uint8 pixels); the rows are the same."""
    sources = sorted((bars_dir / "images").glob("*.jpeg"))[:300]
    folder = tmp_path / "cutouts"
    folder.mkdir()
    for source in sources:
        (folder / source.name).symlink_to(source)
    (folder / "broken.jpeg").write_bytes(b"\xff\xd8\xff not a jpeg")
    tables = []
    for read_threads in (1, 2):  # 1: threads in this process; 2: two reader processes
        out = tmp_path / f"pred{read_threads}.csv"
        options = BatchOptions(read_threads=read_threads, progress=False)
        with pytest.raises(BatchError, match="broken.jpeg"):
            predict_galaxies([folder], out, options=options)
        tables.append(pd.read_csv(out))
    assert len(tables[0]) == len(sources)
    pd.testing.assert_frame_equal(tables[0], tables[1])


def test_load_many_pixels_give_load_input_probabilities(bars_dir):
    predictor = GalaxyPredictor.from_checkpoint("galaxy_bars")
    paths = sorted((bars_dir / "images").glob("*.jpeg"))[:16]
    pixels = predictor.load_many(paths)
    assert pixels[0].dtype == np.uint8
    # The float input as the shipped models were trained on it, computed here without deepscope.
    floats = np.stack([np.asarray(Image.open(p).convert("RGB"), np.float32).transpose(2, 0, 1) / 255 for p in paths])
    np.testing.assert_array_equal(np.stack([predictor.load_input(p) for p in paths]), floats)
    np.testing.assert_array_equal(predictor.probabilities(np.stack(pixels)), predictor.probabilities(floats))


def test_augment_averages_the_rotated_canonical_views(bars_dir, tmp_path):
    """--augment 4 gives each cutout the mean p_bar of the four rotations of its canonical view, for every
    rotation of the file alike."""
    sources = sorted((bars_dir / "images").glob("*.jpeg"))[:6]
    rotated = tmp_path / "rotated"
    rotated.mkdir()
    for source in sources:
        image = Image.open(source)
        for turns in range(4):  # lossless copies, so the rotations are exact
            image.rotate(90 * turns).save(rotated / f"{source.stem}_r{turns}.png")
    options = BatchOptions(progress=False)
    predict_galaxies([rotated], tmp_path / "views.csv", options=options, augment=4)
    views = pd.read_csv(tmp_path / "views.csv")
    galaxy = views["file"].str.extract(r"(J[^_/]+)_r\d\.png$")[0]
    assert (views.groupby(galaxy)["p_bar"].nunique() == 1).all()
    # Each rotation of the canonical view (at the canonical scale, for a model with one) predicted alone,
    # by the same network shown the pixels as given.
    predictor = GalaxyPredictor.from_checkpoint("galaxy_bars")
    pixels = np.stack(predictor.load_many(sources))
    canonical = predictor.rescaled(apply_views(pixels, predictor.views_of(pixels)))
    predictor.canonical, predictor.canonical_scale = False, None
    singles = [predictor.probabilities(np.ascontiguousarray(dihedral_view(canonical, v)))[:, 1] for v in range(4)]
    expected = pd.Series(np.mean(singles, axis=0), index=[s.stem for s in sources])
    np.testing.assert_allclose(views["p_bar"], expected.loc[galaxy].to_numpy(), atol=2e-6)
    # The views matter: one view gives other probabilities.
    assert np.abs(singles[0] - expected.to_numpy()).max() > 1e-3


def test_augment_refuses_other_view_counts():
    predictor = GalaxyPredictor.from_checkpoint("galaxy_bars")
    with pytest.raises(InputError, match="--augment 3: choose from 1, 2, 4, 8 views"):
        predictor.augment = 3
