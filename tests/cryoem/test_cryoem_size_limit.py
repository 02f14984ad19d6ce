"""A micrograph too large to pick is refused from its header, in one line, before any pixel is read."""

import struct

import mrcfile
import numpy as np
import pytest

from deepscope.cli.main import main
from deepscope.cryoem.io import MAX_MICROGRAPH_PIXELS, read_micrograph


def _sparse_mrc(path, side):
    """An MRC whose header declares side x side float32 pixels; the data block is a sparse hole."""
    with mrcfile.new(path, overwrite=True) as mrc:
        mrc.set_data(np.zeros((4, 4), np.float32))
    header = bytearray(path.read_bytes()[:1024])
    header[0:12] = struct.pack("<3i", side, side, 1)
    with open(path, "wb") as fh:
        fh.write(bytes(header))
        fh.truncate(1024 + side * side * 4)


def test_a_giant_mrc_is_refused_without_reading_it(tmp_path):
    side = int(np.sqrt(MAX_MICROGRAPH_PIXELS)) + 1
    path = tmp_path / "giant.mrc"
    _sparse_mrc(path, side)
    with pytest.raises(Exception, match=rf"giant.mrc: {side} x {side} pixels is more than a micrograph may have"):
        read_micrograph(path)


def test_pick_lists_the_giant_and_keeps_the_rest(tmp_path, capsys):
    from deepscope.samples import sample_dir

    side = int(np.sqrt(MAX_MICROGRAPH_PIXELS)) + 1
    _sparse_mrc(tmp_path / "giant.mrc", side)
    good = sorted(sample_dir("cryoem").glob("*.jpg"))[0]
    assert main(["-q", "cryoem", "pick", str(tmp_path / "giant.mrc"), str(good), "--diameter", "27",
                 "--out", str(tmp_path / "picks")]) == 1
    err = capsys.readouterr().err
    assert "giant.mrc: " in err and "bin it first" in err and "Traceback" not in err
    assert (tmp_path / "picks" / f"{good.stem}.star").is_file()
