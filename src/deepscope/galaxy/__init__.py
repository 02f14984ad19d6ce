"""Galaxy bar detection (and other morphology tasks) in SDSS colour cutouts."""
