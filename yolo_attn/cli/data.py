"""``yolo-attn data | demo``: the embedded dataset and the end-to-end demo."""

from __future__ import annotations

from ..errors import UserError
from .command import Command


def configure_data(p) -> None:
    sub = p.add_subparsers(dest='dataset', metavar='DATASET', required=True)
    s = sub.add_parser('shapes', help='coloured shapes on textured backgrounds, 5 classes, small to large objects',
                       formatter_class=p.formatter_class)
    s.add_argument('--out', required=True, help='new folder for images/, labels/ and shapes.yaml')
    from ..data import SIZES
    s.add_argument('--train', type=int, default=SIZES['n_train'], help='number of training images')
    s.add_argument('--val', type=int, default=SIZES['n_val'], help='number of validation images')
    s.add_argument('--imgsz', type=int, default=SIZES['imgsz'], help='image size (pixels, multiple of 32)')
    s.add_argument('--seed', type=int, default=SIZES['seed'], help='random seed (same seed, same dataset)')
    s.add_argument('--difficulty', choices=('easy', 'hard'), default='easy',
                   help='hard: distractor shapes, clutter, more occlusion and small objects (same 5 classes)')
    from ..guards import images
    images.add_argument(s)


def run_data(args) -> int:
    from ..data.shapes import generate_shapes
    from ..guards import images
    images.set_max_pixels(args.max_pixels)
    images.check_imgsz(args.imgsz)  # each image is drawn in memory at this size
    try:
        data = generate_shapes(args.out, n_train=args.train, n_val=args.val, imgsz=args.imgsz, seed=args.seed,
                               difficulty=args.difficulty)
    except (FileExistsError, ValueError) as e:
        raise UserError(str(e)) from None
    print(f'dataset written to {data.parent}; data YAML: {data}')
    return 0


def configure_demo(p) -> None:
    from ..guards.paths import PROJECTS, RUN_NAME
    p.add_argument('--project', default=PROJECTS['demo'], help='save to project/name')
    p.add_argument('--name', default=RUN_NAME, help='save to project/name (a new exp2, exp3, ... if taken)')
    p.add_argument('--model', default='yolov5n-cbam',
                   help="yolov5n-* (yolov5's train.py) or yolo11n-* (ultralytics' trainer), e.g. yolo11n-cbam; "
                        'each starts from its shipped stock checkpoint')
    p.add_argument('--epochs', type=int, default=None, help='override the measured demo setting (20)')
    p.add_argument('--weights', default=None,
                   help="starting checkpoint (default: the shipped yolov5n-shapes.pt, or yolo11n-shapes.pt for a "
                        "yolo11n model; '' trains from scratch)")


def run_demo(args) -> int:
    from ..demo import print_summary, run_demo as demo
    from ..errors import OptionError
    if args.epochs is not None and args.epochs < 1:  # 0 is not "the default": it would train 20
        raise OptionError('epochs', f'{args.epochs}: must be a whole number >= 1')
    from ..demo import check_model
    overrides = {'epochs': args.epochs} if args.epochs is not None else {}
    overrides['cfg'] = check_model(args.model)  # a bad --model is one line before anything is made
    if args.weights is not None:
        overrides['weights'] = args.weights
    print_summary(demo(args.project, args.name, **overrides))
    return 0


COMMANDS = {
    'data': Command('generate an embedded synthetic dataset in YOLO format', run_data, configure_data),
    'demo': Command('generate the shapes dataset, train yolov5n-cbam (or --model yolo11n-cbam) on CPU, validate, '
                    'heatmaps', run_demo,
                    configure_demo),
}
