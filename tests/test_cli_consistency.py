"""One rule per test for the whole command line, so that a new command cannot break it.

Each test walks every command of ``deepscope`` (the parser, not a hand-kept list),
so a command added later is checked too.
"""

import argparse
import time

import pytest
import torch

from deepscope.cli.main import build_parser, main
from deepscope.errors import InputError
from deepscope.registry import DOMAINS, list_models

# Commands that run a network, so they must take --device (issue: "every command that runs a
# network takes --device").
NETWORK_COMMANDS = {
    ("galaxy", "train"), ("galaxy", "predict"), ("galaxy", "evaluate"), ("galaxy", "layers"),
    ("galaxy", "occlusion"), ("spectra", "train"), ("spectra", "predict"), ("spectra", "evaluate"),
    ("spectra", "crossval"), ("spectra", "pretrain"), ("spectra", "embed"), ("spectra", "denoise"),
    ("spectra", "compress"), ("spectra", "outliers"), ("cryoem", "train"), ("cryoem", "pick"), ("cryoem", "classify"),
}


def _subparsers(parser):
    actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return actions[0].choices if actions else {}


def _commands():
    """``(path, parser)`` of every leaf command, e.g. ``(("galaxy", "predict"), parser)``."""
    leaves = []
    for name, sub in _subparsers(build_parser()).items():
        children = _subparsers(sub)
        if children:
            leaves += [((name, child), parser) for child, parser in children.items()]
        else:
            leaves.append(((name,), sub))
    return leaves


COMMANDS = _commands()
IDS = [" ".join(path) for path, _ in COMMANDS]


def _visible_options(parser):
    return [a for a in parser._actions
            if a.option_strings and a.help != argparse.SUPPRESS and not isinstance(a, argparse._HelpAction)]


def test_every_command_is_walked():
    assert len(COMMANDS) >= 24 and ("galaxy", "predict") in [path for path, _ in COMMANDS]


@pytest.mark.parametrize(("path", "parser"), COMMANDS, ids=IDS)
def test_every_option_has_help_that_shows_its_default(path, parser):
    for action in _visible_options(parser):
        name = "/".join(action.option_strings)
        assert action.help, f"{' '.join(path)} {name} has no help"
        takes_value = action.nargs != 0
        if takes_value and not action.required:
            assert "default" in action.help.lower(), f"{' '.join(path)} {name}: help does not say its default"


@pytest.mark.parametrize(("path", "parser"), COMMANDS, ids=IDS)
def test_quiet_and_verbose_are_accepted_after_the_command(path, parser):
    flags = {s for a in parser._actions for s in a.option_strings}
    assert {"-q", "--quiet", "-v", "--verbose"} <= flags, " ".join(path)


def test_quiet_after_the_command_really_silences(capsys, tmp_path):
    from deepscope.core.progress import silence_progress_bars
    from deepscope.samples import sample_dir

    out = tmp_path / "pred.csv"
    try:
        assert main(["galaxy", "predict", str(sample_dir("galaxy", "bars")), "--out", str(out), "-q"]) == 0
        assert out.is_file()
        err = capsys.readouterr().err
        assert "%|" not in err and "INFO" not in err
    finally:
        silence_progress_bars(False)


@pytest.mark.parametrize(("path", "parser"), COMMANDS, ids=IDS)
def test_one_spelling_for_shared_options(path, parser):
    for action in _visible_options(parser):
        strings = set(action.option_strings)
        if "--model" in strings:
            assert action.metavar == "NAME_OR_PATH", f"{' '.join(path)} --model shows as {action.metavar}"
        # Training options default to None so that a --config YAML still applies; the help says the same.
        if "--threads" in strings:
            shown = action.default is None or f"default {action.default}" in action.help
            assert "0: all cores" in action.help and shown, " ".join(path)
        if "--device" in strings:
            assert action.default in ("cpu", None) and "cuda:N" in action.help and "default cpu" in action.help, \
                " ".join(path)
        flips = [s for s in strings if "flip" in s]
        # A coordinate frame is flipped with --flip-y HEIGHT (--truth-flip-y HEIGHT where a command
        # reads two frames); a label image needs no height.
        for flip in flips:
            assert flip.endswith("-flip-y"), f"{' '.join(path)} spells a flip {flip}"
            if flip != "--labels-flip-y":
                assert action.metavar == "HEIGHT", f"{' '.join(path)} {flip} does not take HEIGHT"


@pytest.mark.parametrize("path", sorted(NETWORK_COMMANDS), ids=[" ".join(p) for p in sorted(NETWORK_COMMANDS)])
def test_every_command_that_runs_a_network_takes_device(path):
    parser = dict(COMMANDS)[path]
    assert "--device" in {s for a in parser._actions for s in a.option_strings}


