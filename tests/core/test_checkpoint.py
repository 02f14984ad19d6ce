"""Plain-data checkpoints: round trip, refusal of pickled code, shipped hashes."""

import pickle

import pytest
import torch

from deepscope.core.checkpoint import (
    load_checkpoint, model_from_checkpoint, save_checkpoint, update_checkpoint_meta,
)
from deepscope.errors import ModelError
from deepscope.registry import create_model, list_models


class _Evil:
    def __reduce__(self):
        return (print, ("pwned",))


def test_round_trip_restores_weights(tmp_path):
    model = create_model("barnet", width=4)
    path = tmp_path / "m.pt"
    save_checkpoint(path, "barnet", {"width": 4}, model, meta={"threshold": 0.4})
    record = load_checkpoint(path)
    restored = model_from_checkpoint(record)
    x = torch.rand(2, 3, 32, 32)
    model.eval()
    assert torch.equal(model(x), restored(x))
    assert record["meta"]["threshold"] == 0.4


def test_update_meta_keeps_weights(tmp_path):
    model = create_model("barnet", width=4)
    path = tmp_path / "m.pt"
    save_checkpoint(path, "barnet", {"width": 4}, model, meta={"a": 1})
    update_checkpoint_meta(path, threshold=0.3)
    record = load_checkpoint(path)
    assert record["meta"] == {"a": 1, "threshold": 0.3}
    assert torch.equal(record["state_dict"]["2.0.weight"], model.state_dict()["2.0.weight"])


def test_pickled_code_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"model": "barnet", "state_dict": {}, "payload": _Evil()}, path)
    with pytest.raises(ModelError, match="refused to load checkpoint"):
        load_checkpoint(path)


def test_whole_module_pickle_is_refused(tmp_path):
    path = tmp_path / "module.pt"
    torch.save(create_model("barnet", width=4), path, pickle_protocol=pickle.DEFAULT_PROTOCOL)
    with pytest.raises(ModelError, match="refused"):
        load_checkpoint(path)


def test_garbage_file_is_not_a_checkpoint(tmp_path):
    path = tmp_path / "junk.pt"
    path.write_bytes(b"not a zip at all")
    with pytest.raises(ModelError, match="not a readable checkpoint"):
        load_checkpoint(path)


def test_run_dir_without_checkpoint(tmp_path):
    with pytest.raises(ModelError, match="no best.pt or last.pt"):
        load_checkpoint(tmp_path)


def test_unknown_model_lists_known_ones():
    with pytest.raises(ModelError, match="known models: .*barnet"):
        create_model("no_such_net")


@pytest.mark.parametrize("name", list_models())
def test_every_registered_model_has_a_doc(name):
    from deepscope import registry

    assert registry._NETWORKS[name].builder.__doc__
