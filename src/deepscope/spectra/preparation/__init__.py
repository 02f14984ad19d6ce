"""Spectra as read -> the network's input on a model's wavelength grid (no torch here).

``grid`` defines the grid and resamples spectra onto it; ``continuum``
divides them by their continuum (the network input); ``staged`` holds the
spectra ``spectra predict`` has read, gridded and scored for the flag until
the network takes them; ``labelled`` loads whole libraries for training and
evaluation.
"""
