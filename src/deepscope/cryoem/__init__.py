"""Cryo-EM particle picking by semantic segmentation (CASSPER-style).

``io`` reads micrographs and label images (``coordinates``: the coordinate
file formats), ``preprocess`` rescales, enhances contrast and draws targets,
``models`` holds the U-Nets, ``train`` fits and tunes them, ``picking`` turns
probability maps into picks, ``predictor`` is the trained picker and batch
picking, ``evaluate`` scores picks against the truth (``figures``: overlays
and the report), ``synthetic`` simulates raw micrographs from an atomic model.
"""
