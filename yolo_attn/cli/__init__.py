"""``yolo-attn`` command line: one subcommand per job; user mistakes end in one line and exit 2."""

from __future__ import annotations

import argparse
import inspect
import sys

from ..errors import UserError

COMMANDS = {}


def command(name: str, help: str, configure=None):
    """Register ``fn(args)`` as subcommand ``name``; ``configure(parser)`` adds its flags."""

    def add(fn):
        COMMANDS[name] = (fn, help, configure or (lambda p: None))
        return fn

    return add


def signature(cls) -> str:
    """``SE(c1, r=16)``: the constructor as a YAML row sees it (c1 supplied by the parser)."""
    params = inspect.signature(cls).parameters.values()
    return f"{cls.__name__}({', '.join(p.name if p.default is p.empty else f'{p.name}={p.default}' for p in params)})"


@command('blocks', 'list the registered attention blocks')
def cmd_blocks(args):
    from .. import BLOCKS
    rows = [(name, signature(cls), getattr(cls, 'paper', '')) for name, cls in sorted(BLOCKS.items())]
    width = max(len(sig) for _, sig, _ in rows)
    for name, sig, paper in rows:
        print(f'{name:<10} {sig:<{width}}  {paper}')
    return 0


def _build_configure(p):
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument('--cfg', help='model YAML: a path or a shipped name such as yolov5s-cbam')
    what.add_argument('--all', action='store_true', help="every model YAML in this project's models/")
    p.add_argument('--imgsz', type=int, default=640, help='image size for GFLOPs and the forward check')
    p.add_argument('--nc', type=int, default=None, help='override the number of classes')


@command('build', 'build a model YAML: layer table, parameters, GFLOPs, one forward check', _build_configure)
def cmd_build(args):
    from tqdm import tqdm

    from ..config.files import project_models_dir, shipped_configs
    from ..config.summary import build_model, summarize
    if args.all:
        rows = [summarize(build_model(cfg, nc=args.nc), args.imgsz) for cfg in tqdm(shipped_configs(), desc='build')]
        print(f'models in {project_models_dir()} (forward check at {args.imgsz}: ok for each)')
        for s in rows:
            print('  ' + s.line())
        return 0
    model = build_model(args.cfg, nc=args.nc, verbose=True)
    s = summarize(model, args.imgsz)
    print(s.line())
    print(f'forward check: ok ({s.expected_predictions} predictions at {args.imgsz}x{args.imgsz})')
    return 0


def _demo_configure(p):
    p.add_argument('--project', default='runs/demo', help='save to project/name')
    p.add_argument('--name', default='exp', help='save to project/name (a new exp2, exp3, ... if taken)')
    p.add_argument('--epochs', type=int, default=None, help='override the measured demo setting')
    p.add_argument('--weights', default=None,
                   help="starting checkpoint (default: the shipped pretrained stock yolov5n; '' trains from scratch)")


@command('demo', 'generate the shapes dataset, train yolov5n-cbam on CPU, validate, heatmaps', _demo_configure)
def cmd_demo(args):
    from ..demo import print_summary, run_demo
    overrides = {'epochs': args.epochs} if args.epochs else {}
    if args.weights is not None:
        overrides['weights'] = args.weights
    print_summary(run_demo(args.project, args.name, **overrides))
    return 0


def _data_configure(p):
    sub = p.add_subparsers(dest='dataset', metavar='DATASET', required=True)
    s = sub.add_parser('shapes', help='coloured shapes on textured backgrounds, 5 classes, small to large objects')
    s.add_argument('--out', required=True, help='new folder for images/, labels/ and shapes.yaml')
    s.add_argument('--train', type=int, default=256, help='number of training images')
    s.add_argument('--val', type=int, default=64, help='number of validation images')
    s.add_argument('--imgsz', type=int, default=320, help='image size (pixels, multiple of 32)')
    s.add_argument('--seed', type=int, default=0, help='random seed (same seed, same dataset)')


@command('data', 'generate an embedded synthetic dataset in YOLO format', _data_configure)
def cmd_data(args):
    from ..data.shapes import generate_shapes
    try:
        data = generate_shapes(args.out, n_train=args.train, n_val=args.val, imgsz=args.imgsz, seed=args.seed)
    except (FileExistsError, ValueError) as e:
        raise UserError(str(e)) from None
    print(f'dataset written to {data.parent}; data YAML: {data}')
    return 0


def _heatmap_configure(p):
    from ..heatmaps.run import add_arguments
    add_arguments(p)


@command('heatmap', 'one saliency PNG per detected object, an overview per image, heatmaps.json', _heatmap_configure)
def cmd_heatmap(args):
    from ..heatmaps.run import run_from_args
    return run_from_args(args)


def _heatmap_eval_configure(p):
    from ..evaluation.evaluate import add_arguments
    add_arguments(p)


@command('heatmap-eval', 'faithfulness of the heatmaps on a labelled split: pointing game, deletion/insertion, '
         'sanity check', _heatmap_eval_configure)
def cmd_heatmap_eval(args):
    from ..evaluation.evaluate import run_from_args
    return run_from_args(args)


def _heatmap_compare_configure(p):
    from ..evaluation.compare import add_arguments
    add_arguments(p)


@command('heatmap-compare', "several models' heatmaps of the same objects side by side, metrics per model",
         _heatmap_compare_configure)
def cmd_heatmap_compare(args):
    from ..evaluation.compare import run_from_args
    return run_from_args(args)


def _insert_configure(p):
    from ..config.surgery import add_insert_arguments
    add_insert_arguments(p)


@command('insert', 'write a new model YAML with a block inserted after given layers, every index rewired',
         _insert_configure)
def cmd_insert(args):
    from ..config.surgery import cmd_insert as run_insert
    return run_insert(args)


PASSTHROUGH_HELP = {'train': "yolov5's train.py (all its options), attention YAMLs allowed",
                    'val': "yolov5's val.py (all its options)", 'detect': "yolov5's detect.py (all its options)",
                    'export': "yolov5's export.py (all its options)"}


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog='yolo-attn', description='Attention blocks and heatmaps for YOLOv5.')
    sub = parser.add_subparsers(dest='command', metavar='COMMAND', required=True)
    for name, help_ in PASSTHROUGH_HELP.items():
        sub.add_parser(name, help=help_, add_help=False)
    for name, (fn, help_, configure) in COMMANDS.items():
        p = sub.add_parser(name, help=help_, description=help_)
        configure(p)
        p.set_defaults(func=fn)
    return parser


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in PASSTHROUGH_HELP:
        return _passthrough(argv[0], argv[1:])
    args = make_parser().parse_args(argv)
    try:
        import yolo_attn  # noqa: F401  (compat, registration)
        return args.func(args)
    except UserError as e:
        print(f'yolo-attn {args.command}: error: {e}', file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print('interrupted', file=sys.stderr)
        return 130


def _passthrough(script: str, argv: list[str]) -> int:
    try:
        import yolo_attn  # noqa: F401  (registration in this process, so also in every torchrun rank)
        from ..integration.scripts import run_script
        return run_script(script, argv)
    except UserError as e:
        print(f'yolo-attn {script}: error: {e}', file=sys.stderr)
        return 2


if __name__ == '__main__':
    sys.exit(main())
