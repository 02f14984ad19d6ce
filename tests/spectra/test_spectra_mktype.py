"""MK type strings from real catalogues, and the spectral code both ways."""

import math

import pytest

from deepscope.spectra.mktype import code_to_type, format_type, index_to_parts, parse_mk, type_to_code


@pytest.mark.parametrize("text, main, sub, lum", [
    ("G8III", "G", 8.0, 3.0),
    ("K3Iab:", "K", 3.0, 1.0),
    ("B2IV-V", "B", 2.0, 4.5),
    ("F3/F5V", "F", 4.0, 5.0),
    ("M4.5:III", "M", 4.5, 3.0),
    ("sd:F", "F", None, 6.0),
    ("A1m", "A", 1.0, None),
    ("Am", "A", None, None),
    ("B0.5Ibe...", "B", 0.5, 1.0),
    ("G5/G6IVw", "G", 5.5, 4.0),
    ("O8/O9", "O", 8.5, None),
    ("K1IVa", "K", 1.0, 4.0),
    ("F4 -1.0V", "F", 4.0, 5.0),      # PyHammer's type with metallicity
    ("M2 +0.5V", "M", 2.0, 5.0),
    ("07Ia", "O", 7.0, 1.0),          # MILES writes a zero for O
    ("K0III-IV", "K", 0.0, 3.5),
    ("G8III/IV", "G", 8.0, 3.5),
    ("A4-7IV", "A", 5.5, 4.0),
    ("M3Ib-II:", "M", 3.0, 1.5),
    ("K7/M0V", "K", 8.5, 5.0),        # across a main-class boundary
    ("sdG2", "G", 2.0, 6.0),
    ("M6Svar", "M", 6.0, None),
    ("G:w?", "G", None, None),
    ("K0 ", "K", 0.0, None),
])
def test_parse_catalogue_strings(text, main, sub, lum):
    mk = parse_mk(text)
    assert (mk.main_class, mk.subclass, mk.lum_class) == (main, sub, lum)


@pytest.mark.parametrize("text", ["HB", "GB", "AGB", "S?", "R...", "L0", "M10III", "", "III", None, "C"])
def test_non_types_are_none(text):
    assert parse_mk(text) is None


@pytest.mark.parametrize("text, code", [("G2V", 5211.5), ("K3III", 6307.5), ("B0.5Ib", 2053.5),
                                        ("O5Ia", 1503.5), ("M4.5III", 7457.5), ("A0VI", 3013.5)])
def test_code_matches_the_talk(text, code):
    mk = parse_mk(text)
    assert mk.code == code
    assert str(code_to_type(code)) == str(mk)


def test_code_round_trip_over_every_half_subclass():
    for a1 in range(1, 8):
        for half in range(20):
            for a3 in range(1, 7):
                code = type_to_code(a1, half / 2, a3)
                back = code_to_type(code)
                assert (back.a1, back.subclass, back.lum_class) == (a1, half / 2, a3)


def test_partial_types_have_no_code_but_keep_what_is_known():
    assert math.isnan(parse_mk("Am").code)
    assert math.isnan(parse_mk("G8").code)
    assert parse_mk("G8").temperature_index == 48.0


def test_code_rejects_non_codes():
    with pytest.raises(ValueError, match="not a spectral code"):
        code_to_type(5200.0)
    with pytest.raises(ValueError, match="not a spectral code"):
        code_to_type(9211.5)


def test_format_and_index():
    assert format_type("B", 2, 4.5) == "B2IV-V"
    assert format_type("M", 4.5, 3) == "M4.5III"
    assert index_to_parts(52.4) == ("K", 2.5)
    assert index_to_parts(80) == ("M", 9.5)
