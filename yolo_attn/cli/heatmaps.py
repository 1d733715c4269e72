"""``yolo-attn heatmap | heatmap-eval | heatmap-compare``: the saliency maps and their evaluation.

Each command's flags are set up by a light module (``heatmaps.flags``, ``evaluation.options``:
no torch, pytorch-grad-cam, OpenCV or yolov5, so ``--help`` and argument errors answer at once);
its run lives with its code (``heatmaps.run``, ``evaluation.evaluate``, ``evaluation.compare``:
``run_from_args``), imported only when the command runs.
"""

from __future__ import annotations

from .command import Command


def configure_heatmap(p) -> None:
    from ..heatmaps.flags import add_arguments
    add_arguments(p)


def run_heatmap(args) -> int:
    from ..heatmaps.run import run_from_args
    return run_from_args(args)


def configure_eval(p) -> None:
    from ..evaluation.options import add_eval_arguments
    add_eval_arguments(p)


def run_eval(args) -> int:
    from ..evaluation.evaluate import run_from_args
    return run_from_args(args)


def configure_compare(p) -> None:
    from ..evaluation.options import add_compare_arguments
    add_compare_arguments(p)


def run_compare(args) -> int:
    from ..evaluation.compare import run_from_args
    return run_from_args(args)


def guarded(run, configure):
    """``(run, configure)`` with the image commands' shared rules (``guards``): ``--max-pixels``, and
    no URL in any flag."""

    def configure_guarded(p) -> None:
        configure(p)
        from ..guards import images
        images.add_argument(p)

    def run_guarded(args) -> int:
        from ..guards import images, paths
        images.set_max_pixels(vars(args).pop('max_pixels', None))
        paths.refuse_urls(vars(args))
        return run(args)

    return run_guarded, configure_guarded


COMMANDS = {
    'heatmap': Command('one saliency PNG per detected object, an overview per image, heatmaps.json',
                       *guarded(run_heatmap, configure_heatmap)),
    'heatmap-eval': Command('faithfulness of the heatmaps on a labelled split: pointing game, deletion/insertion, '
                            'sanity check', *guarded(run_eval, configure_eval)),
    'heatmap-compare': Command("several models' heatmaps of the same objects side by side, metrics per model",
                               *guarded(run_compare, configure_compare)),
}
