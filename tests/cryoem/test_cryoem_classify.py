"""2D classification: alignment, clustering, the junk score, and the classify command on real crops."""

import mrcfile
import numpy as np
import pandas as pd
import pytest
import torch

from deepscope.cli.main import main
from deepscope.cryoem.classify2d.align import ShiftedSpectra, align, circular_mask, transform
from deepscope.cryoem.classify2d.background import background_positions
from deepscope.cryoem.classify2d.clustering import classify_images
from deepscope.cryoem.io import read_coordinates, read_micrograph, write_coordinates, write_mrc
from deepscope.cryoem.classify2d.junk import MIN_SCORE, average_measures, junk_score
from deepscope.cryoem.classify2d.run import classify_pick_sets
from deepscope.cryoem.pick_sets import gather_pick_sets, parse_spec
from deepscope.errors import InputError

from cli_errors import one_error_line

EMPIAR_STEM = "Falcon_2012_06_12-14_33_35_0"
CROP = 1536  # px of the real micrograph kept: about 90 particles
SIZE = 32


def shape_image(kind, size=SIZE):
    """An asymmetric particle: a bar with a knob ("L") or two unequal blobs ("dumbbell")."""
    grid = np.arange(size) - size // 2
    y, x = np.meshgrid(grid, grid, indexing="ij")
    if kind == "L":
        image = ((abs(y) < 2) & (abs(x) < 7)).astype(float) + ((abs(x - 6) < 2) & (y > 0) & (y < 7))
    else:
        image = np.exp(-((x - 4) ** 2 + y**2) / 6.0) + 0.5 * np.exp(-((x + 5) ** 2 + y**2) / 3.0)
    return image.astype(np.float32)


def rotated_copies(image, count, rng, noise):
    """``count`` copies of ``image`` at random in-plane angles, with Gaussian noise."""
    angles = torch.as_tensor(rng.uniform(0, 2 * np.pi, count), dtype=torch.float32)
    copies = transform(torch.as_tensor(image)[None].expand(count, -1, -1), angles, torch.zeros(count, 2))
    return copies.numpy() + rng.normal(0, noise, copies.shape).astype(np.float32)


def correlation(a, b):
    a, b = a - a.mean(), b - b.mean()
    return float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum()))


def best_rotated_correlation(average, image):
    angles = torch.linspace(0, 2 * np.pi, 73)[:-1]
    turned = transform(torch.as_tensor(image)[None].expand(72, -1, -1), angles, torch.zeros(72, 2)).numpy()
    return max(correlation(average, t) for t in turned)


def test_alignment_undoes_a_rotation_and_a_shift():
    reference = torch.as_tensor(shape_image("L"))
    moved = transform(reference[None], torch.tensor([1.1]), torch.tensor([[1.0, -1.0]]))
    _, angle, shift, score = align(ShiftedSpectra(moved, 12, 2), reference[None])
    restored = transform(moved, angle, shift)[0].numpy()
    assert correlation(restored, reference.numpy()) > 0.9 > correlation(moved[0].numpy(), reference.numpy())
    assert score.item() > 0.9


def test_two_shapes_at_random_angles_get_two_classes_that_look_like_them():
    rng = np.random.default_rng(0)
    images = np.concatenate([rotated_copies(shape_image(kind), 40, rng, 0.5) for kind in ("L", "dumbbell")])
    result = classify_images(images, 2, particle_radius=10, iterations=4, progress=False)
    first, second = result.labels[:40], result.labels[40:]
    assert len(result.averages) == 2
    # each shape is (almost) one class, and the two are different classes
    assert max(np.bincount(first)) >= 36 and max(np.bincount(second)) >= 36
    assert np.bincount(first).argmax() != np.bincount(second).argmax()
    average_of_l = result.averages[np.bincount(first).argmax()]
    assert best_rotated_correlation(average_of_l, shape_image("L")) > 0.8


def test_same_seed_same_classes():
    rng = np.random.default_rng(1)
    images = rotated_copies(shape_image("L"), 30, rng, 1.0)
    runs = [classify_images(images, 3, 10, iterations=2, seed=5, progress=False) for _ in range(2)]
    assert np.array_equal(runs[0].labels, runs[1].labels) and np.allclose(runs[0].averages, runs[1].averages)


