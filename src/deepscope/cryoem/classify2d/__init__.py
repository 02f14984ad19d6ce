"""Reference-free 2D classification of picked particles, and the junk accounting it supports.

``align`` aligns particle images in plane; ``clustering`` classifies them
into class averages; ``junk`` scores which averages look like particles;
``run`` is ``cryoem classify`` on pick sets; ``report`` draws the montage.
"""