@pytest.mark.parametrize("domain", [d for d in DOMAINS if ("train" in _subparsers(_subparsers(build_parser())[d]))])
def test_wrong_arch_is_refused_before_any_data_is_read(domain, tmp_path, capsys):
    other = next(name for name in list_models() if name not in list_models(domain, trainable=True))
    data = tmp_path / "never_read.csv"  # does not exist: the arch must be refused first
    train = {"galaxy": ["--data", str(data)], "spectra": ["--data", str(data)],
             "cryoem": ["--micrographs", str(tmp_path), "--coords", str(tmp_path), "--diameter", "100"]}[domain]
    if "--arch" not in {s for a in dict(COMMANDS)[(domain, "train")]._actions for s in a.option_strings}:
        pytest.skip(f"{domain} train chooses its network from --target")
    start = time.monotonic()
    assert main([domain, "train", *train, "--arch", other, "--out", str(tmp_path / "run")]) == 1
    assert time.monotonic() - start < 3
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("deepscope: error:")
    assert ", ".join(list_models(domain, trainable=True)) in err[0]


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on a machine without CUDA")
@pytest.mark.parametrize("domain", [d for d in DOMAINS if ("train" in _subparsers(_subparsers(build_parser())[d]))])
def test_train_on_a_missing_gpu_is_refused_before_the_run_directory(domain, tmp_path, capsys):
    data = tmp_path / "never_read.csv"  # does not exist: the device must be refused first
    train = {"galaxy": ["--data", str(data)], "spectra": ["--data", str(data)],
             "cryoem": ["--micrographs", str(tmp_path), "--coords", str(tmp_path), "--diameter", "100"]}[domain]
    assert main([domain, "train", *train, "--device", "cuda", "--out", str(tmp_path / "run")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["deepscope: error: device 'cuda' requested but CUDA is not available on this machine; "
                   "use --device cpu"]
    assert not (tmp_path / "run").exists()


def test_top_level_help_is_plain_words():
    text = build_parser().format_help()
    for markup in (":mod:", ":class:", ":func:", "``"):
        assert markup not in text


def test_models_lists_the_four_shipped_weights(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    for name in ("galaxy_bars", "galaxy_morphology", "spectra_mk", "cryoem_empiar10017"):
        assert f"  {name}" in out
    assert "trained on:" in out and "measured:" in out
    assert "on the CPU: its int8 ONNX export" in out  # the galaxy models' engine, as the registry names it


def test_shipped_names_work_as_model_in_every_domain(tmp_path):
    from deepscope.samples import sample_dir

    spectra = sorted(sample_dir("spectra").glob("pickles_*.fits"))[0]
    assert main(["-q", "spectra", "predict", str(spectra), "--model", "spectra_mk",
                 "--out", str(tmp_path / "s.csv")]) == 0
    micrograph = sorted(sample_dir("cryoem").glob("*.jpg"))[0]
    assert main(["-q", "cryoem", "pick", str(micrograph), "--diameter", "27", "--model", "cryoem_empiar10017",
                 "--out", str(tmp_path / "picks")]) == 0
    assert (tmp_path / "picks" / f"{micrograph.stem}.star").is_file()
    assert main(["-q", "galaxy", "predict", str(sample_dir("galaxy", "morphology")), "--model", "galaxy_morphology",
                 "--out", str(tmp_path / "g.csv")]) == 0


def test_a_compressed_tar_shard_gets_a_clear_error(tmp_path, capsys):
    import tarfile

    from deepscope.samples import sample_dir

    shard = tmp_path / "cutouts.tar.gz"
    with tarfile.open(shard, "w:gz") as archive:
        cutout = sorted(sample_dir("galaxy", "bars").rglob("*.jpeg"))[0]
        archive.add(cutout, arcname=cutout.name)
    assert main(["galaxy", "predict", str(shard), "--out", str(tmp_path / "p.csv")]) == 1
    err = capsys.readouterr().err
    assert "compressed shards are not supported; use an uncompressed .tar" in err
    assert "Traceback" not in err


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on a machine without CUDA")
@pytest.mark.parametrize("command", [["galaxy", "evaluate"], ["spectra", "evaluate"], ["galaxy", "predict", "x.jpeg"]],
                         ids=" ".join)
def test_a_missing_gpu_is_refused_before_any_output(command, tmp_path, capsys):
    labels = ["--labels", str(tmp_path / "never_read.csv")] if command[-1] == "evaluate" else []
    assert main([*command, *labels, "--device", "cuda", "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["deepscope: error: device 'cuda' requested but CUDA is not available on this machine; "
                   "use --device cpu"]
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("command", [["galaxy", "predict", "x.jpeg"], ["spectra", "predict", "x.fits"],
                                     ["cryoem", "pick", "x.mrc", "--diameter", "100"]], ids=lambda c: " ".join(c[:2]))
def test_read_threads_default_to_every_usable_core_shared_among_workers(command, monkeypatch):
    import os

    from deepscope.cli.options import batch_options_from_args

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(16)), raising=False)
    parse = build_parser().parse_args
    assert batch_options_from_args(parse([*command, "--out", "o"])).read_threads == 16
    assert batch_options_from_args(parse([*command, "--out", "o", "--workers", "3"])).read_threads == 5
    assert batch_options_from_args(parse([*command, "--out", "o", "--read-threads", "3"])).read_threads == 3
    remote = parse([*command, "--out", "o", "--scheduler", "tcp://elsewhere:8786"])
    assert batch_options_from_args(remote).read_threads == 2
    with pytest.raises(InputError, match=r"--read-threads must be 0 \(every core\) or more, got -1"):
        batch_options_from_args(parse([*command, "--out", "o", "--read-threads", "-1"]))
