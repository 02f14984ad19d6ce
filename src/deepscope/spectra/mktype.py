"""MK spectral types: a parser for catalogue strings and the talk's numeric code.

The numeric code of Sharma et al. (2020, MNRAS 491, 2280) is

    code = 1000 * A1 + 100 * A2 + 2 * A3 + 1.5

with these conventions (ours, documented here because the paper's are not
spelled out in the talk):

* ``A1``, main class: O=1, B=2, A=3, F=4, G=5, K=6, M=7.
* ``A2``, subclass: 0 to 9.5 in steps of 0.5 (``M4.5`` -> 4.5). Finer
  subclasses (``M5.2``) are kept by the parser but rounded to 0.5 in the code.
* ``A3``, luminosity class: Ia0/Ia/Iab/Ib/I=1, II=2, III=3, IV=4, V=5,
  VI (subdwarf, ``sd``)=6; intermediate classes average (``IV-V`` -> 4.5,
  ``II-III`` -> 2.5), which the code rounds up to the fainter class.

So ``G2V`` -> 5211.5, ``K3III`` -> 6307.5, ``B0.5Ib`` -> 2053.5. The inverse is
exact for every type the code can hold, because ``2 * A3 + 1.5 <= 13.5`` never
reaches the next half subclass (50). A type without a luminosity class has
no code (``nan``): the code needs all three numbers, while the training loss
uses whatever part of a type is known (see :mod:`deepscope.spectra.targets`).

For learning, a type is also the *temperature index* ``t = 10 * (A1 - 1) + A2``
(O0 = 0 ... M9.5 = 69.5), in subclass units, so "within one subclass" is
``|t_pred - t_true| <= 1`` even across main-class boundaries.
"""

import math
import re
from dataclasses import dataclass

MAIN_CLASSES = "OBAFGKM"
LUM_NAMES = {1: "I", 2: "II", 3: "III", 4: "IV", 5: "V", 6: "VI"}
N_LUM = 6
N_T_BINS = 70  # whole subclasses O0 ... M9 of the temperature index

_ROMAN = {"Ia0": 1.0, "Ia+": 1.0, "Ia": 1.0, "Iab": 1.0, "Ib": 1.0, "I": 1.0,
          "II": 2.0, "IIa": 2.0, "IIb": 2.0, "III": 3.0, "IIIa": 3.0, "IIIb": 3.0,
          "IV": 4.0, "IVa": 4.0, "IVb": 4.0, "V": 5.0, "Va": 5.0, "Vb": 5.0, "VI": 6.0}
_LUM_TOKEN = r"(?:Ia0|Ia\+|Iab|Ia|Ib|IIIa|IIIb|III|IIa|IIb|II|IVa|IVb|IV|Va|Vb|VI|V|I)"
_TYPE_RE = re.compile(
    rf"""^\s*
    (?P<sd>sd|esd|usd)?:?\s*
    (?P<cls>[OBAFGKM])
    (?P<sub>\d+(?:\.\d+)?)?
    (?:[-/](?P<cls2>[OBAFGKM])?(?P<sub2>\d+(?:\.\d+)?))?
    [:\s]*
    (?:[+-]\d+(?:\.\d+)?\s*)?          # PyHammer's metallicity, e.g. 'F4 -1.0V'
    (?P<lum>{_LUM_TOKEN}(?:\s*[-/]\s*{_LUM_TOKEN})?)?
    (?P<rest>.*)$""",
    re.VERBOSE,
)


@dataclass(frozen=True)
class MKType:
    """A parsed MK type; parts that the string does not give are ``None``.

    Attributes
    ----------
    main_class : str
        One of ``OBAFGKM``.
    subclass : float or None
        0 to 9.5 (ranges such as ``F3/F5`` average to 4.0).
    lum_class : float or None
        1 (I) to 6 (VI, subdwarf); ranges average (``IV-V`` -> 4.5).
    peculiarity : str
        Whatever followed the type (``m``, ``e``, ``p...``, ``w``, ``:``).
    """

    main_class: str
    subclass: float | None = None
    lum_class: float | None = None
    peculiarity: str = ""

    @property
    def a1(self):
        """Main class number, O=1 ... M=7."""
        return MAIN_CLASSES.index(self.main_class) + 1

    @property
    def temperature_index(self):
        """``10 * (A1 - 1) + A2``; ``None`` without a subclass."""
        return None if self.subclass is None else 10.0 * (self.a1 - 1) + self.subclass

    @property
    def code(self):
        """The talk's numeric code, or ``nan`` if subclass or luminosity class is unknown."""
        if self.subclass is None or self.lum_class is None:
            return math.nan
        return type_to_code(self.a1, self.subclass, self.lum_class)

    def __str__(self):
        return format_type(self.main_class, self.subclass, self.lum_class)


def _roman(token):
    parts = [p.strip() for p in re.split(r"[-/]", token) if p.strip()]
    values = [_ROMAN[p] for p in parts]
    return sum(values) / len(values)


