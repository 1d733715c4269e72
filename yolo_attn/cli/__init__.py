"""``yolo-attn`` command line: one module per group of commands, one home for the common rules.

``main`` reads the global options (``--import MODULE[,MODULE]``), then sets up only the chosen
command's flags, importing nothing heavy before that. User mistakes (``UserError``) end in one line
``yolo-attn COMMAND: error: ...``, exit code 2; Ctrl-C exits 130. Modules: ``model``, ``data``,
``heatmaps``, ``scripts`` (yolov5's own). Reference: docs/cli.md.
"""

from __future__ import annotations

import argparse
import sys

from ..errors import OptionError, UserError
from . import data, heatmaps, model, scripts

GROUPS = (model, data, heatmaps, scripts)
COMMANDS = {name: spec for group in GROUPS for name, spec in group.COMMANDS.items()}
IMPORT_HELP = ('import these modules first (comma-separated, importable from the working folder or '
               'installed): their @register_block classes become usable in --cfg YAMLs and checkpoints; '
               'also read from the YOLO_ATTN_IMPORTS environment variable')


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Every option's help ends with its default (not for flags, nor where it is ``None``)."""

    def _get_help_string(self, action):
        if action.default is None or action.default is False or action.nargs == 0:
            return action.help
        return super()._get_help_string(action)


def split_global_options(argv: list[str]) -> tuple[list[str], list[str]]:
    """``(--import values, the rest)``: global options stand before the command."""
    imports, i = [], 0
    while i < len(argv):
        arg = argv[i]
        if arg == '--import':
            if i + 1 >= len(argv) or argv[i + 1].startswith('-'):
                raise UserError('--import needs a module name, e.g. yolo-attn --import myblocks train ...')
            imports.append(argv[i + 1])
            i += 2
        elif arg.startswith('--import='):
            imports.append(arg.split('=', 1)[1])
            i += 1
        else:
            break
    return imports, argv[i:]


def make_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser; the flags of ``command`` only (the others are listed by name and help)."""
    parser = argparse.ArgumentParser(prog='yolo-attn', description='Attention blocks and heatmaps for YOLOv5.',
                                     epilog='yolo-attn COMMAND --help shows the options of COMMAND')
    parser.add_argument('--import', dest='imports', action='append', default=[], metavar='MODULE[,MODULE]',
                        help=IMPORT_HELP)
    sub = parser.add_subparsers(dest='command', metavar='COMMAND', required=True)
    for name, spec in COMMANDS.items():
        p = sub.add_parser(name, help=spec.help, description=spec.help, formatter_class=HelpFormatter,
                           add_help=spec.configure is not None)
        if name == command and spec.configure is not None:
            spec.configure(p)
        p.set_defaults(func=spec.run)
    return parser


def _fail(command, message: str) -> int:
    print(f"yolo-attn{' ' + command if command else ''}: error: {message}", file=sys.stderr)
    return 2


def main(argv=None) -> int:
    """The ``yolo-attn`` console script (also ``python -m yolo_attn``, also under ``torchrun -m``)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    command = None
    try:
        imports, argv = split_global_options(argv)
        command = argv[0] if argv else None
        from ..blocks.plugins import import_user_modules
        if command in scripts.COMMANDS:  # yolov5's own parser reads the rest, unchanged
            import_user_modules(imports)
            return scripts.run(command, argv[1:])
        args = make_parser(command).parse_args(argv)
        import_user_modules(imports)
        return args.func(args)
    except OptionError as e:  # a library call's option, named as the flag the user typed
        return _fail(command, e.cli_message())
    except UserError as e:
        return _fail(command, str(e))
    except KeyboardInterrupt as e:  # a message, if any, says where the run's files are
        print(f'interrupted; {e}' if str(e) else 'interrupted', file=sys.stderr)
        return 130


if __name__ == '__main__':
    sys.exit(main())
