"""``yolo-attn insert``: a model YAML file with blocks inserted (``surgery``), built once in its own
framework (``backend``) and written to a new file, keeping the stock layout where it can (``textedit``)."""

from __future__ import annotations

from pathlib import Path

from ..errors import ModelConfigError, UserError
from .files import load_cfg, model_rows as _rows, resolve_cfg
from .surgery import SECTION, insert_blocks, inserted_rows
from .textedit import dump_model_yaml, rewrite_rows


def build_check(d: dict, where: str) -> None:
    """Build the network once (quietly, on the CPU, in its own framework: ``backend``) so a
    shape-changing block or bad args fail here."""
    from .backend import build
    try:
        build(d)
    except ModelConfigError as e:
        raise ModelConfigError(f'{where}: {e}') from None


def insert_into_yaml_file(src_path, dst_path, block: str, after: list[int], args: list | None = None) -> dict[int, int]:
    """Write ``src_path`` (a path or a short name such as ``yolov5s``) with ``block`` inserted after
    rows ``after`` to the new file ``dst_path``; returns ``{old index: new index}``.

    The stock one-row-per-line layout is edited in place (comments, order and formatting kept);
    others are written with ``yaml.safe_dump``. Built once before writing; refuses to overwrite.
    """
    import yaml

    src, dst = resolve_cfg(src_path), Path(dst_path)
    if dst.exists():
        raise UserError(f'{dst}: already exists; refusing to overwrite it (choose another -o/--output)')
    if not dst.parent.is_dir():
        raise UserError(f'{dst}: folder {dst.parent} does not exist')
    d = load_cfg(src)
    try:
        new, mapping = insert_blocks(d, block, after, args)
    except ModelConfigError as e:
        raise ModelConfigError(f'{src}: {e}') from None
    hosts = after if isinstance(after, (list, tuple)) else [after]
    listed = ', '.join(map(str, hosts))
    build_check(new, f'{src} with {block} inserted after {listed}')
    now = ', '.join(map(str, inserted_rows(mapping, hosts, len(_rows(new)))))
    header = (f'# yolo-attn insert: {block}{f" {list(args)}" if args else ""} after layers {listed} of {src.name} '
              f'(now layers {now}).\n# Every reference was rewired: later indices shift, and layers that read a '
              f'host now read its block.\n')
    text = src.read_text(encoding='utf-8')
    out = None if SECTION in d else rewrite_rows(text, _rows(d), _rows(new), mapping, header)
    if out is None or yaml.safe_load(out) != new:
        why = ('its attention: section was expanded into rows' if SECTION in d else
               f'the layout of {src.name} is not the stock one-row-per-line layout')
        out = dump_model_yaml(new, f'{header}# (written from the parsed YAML: {why})\n')
    if yaml.safe_load(out) != new:  # pragma: no cover (dump_model_yaml round-trips by construction)
        raise RuntimeError('internal error: the written YAML does not read back as the new model')
    try:
        with open(dst, 'x', encoding='utf-8') as f:
            f.write(out)
    except FileExistsError:
        raise UserError(f'{dst}: already exists; refusing to overwrite it (choose another -o/--output)') from None
    return mapping
