"""deepscope: deep learning for telescope and microscope data.

Three scientific pipelines share one core: galaxy bar detection in SDSS colour
cutouts (:mod:`deepscope.galaxy`), MK classification of stellar spectra
(:mod:`deepscope.spectra`) and cryo-EM particle picking
(:mod:`deepscope.cryoem`). Importing the package is cheap: torch is imported
only by the modules that need it, so ``deepscope --help`` stays fast.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
