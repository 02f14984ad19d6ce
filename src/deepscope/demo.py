"""``deepscope demo``: every shipped model on bundled samples, in one HTML report."""

import importlib
import logging

from deepscope.core.report import Report

log = logging.getLogger(__name__)

# Each science domain contributes one section (module with add_demo_section).
DEMO_SECTIONS = ("deepscope.galaxy.demo", "deepscope.spectra.demo", "deepscope.cryoem.demo")


def run_demo(out_dir):
    """Run every demo section and write ``out_dir/report.html``.

    Parameters
    ----------
    out_dir : str or Path

    Returns
    -------
    Path
        The report file.
    """
    report = Report(out_dir, "deepscope demo")
    report.text("Shipped pretrained models run offline on small real samples bundled with the package.")
    for name in DEMO_SECTIONS:
        log.info("demo: %s", name)
        importlib.import_module(name).add_demo_section(report, report.out_dir)
    return report.write()
