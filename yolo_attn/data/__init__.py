"""The embedded synthetic dataset (``shapes``)."""
