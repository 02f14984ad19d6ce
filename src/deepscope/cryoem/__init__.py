"""Cryo-EM particle picking by semantic segmentation (CASSPER-style).

``io`` reads micrographs and coordinate files, ``preprocess`` rescales and
enhances contrast, ``synthetic`` simulates raw micrographs from an atomic
model, ``models`` holds the U-Nets, ``task`` turns masks into picks and
scores them.
"""
