"""What the bad-input tests (test_bad_*.py, test_offline.py, test_output_safety.py, test_resource_limits.py,
test_interrupts.py) share: a small workspace, an in-process ``yolo-attn`` run, input builders, and the two
checks every bad-input case goes through (exit code 2, one ``yolo-attn <command>: error:`` line). The
``no_network`` fixture they use is conftest's."""

import pathlib

import numpy as np
import torch

from yolo_attn.cli import main
from yolo_attn.config.files import load_cfg
from yolo_attn.data.shapes import generate_shapes
from yolov5.models.yolo import Model

STOCK = pathlib.Path(__import__('yolov5').__file__).parent / 'models' / 'yolov5n.yaml'
TRAIN = ['--cfg', 'yolov5n-se', '--weights', '', '--epochs', '1', '--imgsz', '64', '--device', 'cpu']
HM = ['--weights', 'ok.pt', '--source', 'ds/images/val', '--imgsz', '64']  # heatmap's arguments, less the bad one
NAMES = 'names: [a, b, c, d, e]\n'
SPLITS = 'path: DS\ntrain: images/train\nval: images/val\n'


def make_workspace(tmp_path_factory):
    """A workspace: shapes images in ``ds`` (4 train, 2 val at 64 px) and ``ok.pt``, a random-init yolov5n-se.
    Each test module makes its own, as its module-scoped ``ws`` fixture (replacing conftest's)."""
    root = tmp_path_factory.mktemp('bad')
    generate_shapes(root / 'ds', n_train=4, n_val=2, imgsz=64, progress=False)
    torch.save({'model': Model(load_cfg('yolov5n-se'), nc=5).half(), 'epoch': -1}, root / 'ok.pt')
    return root


def run_in_process(ws, monkeypatch, capsys, *argv):
    """(exit code, the ``yolo-attn ...`` lines of stderr, all of stderr) of an in-process run in ``ws``."""
    monkeypatch.chdir(ws)
    rc = main([str(a) for a in argv])
    err = capsys.readouterr().err
    return rc, [s for s in err.replace('\r', '\n').splitlines() if s.startswith('yolo-attn')], err


def snapshot(folder, hashes=True):
    """Every entry under ``folder``: its kind, size, modification time (ns) and content hash."""
    import hashlib
    out = {}
    for p in sorted(folder.rglob('*')):
        st = p.lstat()
        digest = hashlib.sha256(p.read_bytes()).hexdigest() if hashes and p.is_file() and not p.is_symlink() else None
        out[str(p.relative_to(folder))] = (p.is_dir(), st.st_size, st.st_mtime_ns, digest)
    return out


# Input builders: each makes its file in ``ws`` and returns the name to pass ----------------------------------------

def write(ws, name, text):
    (ws / name).write_text(text)
    return name


def data_yaml(ws, name, text):
    """A data YAML in ``ws``; ``DS`` in ``text`` is the shapes dataset's folder."""
    return write(ws, name, text.replace('DS', str(ws / 'ds')))


def folder(ws, name):
    (ws / name).mkdir(exist_ok=True)
    return name


def random_file(ws, name):
    (ws / name).write_bytes(np.random.default_rng(1).bytes(3000))
    return name


# The two checks of a bad-input case: ``make(ws)`` builds the command line, ``words`` must be in its one line ----------

def assert_bad_input(ws, monkeypatch, capsys, make, words):
    """Run in ``ws``: exit code 2, no traceback, one ``yolo-attn <command>: error:`` line holding ``words``."""
    argv = make(ws)
    rc, lines, err = run_in_process(ws, monkeypatch, capsys, *argv)
    assert rc == 2 and 'Traceback' not in err and len(lines) == 1, err[-2000:]
    assert lines[0].startswith(f'yolo-attn {argv[0]}: error: ') and words in lines[0], lines[0]


def absolute(ws, arg) -> str:
    """``arg``, or ``ws / arg`` where that names an input made in ``ws`` (the case runs elsewhere)."""
    arg = str(arg)
    try:
        return str(ws / arg) if arg and not arg.startswith('-') and (ws / arg).exists() else arg
    except OSError:  # e.g. a name too long for the filesystem
        return arg


def assert_bad_input_isolated(ws, monkeypatch, capsys, no_network, tmp_path, make, words):
    """Run from an empty folder: as ``assert_bad_input``, and that line is the last thing said, no
    connection or child process was attempted, ``ws`` is unchanged and nothing but ``runs/`` appeared."""
    argv = [absolute(ws, a) for a in make(ws)]
    before = snapshot(ws, hashes=False)
    monkeypatch.chdir(tmp_path)  # an empty working folder: runs/ may appear there, nothing else
    try:
        rc = main(argv)
    except SystemExit as e:  # argparse's own refusals (usage, then one error line)
        rc = e.code
    err = capsys.readouterr().err
    lines = [s for s in err.replace('\r', '\n').splitlines() if s.startswith('yolo-attn')]
    assert rc == 2 and 'Traceback' not in err and len(lines) == 1, err[-2000:]
    assert lines[0].startswith(f'yolo-attn {argv[0]}: error: ') and words in lines[0], lines[0]
    assert err.strip().splitlines()[-1] == lines[0]  # the last thing said
    assert no_network == []
    assert snapshot(ws, hashes=False) == before
    assert all(p.parts[0] == 'runs' for p in (q.relative_to(tmp_path) for q in tmp_path.rglob('*'))), \
        sorted(tmp_path.rglob('*'))
