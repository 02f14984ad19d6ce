"""Class codes and the names people read."""

import pytest

from deepscope.errors import InputError
from deepscope.galaxy.classes import encode_labels, probability_column, readable_names


def test_encode_labels_rejects_unknown_class():
    assert list(encode_labels([1, 0, "1"], ["0", "1"])) == [1, 0, 1]
    with pytest.raises(InputError, match="not one of the model's classes"):
        encode_labels([2], ["0", "1"])


def test_bar_classes_read_as_words():
    assert readable_names("barred", ["0", "1"]) == ["unbarred", "barred"]
    assert readable_names("morphology", ["elliptical", "spiral"]) == ["elliptical", "spiral"]
    assert probability_column("barred", ["0", "1"]) == "p_bar"
    assert probability_column("morphology", ["elliptical", "spiral"]) == "p_spiral"
