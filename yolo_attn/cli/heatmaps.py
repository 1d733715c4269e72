"""``yolo-attn heatmap | heatmap-eval | heatmap-compare``: the saliency maps and their evaluation.

The flags are set up by ``cli.flags`` (light: ``--help`` and argument errors answer at once); each
command's ``run`` (``heatmaps.runner``, ``evaluation.evaluate``, ``evaluation.compare``) is imported
only when the command runs.
"""

from __future__ import annotations

from . import flags
from .command import Command


def run_heatmap(args) -> int:
    from ..heatmaps.runner import run
    run(**flags.kwargs_for(run, args))
    return 0


def run_eval(args) -> int:
    from ..evaluation.evaluate import run
    from ..evaluation.options import check
    run(**check(flags.kwargs_for(run, args)))
    return 0


def run_compare(args) -> int:
    from ..evaluation.compare import run
    from ..evaluation.options import check
    run(**check(flags.kwargs_for(run, args)))
    return 0


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
                       *guarded(run_heatmap, flags.add_heatmap_arguments)),
    'heatmap-eval': Command('faithfulness of the heatmaps on a labelled split: pointing game, deletion/insertion, '
                            'sanity check', *guarded(run_eval, flags.add_eval_arguments)),
    'heatmap-compare': Command("several models' heatmaps of the same objects side by side, metrics per model",
                               *guarded(run_compare, flags.add_compare_arguments)),
}
