"""Cryo-EM particle picking by semantic segmentation (CASSPER-style), and 2D classification of the picks.

Data flows ``io`` (micrographs, label images; ``coordinates``: the coordinate
formats; ``pick_sets``: one picker's files) -> ``preprocess`` (working scale,
contrast, targets) -> ``models`` (U-Nets) -> ``train`` (and post-fit tuning) /
``predictor`` (the picker: ``picking`` turns maps into picks, ``recentre``
refines them on the image) -> ``evaluate`` -> ``figures``. ``extract`` cuts
particle stacks, ``classify2d`` classifies them; ``synthetic`` simulates
micrographs from an atomic model; ``demo`` is this domain's demo section.
"""
