"""Every command that the README and the ``--help`` texts show: each parses, and the runnable ones run as written.

The README's ```bash blocks are run line by line, in order, from a fresh folder
beside ``shared/`` (as a clone beside ``../shared`` sees it), the way a newcomer
copies them. ``train`` lines take minutes: they run only with
``DEEPSCOPE_RUN_LONG_EXAMPLES=1``. ```sh blocks, and help examples, name the
user's own files; every one of them must still parse, and the quick help
examples that read only the shared data run too (training, and the examples
that use the model a training example makes, are parsed only).
"""

import argparse
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from deepscope.cli.main import build_parser

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
RUN_LONG = os.environ.get("DEEPSCOPE_RUN_LONG_EXAMPLES") == "1"
# Lines of a block that are not deepscope commands a newcomer runs to try it: installing, the test suite itself.
NOT_RUN = ("pip install", "python -m pytest")
SHELL_OPERATORS = {">", ">>", "2>", "<", "|"}
# Commands that train for minutes to an hour; "runs/" is where their examples put the model.
LONG = (" train ", " pretrain ", " crossval ", " selftrain ")


def _blocks(text, language):
    return re.findall(rf"^```{language}\n(.*?)^```", text, flags=re.S | re.M)


def _lines(block):
    """A block's commands, backslash continuations joined, comments and blank lines dropped."""
    joined = block.replace("\\\n", " ")
    lines = []
    for line in joined.splitlines():
        line = line.split(" # ")[0].strip() if not line.lstrip().startswith("#") else ""
        if line:
            lines.append(line)
    return lines


def readme_commands(language="bash"):
    """The README's command lines in one kind of block, in order (``&&`` chains split)."""
    text = (ROOT / "README.md").read_text()
    return [part.strip() for block in _blocks(text, language) for line in _lines(block) for part in line.split("&&")]


def help_examples():
    """Every ``deepscope ...`` line in the description of every command and subcommand."""
    examples, seen, todo = [], set(), [build_parser()]
    while todo:
        parser = todo.pop()
        if id(parser) in seen:
            continue
        seen.add(id(parser))
        for block in (parser.description or "", parser.epilog or ""):
            examples += [line for line in _lines(block) if line.startswith("deepscope ")]
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                todo += list(action.choices.values())
    return list(dict.fromkeys(examples))


def _argv(line, variables):
    """A command line's argv after the block's shell variables (``D=...``) are expanded."""
    for name, value in variables.items():
        line = line.replace(f"${name}", value)
    return shlex.split(line)


def _deepscope_lines(lines):
    """``(argv, line)`` of each deepscope command of a block, with the block's variables applied."""
    variables, commands = {}, []
    for line in lines:
        assignment = re.fullmatch(r"([A-Z]\w*)=(\S+)", line)
        if assignment:
            variables[assignment[1]] = assignment[2]
        elif line.startswith(("deepscope ", "torchrun ")):
            commands.append((_argv(line, variables), line))
    return variables, commands


def _unparsed(argv):
    """None when a shown command's arguments parse as deepscope would parse them (``--help`` included), else why not."""
    if argv[0] == "torchrun":  # torchrun's own options, then -m deepscope ...
        argv = argv[argv.index("deepscope") :]
    redirect = next((i for i, word in enumerate(argv) if word in SHELL_OPERATORS), len(argv))
    argv = argv[:redirect]
    try:
        build_parser().parse_args(argv[1:])
    except SystemExit as exc:
        return None if exc.code == 0 else f"does not parse: {shlex.join(argv)}"
    return None


def test_the_readme_shows_commands_of_every_kind():
    assert len(readme_commands("bash")) >= 15 and len(readme_commands("sh")) >= 4
    assert len(help_examples()) >= 30


@pytest.mark.parametrize("language", ["bash", "sh"])
def test_every_readme_command_parses(language):
    _, commands = _deepscope_lines(readme_commands(language))
    assert commands
    assert [why for argv, _ in commands if (why := _unparsed(argv))] == []


def test_every_help_example_parses():
    assert [why for line in help_examples() if (why := _unparsed(shlex.split(line)))] == []


def test_an_option_that_no_longer_exists_fails_the_check(capsys):
    assert _unparsed(["deepscope", "galaxy", "predict", "x.jpg", "--out", "p.csv", "--no-such-option"])
    assert _unparsed(["deepscope", "spectra", "predict", "x.fits"])  # --out is required
    assert _unparsed(["deepscope", "galaxy", "predict", "--help"]) is None


def _run(line, workdir):
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    done = subprocess.run(["bash", "-c", line], cwd=workdir, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{line}\n{done.stderr[-2000:]}"


@pytest.fixture
def newcomer_folder(tmp_path):
    """A fresh folder with ``../shared`` beside it, as a clone beside the team's data sees it."""
    if not (SHARED / "data").is_dir():
        pytest.skip("needs ../shared/data")
    (tmp_path / "shared").symlink_to(SHARED)
    (tmp_path / "work").mkdir()
    return tmp_path / "work"


@pytest.mark.heavy
def test_readme_bash_commands_run_as_written(newcomer_folder):
    lines = [line for line in readme_commands("bash") if not line.startswith(NOT_RUN)]
    variables = [line for line in lines if re.fullmatch(r"[A-Z]\w*=\S+", line)]
    ran = 0
    for line in lines:
        if line in variables or (any(word in line for word in LONG) and not RUN_LONG):
            continue
        _run("; ".join(variables + [line]), newcomer_folder)
        ran += 1
    assert ran >= 13
    assert (newcomer_folder / "demo_out" / "report.html").is_file()
    assert (newcomer_folder / "picks" / "coordinate_files.star").is_file()


@pytest.mark.heavy
def test_help_examples_on_the_shared_data_run_as_written(newcomer_folder):
    quick = [line for line in help_examples()
             if "../shared/data" in line and "runs/" not in line and not any(word in line for word in LONG)]
    assert len(quick) >= 10
    for line in quick:
        _run(line, newcomer_folder)