def test_an_off_centre_blob_scores_as_junk_and_a_centred_one_does_not():
    grid = np.arange(48) - 24
    y, x = np.meshgrid(grid, grid, indexing="ij")
    centred = -np.exp(-(x**2 + y**2) / 60.0) * np.asarray(circular_mask(48, 18))
    off = -np.exp(-((x - 9) ** 2 + y**2) / 60.0) * np.asarray(circular_mask(48, 18))
    flat_noise = np.random.default_rng(0).normal(0, 0.3, (48, 48)) * np.asarray(circular_mask(48, 18))
    scores = [junk_score(**average_measures(image, 16)) for image in (centred, off, flat_noise)]
    assert scores[0] > MIN_SCORE > max(scores[1:])


def test_pick_set_specs():
    assert parse_spec("crYOLO=peers/x,flip-y=4096") == ("crYOLO", parse_spec("peers/x")[1], 4096)
    with pytest.raises(InputError, match="expected"):
        parse_spec("peers/x,flip=4096")


def test_two_directories_with_one_name_must_be_named(tmp_path):
    for parent in ("a", "b"):
        (tmp_path / parent / "picks").mkdir(parents=True)
        write_coordinates(pd.DataFrame({"x": [1.0], "y": [1.0]}), tmp_path / parent / "picks" / "m.star")
    with pytest.raises(InputError, match="name them NAME=PATH"):
        gather_pick_sets([str(tmp_path / "a" / "picks"), str(tmp_path / "b" / "picks")])
    named = gather_pick_sets([f"A={tmp_path / 'a' / 'picks'}", f"B={tmp_path / 'b' / 'picks'}"])
    assert [s.name for s in named] == ["A", "B"]


@pytest.fixture(scope="module")
def crop(cryoem_dir, tmp_path_factory):
    """A corner of a real micrograph with its true particles, random coordinates, and peers upside down."""
    folder = tmp_path_factory.mktemp("classify_crop")
    data = cryoem_dir / "empiar10017"
    image = read_micrograph(data / "micrographs" / f"{EMPIAR_STEM}.jpg")[:CROP, :CROP]
    (folder / "mics").mkdir()
    write_mrc(image, folder / "mics" / f"{EMPIAR_STEM}.mrc")
    truth = read_coordinates(data / "particles" / f"{EMPIAR_STEM}.csv")
    truth = truth[(truth["x"] < CROP) & (truth["y"] < CROP)].reset_index(drop=True)
    rng = np.random.default_rng(0)
    random = pd.DataFrame({"x": rng.uniform(108, CROP - 108, len(truth)),
                           "y": rng.uniform(108, CROP - 108, len(truth))})
    for name, table in (("truth", truth), ("random", random), ("flipped", truth.assign(y=CROP - 1 - truth["y"]))):
        (folder / name).mkdir()
        write_coordinates(table, folder / name / f"{EMPIAR_STEM}.star")
    return folder, truth, random


def test_classify_truth_versus_random_on_a_real_crop(crop, tmp_path, capsys):
    folder, truth, random = crop
    out = tmp_path / "classes"
    assert main(["-q", "cryoem", "classify", str(folder / "truth"), str(folder / "random"),
                 f"upside_down={folder / 'flipped'},flip-y={CROP}", "--micrographs", str(folder / "mics"),
                 "--diameter", "108", "--truth", str(folder / "truth"), "--out", str(out)]) == 0
    assert {p.name for p in out.iterdir()} == {"class_averages.mrcs", "class_averages.png", "classes.csv",
                                               "particles.csv", "junk_by_picker.csv", "report.html"}
    particles = pd.read_csv(out / "particles.csv")
    assert list(particles.columns) == ["micrograph", "x", "y", "class", "junk", "picker", "match"]
    ours = particles[particles["picker"] == "truth"]
    assert np.array_equal(ours[["x", "y"]].to_numpy(), truth[["x", "y"]].to_numpy())  # exactly as read
    # the flipped copy is the truth again, in the micrograph's frame: same boxes, same classes
    flipped = particles[particles["picker"] == "upside_down"]
    assert np.allclose(flipped[["x", "y"]].to_numpy(), truth[["x", "y"]].to_numpy())
    assert np.array_equal(flipped["class"].to_numpy(), ours["class"].to_numpy())
    classes = pd.read_csv(out / "classes.csv")
    assert list(classes.columns) == ["class", "n", "junk", "score"]
    assert classes["n"].is_monotonic_decreasing and classes["n"].sum() == len(particles)
    assert np.array_equal(classes["junk"], (classes["score"] < MIN_SCORE).astype(int))
    with mrcfile.open(out / "class_averages.mrcs") as mrc:
        assert mrc.data.shape[0] == len(classes)
    table = pd.read_csv(out / "junk_by_picker.csv").set_index("picker")
    assert table.loc["truth", "false_pick_fraction"] == 0.0
    assert table.loc["random", "false_pick_fraction"] > 0.5
    assert table.loc["truth", "junk_fraction"] <= 0.15 and table.loc["random", "junk_fraction"] >= 0.6
    report = (out / "report.html").read_text()
    assert "False-pick accounting" in report and "class_averages.png" in report
    assert "random" in capsys.readouterr().out


