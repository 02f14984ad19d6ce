"""HTML reports: tables and matplotlib figures written into one directory.

A :class:`Report` collects sections in order and writes ``report.html`` with
its PNG figures beside it, so the directory can be zipped or served as is.
"""

import html
from pathlib import Path

from deepscope import __version__
from deepscope.core.files import atomic_path, check_writable

_STYLE = """
body { font-family: sans-serif; max-width: 1100px; margin: 2em auto; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1em; }
th, td { border: 1px solid #bbb; padding: 3px 8px; text-align: right; }
th { background: #eee; }
img { max-width: 100%; margin: 0.3em; border: 1px solid #ddd; }
.figs { display: flex; flex-wrap: wrap; align-items: flex-start; }
figure { margin: 0.3em; } figcaption { font-size: 0.85em; color: #555; }
pre { background: #f6f6f6; padding: 0.5em; overflow-x: auto; }
"""


def column_decimals(values, significant=4, most=4):
    """Decimals to write a whole column of numbers with.

    The fewest that write every value exactly, but no more than give the
    largest value ``significant`` significant digits, and at most ``most``.

    Examples
    --------
    >>> column_decimals([0.5, 0.853, 0.9]), column_decimals([12.25, 1.5, 0.3333333]), column_decimals([3.0, 40.0])
    (3, 2, 0)
    """
    import numpy as np

    finite = np.asarray(values, dtype=float)
    finite = finite[np.isfinite(finite)]
    if not finite.size:
        return 0
    largest = float(np.abs(finite).max())
    cap = most if largest == 0 else int(np.clip(significant - 1 - np.floor(np.log10(largest)), 0, most))
    for decimals in range(cap + 1):
        if np.allclose(np.round(finite, decimals), finite, rtol=0, atol=1e-9 * max(largest, 1.0)):
            return decimals
    return cap


class Report:
    """An HTML report under construction.

    Parameters
    ----------
    out_dir : str or Path
        Directory for ``report.html`` and its figures (created if needed).
    title : str
    """

    def __init__(self, out_dir, title):
        self.out_dir = check_writable(out_dir, is_dir=True)
        self.title = title
        self._parts = []

    def heading(self, text, level=2):
        """Add a section heading."""
        self._parts.append(f"<h{level}>{html.escape(text)}</h{level}>")

    def text(self, text):
        """Add a paragraph of plain text."""
        self._parts.append(f"<p>{html.escape(text)}</p>")

    def code(self, text):
        """Add a preformatted block (commands, logs)."""
        self._parts.append(f"<pre>{html.escape(text)}</pre>")

    def table(self, frame, caption=None, index=True):
        """Add a pandas table: one header row, and the numbers of each column with the same decimals.

        Named row labels become the first column, under their name; a plain
        row count (0, 1, 2 ...) is not shown. Each column of floats is
        written with :func:`column_decimals` decimals.

        Parameters
        ----------
        frame : pandas.DataFrame
        caption : str, optional
        index : bool
            Show the row labels.
        """
        import pandas as pd

        if caption:
            self._parts.append(f"<p><b>{html.escape(caption)}</b></p>")
        if index and any(name is not None for name in frame.index.names):
            # a column like the others: to_html would give the index name a header row of its own
            frame, index = frame.reset_index(), False
        elif isinstance(frame.index, pd.RangeIndex):
            index = False
        shown = frame.copy()
        for position in range(shown.shape[1]):
            values = shown.iloc[:, position]
            if pd.api.types.is_float_dtype(values):
                decimals = column_decimals(values)
                shown.isetitem(position, [f"{v:.{decimals}f}" if pd.notna(v) else "" for v in values])
        self._parts.append(shown.to_html(index=index, border=0))

    def figure(self, fig, name, caption=""):
        """Save a matplotlib figure as ``name.png`` and embed it.

        Parameters
        ----------
        fig : matplotlib.figure.Figure
        name : str
            File stem, unique within the report.
        caption : str
        """
        import matplotlib.pyplot as plt

        path = self.out_dir / f"{name}.png"
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png")
        plt.close(fig)
        self.image(path.name, caption)

    def image(self, relative_path, caption=""):
        """Embed an existing image file (path relative to the report)."""
        self._parts.append(
            f'<figure><img src="{html.escape(str(relative_path))}" alt="{html.escape(caption)}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>"
        )

    def write(self, name="report.html"):
        """Write the HTML file atomically.

        Returns
        -------
        Path
        """
        body = "\n".join(self._parts)
        page = (
            f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(self.title)}</title>"
            f"<style>{_STYLE}</style></head><body><h1>{html.escape(self.title)}</h1>\n{body}\n"
            f"<hr><p><small>deepscope {__version__}</small></p></body></html>\n"
        )
        path = Path(self.out_dir) / name
        with atomic_path(path) as tmp:
            tmp.write_text(page)
        return path
