"""``yolo-attn blocks | build | insert``: the block registry and the model YAMLs."""

from __future__ import annotations

import argparse
import inspect

from ..guards.images import IMGSZ
from .command import Command


def signature(cls) -> str:
    """``SE(c1, r=16)``: the constructor as a YAML row sees it (c1 supplied by the parser)."""
    params = inspect.signature(cls).parameters.values()
    return f"{cls.__name__}({', '.join(p.name if p.default is p.empty else f'{p.name}={p.default}' for p in params)})"


def configure_blocks(p) -> None:
    p.add_argument('--weights', default=None,
                   help="a checkpoint: list its blocks and how much each changes its features on --source instead")
    p.add_argument('--source', default=None, help='images for --weights (file, folder, glob or .txt list)')
    p.add_argument('--imgsz', type=int, default=IMGSZ, help='inference size for --weights')
    p.add_argument('--max-images', type=int, default=8, help='images of --source measured')


def run_blocks(args) -> int:
    if args.weights or args.source:
        return run_block_strength(args)
    from ..blocks.plugins import registered
    rows = [(name, signature(cls), getattr(cls, 'paper', '')) for name, cls in sorted(registered().items())]
    width = max(len(sig) for _, sig, _ in rows)
    for name, sig, paper in rows:
        print(f'{name:<10} {sig:<{width}}  {paper}')
    return 0


def run_block_strength(args) -> int:
    """``blocks --weights W --source S``: each block of W, its mix and mean |y - x| / mean |x| on S."""
    from ..errors import OptionError, UserError
    if not (args.weights and args.source):
        raise UserError('give both --weights (a checkpoint) and --source (images) to measure its blocks')
    if args.max_images < 1:
        raise OptionError('max_images', f'{args.max_images}: must be at least 1')
    from ..blocks.strength import block_strength
    from ..guards import images
    from ..heatmaps.api import first_images, load_model
    images.check_imgsz(args.imgsz)
    model = load_model(args.weights)
    ims = first_images(model, args.source, args.imgsz, args.max_images)
    if not ims:
        raise UserError(f'--source {args.source}: no images found')
    rows = block_strength(model, ims)
    if not rows:
        print(f'{args.weights}: no registered attention block in this model')
        return 0
    print(f'{args.weights}: {len(rows)} attention blocks, measured on {len(ims)} images at {args.imgsz} '
          f'(mean |y - x| / mean |x|)')
    for r in rows:
        print('  ' + r.line())
    return 0


def configure_build(p) -> None:
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument('--cfg', help='model YAML: a path or a shipped name such as yolov5s-cbam')
    what.add_argument('--all', action='store_true', help='every shipped model YAML (yolo_attn/models/)')
    p.add_argument('--imgsz', type=int, default=IMGSZ, help='image size for GFLOPs and the forward check')
    p.add_argument('--nc', type=int, default=None, help="override the number of classes (default: the YAML's nc)")
    from ..guards import images
    images.add_argument(p)


def run_build(args) -> int:
    from tqdm import tqdm

    from ..config.files import shipped_configs, shipped_dir
    from ..config.summary import build_model, summarize
    from ..guards import images
    images.set_max_pixels(args.max_pixels)
    images.check_imgsz(args.imgsz)  # the forward check runs at this size
    if args.all:
        rows = [summarize(build_model(cfg, nc=args.nc), args.imgsz) for cfg in tqdm(shipped_configs(), desc='build')]
        print(f'models in {shipped_dir()} (forward check at {args.imgsz}: ok for each)')
        for s in rows:
            print('  ' + s.line())
        return 0
    from ..config.backend import ULTRALYTICS, backend_of, build
    from ..config.files import load_cfg
    d = load_cfg(args.cfg)
    if backend_of(d) == ULTRALYTICS:  # ultralytics' own layer table and summary line
        model = build(d, nc=args.nc)
        model.info(verbose=True, imgsz=args.imgsz)
        print(f"forward check: ok (ultralytics model, scale {model.yaml.get('scale', '-')})")
        return 0
    model = build_model(args.cfg, nc=args.nc, verbose=True)
    s = summarize(model, args.imgsz)
    print(s.line())
    print(f'forward check: ok ({s.expected_predictions} predictions at {args.imgsz}x{args.imgsz})')
    return 0


def _ints(text: str) -> list[int]:
    try:
        return [int(x) for x in text.split(',') if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f'expected comma-separated layer indices such as 4,6,9, got {text!r}') from None


def _numbers(text: str) -> list:
    out = []
    for x in (x.strip() for x in text.split(',')):
        if not x:
            continue
        try:
            out.append(int(x))
        except ValueError:
            try:
                out.append(float(x))
            except ValueError:
                raise argparse.ArgumentTypeError(f'expected comma-separated numbers such as 16,7, got {x!r}') from None
    return out


def configure_insert(parser) -> None:
    parser.add_argument('--cfg', required=True, help='model YAML: a path or a name such as yolov5s, yolov5s-seg')
    parser.add_argument('--block', required=True, help='registered attention block (`yolo-attn blocks`), e.g. CBAM')
    parser.add_argument('--after', required=True, type=_ints, help='layer indices of --cfg as written, e.g. 4,6,9')
    parser.add_argument('--args', type=_numbers, default=[],
                        help="the block's YAML args after the input channels, e.g. 16,7 (ints or floats)")
    parser.add_argument('-o', '--output', required=True, help='new YAML file (never overwritten)')


def _ranges(mapping: dict[int, int]) -> str:
    """``0-4 -> 0-4, 5-6 -> 6-7, ...``: runs of consecutive layers that moved by the same amount."""
    runs = []
    for old, new in sorted(mapping.items()):
        if runs and old == runs[-1][1] + 1 and new - old == runs[-1][2]:
            runs[-1][1] = old
        else:
            runs.append([old, old, new - old])
    fmt = lambda a, b: f'{a}' if a == b else f'{a}-{b}'  # noqa: E731
    return ', '.join(f'{fmt(a, b)} -> {fmt(a + s, b + s)}' for a, b, s in runs)


def run_insert(args) -> int:
    """Write the new YAML and print where the blocks went and the layer map."""
    from ..config.files import load_cfg, model_rows, resolve_cfg
    from ..config.insert_file import insert_into_yaml_file
    from ..config.surgery import inserted_rows
    src = resolve_cfg(args.cfg)
    mapping = insert_into_yaml_file(src, args.output, args.block, args.after, args.args)
    n_new = len(model_rows(load_cfg(args.output)))
    new_rows = ', '.join(map(str, inserted_rows(mapping, args.after, n_new)))
    print(f'wrote {args.output}: {args.block}{f" {args.args}" if args.args else ""} after layers '
          f'{", ".join(map(str, args.after))} of {src.name} (new layers {new_rows})')
    print(f'layer map (old -> new): {_ranges(mapping)}')
    return 0


COMMANDS = {
    'blocks': Command('list the registered attention blocks (with --import: yours too); with --weights and '
                      "--source: how much each block of a model changes its features", run_blocks, configure_blocks),
    'build': Command('build a model YAML: layer table, parameters, GFLOPs, one forward check', run_build,
                     configure_build),
    'insert': Command('write a new model YAML with a block inserted after given layers, every index rewired',
                      run_insert, configure_insert),
}
