"""Survey frames -> colour cutouts of catalogued galaxies.

``frames`` finds the single-band FITS frames that hold a galaxy; ``mosaic``
resamples them onto the cutout's own sky grid; ``composite`` makes the
asinh colour image; ``make`` runs ``galaxy cutout`` over a catalogue.
"""
