"""``index.html`` for every ``heatmap``, ``heatmap-eval`` and ``heatmap-compare`` run: one
self-contained page (inline CSS/JS, images by relative path, nothing from the network) that shows
what the run wrote. ``page`` is the shared frame; one module per command. See docs/report.md.
"""
