"""Stellar spectra: MK classification with networks and template matching."""
