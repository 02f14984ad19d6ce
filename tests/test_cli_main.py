"""The deepscope command itself: help without torch, version, errors without tracebacks."""

import subprocess
import sys

from deepscope import __version__
from deepscope.cli.main import COMMANDS, build_parser, main


def test_help_does_not_import_torch():
    code = (
        "import sys\n"
        "from deepscope.cli.main import build_parser\n"
        "build_parser().format_help()\n"
        "assert 'torch' not in sys.modules, 'torch imported by --help'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_version(capsys):
    try:
        main(["--version"])
    except SystemExit as exc:
        assert exc.code == 0
    assert capsys.readouterr().out.strip() == f"deepscope {__version__}"


def test_every_command_has_help_with_an_example():
    parser = build_parser()
    actions = {a.dest: a for a in parser._subparsers._group_actions}
    top = next(iter(actions.values()))
    for domain, commands in COMMANDS.items():
        domain_parser = top.choices[domain]
        sub = domain_parser._subparsers._group_actions[0]
        for name in commands:
            assert "example" in sub.choices[name].description.lower(), f"{domain} {name} help lacks an example"


def test_domain_without_command_prints_help(capsys):
    assert main(["galaxy"]) == 2
    assert "predict" in capsys.readouterr().err


def _predict_stderr(capsys, tmp_path, *flags):
    from deepscope.samples import sample_dir

    out = tmp_path / f"pred{len(flags)}.csv"
    assert main([*flags, "galaxy", "predict", str(sample_dir("galaxy", "bars")), "--out", str(out)]) == 0
    assert out.is_file()
    return capsys.readouterr().err


def test_quiet_hides_progress_bars(capsys, tmp_path):
    from deepscope.core.progress import silence_progress_bars

    try:
        # tqdm draws "NN%|" on stderr; -q must remove the bars, not only the log lines.
        assert "%|" in _predict_stderr(capsys, tmp_path)
        assert "%|" not in _predict_stderr(capsys, tmp_path, "-q")
    finally:
        silence_progress_bars(False)
