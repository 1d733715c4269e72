"""Choke points for everything a user hands us: path flags, run folders, images, output files.

Each kind of input passes through one function here, so a rule is written once and holds for
every subcommand: ``paths`` (URLs refused, run folders claimed atomically inside ``--project``,
folder walks that survive symlink loops), ``images`` (one decoder with a pixel limit, unreadable
images skipped and recorded), ``outputs`` (JSON written whole or not at all).
"""

UNSAFE_ENV = 'YOLO_ATTN_UNSAFE_TRUST_CHECKPOINTS'  # =1: checkpoints unpickled in full (files you trust only)