def parse_mk(text):
    """Parse a catalogue MK type string into an :class:`MKType`; None when it carries no O-M type.

    Strings such as ``'G8III'``, ``'K3Iab:'``, ``'B2IV-V'``, ``'F3/F5V'``,
    ``'M4.5:III'``, ``'sd:F'``, ``'Am'``, ``'B0.5Ibe...'``, ``'O8/O9'``,
    ``'F4 -1.0V'`` parse; ``'HB'``, ``'S?'``, ``'R...'``, ``'L0'`` give None.

    Examples
    --------
    >>> parse_mk("K3Iab:")
    MKType(main_class='K', subclass=3.0, lum_class=1.0, peculiarity=':')
    >>> str(parse_mk("F3/F5V")), str(parse_mk("B2IV-V")), str(parse_mk("sd:F"))
    ('F4V', 'B2IV-V', 'FVI')
    >>> parse_mk("O8/O9").subclass, parse_mk("Am").subclass, parse_mk("HB"), str(parse_mk("07Ia"))
    (8.5, None, None, 'O7I')
    """
    if not isinstance(text, str):
        return None
    # MILES writes some O stars with a zero ('07Ia', '08 Ib').
    text = re.sub(r"^\s*0(?=\d)", "O", text)
    match = _TYPE_RE.match(text)
    if match is None:
        return None
    cls, sub, sub2 = match["cls"], match["sub"], match["sub2"]
    cls2 = match["cls2"] or cls
    if sub2 is not None and sub is None:
        return None  # 'G-5' and similar are not types
    subclass = None
    if sub is not None:
        first = 10.0 * MAIN_CLASSES.index(cls) + float(sub)
        second = 10.0 * MAIN_CLASSES.index(cls2) + float(sub2) if sub2 is not None else first
        if float(sub) >= 10 or (sub2 is not None and float(sub2) >= 10):
            return None
        index = (first + second) / 2
        cls = MAIN_CLASSES[int(index // 10)]
        subclass = index - 10.0 * MAIN_CLASSES.index(cls)
    lum = _roman(match["lum"]) if match["lum"] else None
    if match["sd"]:
        lum = 6.0
    rest = (match["rest"] or "").strip()
    # Capitals after the type start another word ('GB', 'AGB'), not a
    # peculiarity; S (S-star 'M6Svar') and C (carbon) features are kept.
    if rest[:1].isupper() and not rest.startswith(("S", "C")):
        return None
    return MKType(cls, subclass, lum, rest)


def format_type(main_class, subclass=None, lum_class=None):
    """Write an MK string from its parts: a whole subclass without decimals, half luminosity classes as ranges.

    Examples
    --------
    >>> format_type("M", 4.5, 3), format_type("B", 2, 4.5), format_type("G")
    ('M4.5III', 'B2IV-V', 'G')
    """
    text = main_class
    if subclass is not None:
        text += f"{subclass:g}" if subclass != int(subclass) else str(int(subclass))
    if lum_class is not None:
        low, high = math.floor(lum_class), math.ceil(lum_class)
        text += LUM_NAMES[low] if low == high else f"{LUM_NAMES[low]}-{LUM_NAMES[high]}"
    return text


def type_to_code(a1, a2, a3):
    """The talk's code ``1000*A1 + 100*A2 + 2*A3 + 1.5`` (A1: O=1 ... M=7; A2: subclass; A3: I=1 ... VI=6).

    ``A2`` is rounded to the nearest 0.5 and ``A3`` up to a whole class, the
    resolution the code can hold.

    Examples
    --------
    >>> type_to_code(5, 2, 5), type_to_code(6, 3, 3), type_to_code(2, 0.5, 1)
    (5211.5, 6307.5, 2053.5)
    """
    a2 = round(float(a2) * 2) / 2
    a3 = math.ceil(float(a3))
    return 1000.0 * int(a1) + 100.0 * a2 + 2.0 * a3 + 1.5


def code_to_type(code):
    """Invert :func:`type_to_code`: the :class:`MKType` of a code.

    Raises
    ------
    ValueError
        If ``code`` is not the code of an O-M type with luminosity class I-VI.

    Examples
    --------
    >>> str(code_to_type(5211.5)), str(code_to_type(7459.5))
    ('G2V', 'M4.5IV')
    """
    a1 = int(code // 1000)
    rest = code - 1000 * a1
    a2 = math.floor(rest / 50) * 0.5
    a3 = (rest - 100 * a2 - 1.5) / 2
    if not 1 <= a1 <= 7 or abs(a3 - round(a3)) > 1e-6 or not 1 <= round(a3) <= 6:
        msg = f"{code!r} is not a spectral code 1000*A1 + 100*A2 + 2*A3 + 1.5"
        raise ValueError(msg)
    return MKType(MAIN_CLASSES[a1 - 1], a2, float(round(a3)))


def index_to_parts(t):
    """Split a temperature index ``10*(A1-1) + A2`` (clipped to O0-M9.5, rounded to 0.5) into class and subclass.

    Examples
    --------
    >>> index_to_parts(52.4), index_to_parts(-3)
    (('K', 2.5), ('O', 0.0))
    """
    t = min(max(round(float(t) * 2) / 2, 0.0), 69.5)
    a1 = int(t // 10)
    return MAIN_CLASSES[a1], t - 10 * a1
