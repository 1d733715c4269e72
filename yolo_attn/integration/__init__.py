"""Everything that patches or drives yolov5: compat fixes, the parse_model hook, the checkpoint
allowlist, dataset checks and yolov5's train/val/detect/export scripts."""
