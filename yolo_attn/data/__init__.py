"""The embedded synthetic dataset (``shapes``)."""

SIZES = {'n_train': 256, 'n_val': 64, 'imgsz': 320, 'seed': 0}  # `yolo-attn data shapes` and the demo
