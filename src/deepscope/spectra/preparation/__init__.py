"""Spectra as read -> the network's input on the model's wavelength grid (no torch here).

``grid`` defines the grid and puts one spectrum on it (air wavelengths,
resampling, smoothing, continuum division); ``grid_rows`` does the same for
many rows at once; ``gridded`` holds spectra between reading and
classifying in ``spectra predict``; ``labelled`` loads whole libraries onto
the grid for training and evaluation.
"""
