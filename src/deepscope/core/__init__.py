"""Domain-free machinery shared by the galaxy, spectra and cryo-EM pipelines."""