@pytest.mark.parametrize("quantile", [0.85, 0.0])
def test_background_picks_in_a_particle_class_are_junk(crop, tmp_path, quantile):
    # one class holds every pick, so the class rule cannot throw out the planted ones: the background test must
    folder, truth, _ = crop
    planted = background_positions(truth[["x", "y"]].to_numpy(dtype=float), (CROP, CROP), 108, 162,
                                   len(truth) // 5, np.random.default_rng(0))
    picks = pd.concat([truth[["x", "y"]], pd.DataFrame(planted, columns=["x", "y"])], ignore_index=True)
    (tmp_path / "picks").mkdir()
    write_coordinates(picks, tmp_path / "picks" / f"{EMPIAR_STEM}.star")
    result = classify_pick_sets(gather_pick_sets([str(tmp_path / "picks")]), folder / "mics", 108, n_classes=1,
                                background_quantile=quantile, progress=False)
    junk = result.particles["junk"].to_numpy(dtype=bool)
    assert len(planted) >= 15 and result.classes["junk"].sum() == 0
    if quantile:
        assert junk[len(truth):].mean() >= 0.7 and junk[:len(truth)].mean() <= 0.1
        match = result.particles["match"].to_numpy()
        assert np.median(match[:len(truth)]) > np.median(match[len(truth):]) + 0.1
    else:
        assert not junk.any() and result.particles["match"].isna().all()


def test_background_quantile_out_of_range_is_one_line(crop, tmp_path, capsys):
    folder, _, _ = crop
    assert _classify(folder, folder / "truth", tmp_path / "out", "--background-quantile", "1") == 1
    assert "--background-quantile must be at least 0 and below 1, got 1" in one_error_line(capsys)
    assert not (tmp_path / "out").exists()


def _classify(folder, coords, out, *extra):
    return main(["cryoem", "classify", str(coords), "--micrographs", str(folder / "mics"), "--diameter", "108",
                 "--out", str(out), *extra])


@pytest.mark.parametrize("case, match", [
    ("outside", "coordinate(s) outside the 1536 x 1536 px micrograph"),
    ("stem", "coordinate file matches no micrograph"),
    ("empty", "no particles"),
    ("box", "--box 2000 px is larger than the micrograph"),
])
def test_bad_input_is_one_line_and_writes_nothing(crop, tmp_path, capsys, case, match):
    folder, truth, _ = crop
    coords = tmp_path / "coords"
    coords.mkdir()
    table = {"outside": truth.assign(y=truth["y"] + 1000), "empty": truth.iloc[:0]}.get(case, truth)
    write_coordinates(table, coords / f"{'elsewhere' if case == 'stem' else EMPIAR_STEM}.star")
    out = tmp_path / "out"
    assert _classify(folder, coords, out, *(["--box", "2000"] if case == "box" else [])) == 1
    assert match in one_error_line(capsys)
    assert not out.exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present")
def test_cuda_without_a_gpu_is_a_clear_error(crop, tmp_path, capsys):
    folder, _, _ = crop
    assert _classify(folder, folder / "truth", tmp_path / "out", "--device", "cuda") == 1
    assert "CUDA is not available" in one_error_line(capsys)
    assert not (tmp_path / "out").exists()


