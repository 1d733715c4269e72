"""ultralytics' trainer with the plugin, what issue #22 part 1 added: ``attn_start=paper|residual`` (keys in
ultralytics' own configuration, checked in one line), ``yolo-attn train`` on an ultralytics model (flags
translated), and nothing executed from or written into a dataset (label caches, download scripts).
Tiny runs: 1 epoch on 8 images at 64, from the shipped stock ``yolo11n-shapes.pt``."""

import os
import subprocess
import sys

import pytest

from test_ultralytics_train import connections, yolo_attn

ULTRALYTICS_STOCK = 'yolo11n-shapes.pt'  # the shipped checkpoint, found by name


@pytest.fixture(scope='module')
def shapes(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('starts')
    from yolo_attn.data.shapes import generate_shapes
    return tmp, generate_shapes(tmp / 'shapes', n_train=8, n_val=4, imgsz=64, seed=0, progress=False)


def shipped_stock():
    from yolo_attn.demo import pretrained_weights
    return pretrained_weights('yolo11n-cbam')


START_RUN = """
import sys, torch, yolo_attn
from ultralytics import YOLO
stock, data, project = sys.argv[1:4]
for mode in ('paper', 'residual'):
    model = YOLO('yolo11n-cbam.yaml').load(stock)  # blend 0 on the new blocks; train() rebuilds the model from it
    model.train(data=data, epochs=1, imgsz=64, batch=4, device='cpu', workers=0, project=project, name=mode,
                plots=False, attn_start=mode)
    groups = {g['param_group']: {id(p) for p in g['params']} for g in model.trainer.optimizer.param_groups}
    state = torch.load(model.trainer.last, weights_only=False)['model'].state_dict()
    gammas = [k for k in state if k.endswith('residual_gamma')]
    in_bn = [id(p) for n, p in model.trainer.model.named_parameters() if n.endswith('residual_gamma')]
    print('RESULT', mode, sorted(gammas), any(k.endswith('attn_blend') for k in state),
          all(i in groups['bn'] for i in in_bn) and bool(in_bn) == (mode == 'residual'),
          model.trainer.args.attn_start)
"""


def test_paper_and_residual_starts_from_model_train(shapes):
    """``attn_start`` in ``model.train(...)``, after ``YOLO(yaml).load(stock)``: ``paper`` trains the papers'
    formulas (no blend left from the load), ``residual`` learned scales outside weight decay, kept in last.pt."""
    tmp, data = shapes
    stock = shipped_stock()
    env = {**os.environ, 'YOLO_CONFIG_DIR': str(tmp / 'ultralytics_settings'), 'OMP_NUM_THREADS': '1',
           'PYTHONWARNINGS': 'ignore'}
    out = subprocess.run([sys.executable, '-c', START_RUN, str(stock), str(data), str(tmp / 'starts')], cwd=tmp,
                         env=env, capture_output=True, text=True, timeout=900)
    log = out.stdout + out.stderr
    assert out.returncode == 0, log[-3000:]
    results = [line.split(' ', 2)[1:] for line in out.stdout.splitlines() if line.startswith('RESULT')]
    assert results == [['paper', "[] False True paper"],
                       ['residual', "['model.13.residual_gamma', 'model.5.residual_gamma', 'model.8.residual_gamma'] "
                                    "False True residual"]]
    assert 'attention start: paper for layers 5 (CBAM), 8 (CBAM), 13 (CBAM)' in log
    assert 'attention start: residual for layers 5 (CBAM), 8 (CBAM), 13 (CBAM)' in log
    assert 'attention start: 3 residual scales in the parameter group without weight decay' in log
    assert log.count('epoch 0 (after transfer)') == 2
    assert 'layer 5 CBAM residual |γ| mean' in log


def test_bad_attention_start_keys_are_one_line_and_make_no_run_folder(tmp_path):
    for kv, says in (('attn_start=ramps', "attn_start='ramps' is not valid: choose ramp, paper, residual"),
                     ('attn_ramp=-1', 'attn_ramp=-1 is not valid'), ('cache=disk', "cache='disk' writes an .npy")):
        out = yolo_attn(['yolo', 'detect', 'train', 'model=yolo11n-cbam.yaml', 'data=data.yaml', kv,
                         f'project={tmp_path / "runs"}'], tmp_path, tmp_path)
        err = out.stderr.strip().splitlines()
        assert out.returncode == 2 and len(err) == 1 and says in err[0], out.stderr[-2000:]
    assert not (tmp_path / 'runs').exists()


CACHE_PROBE = """
import sys, numpy as np, yolo_attn
from ultralytics.data.dataset import YOLODataset
images, cache = sys.argv[1:3]
dataset = YOLODataset(img_path=images, imgsz=64, data={'names': {i: str(i) for i in range(5)}, 'channels': 3})
print('LABELS', len(dataset.labels))
"""


class Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):  # unpickling it creates the marker file: code run from the cache
        return open, (self.marker, 'w')


def test_a_pickled_labels_cache_is_never_loaded_and_none_is_written(tmp_path):
    import numpy as np
    from yolo_attn.data.shapes import generate_shapes
    data = generate_shapes(tmp_path / 'shapes', n_train=4, n_val=2, imgsz=64, seed=0, progress=False)
    cache = data.parent / 'labels' / 'train.cache'  # where ultralytics looks for the train split's cache
    marker = tmp_path / 'payload_ran'
    with open(cache, 'wb') as f:
        np.save(f, np.array({'version': '1.0.3', 'hash': 'x', 'payload': Payload(str(marker))}, dtype=object),
                allow_pickle=True)
    before = cache.read_bytes()
    np.load(cache, allow_pickle=True)  # the payload is live: what ultralytics' own loader would run
    assert marker.exists()
    marker.unlink()
    env = {**os.environ, 'YOLO_CONFIG_DIR': str(tmp_path / 'settings'), 'OMP_NUM_THREADS': '1',
           'PYTHONWARNINGS': 'ignore'}
    out = subprocess.run([sys.executable, '-c', CACHE_PROBE, str(data.parent / 'images' / 'train'), str(cache)],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, (out.stdout + out.stderr)[-3000:]
    assert 'LABELS 4' in out.stdout  # the labels were scanned from the label files instead
    assert not marker.exists()
    assert cache.read_bytes() == before  # left as it was: not rewritten, not removed
    assert 'not read (a dataset cache is a pickle' in out.stdout + out.stderr


def test_train_command_follows_an_ultralytics_yaml(shapes):
    """``yolo-attn train --cfg yolo11n-cbam.yaml --weights W ...``: ultralytics' trainer, the flags translated,
    the backend said once, a new exp folder beside an existing one."""
    tmp, data = shapes
    stock = shipped_stock()
    project = tmp / 'v5style'
    (project / 'exp').mkdir(parents=True)
    (project / 'exp' / 'mine.txt').write_text('keep')
    out = yolo_attn(['train', '--cfg', 'yolo11n-cbam.yaml', '--data', data, '--epochs', '1', '--batch-size', '4',
                     '--imgsz', '64', '--weights', ULTRALYTICS_STOCK, '--device', 'cpu', '--workers', '0',
                     '--project', project, '--seed', '3', '--attn-start', 'residual', '--noplots'], tmp, tmp)
    log = out.stdout + out.stderr
    assert out.returncode == 0, log[-3000:]
    assert log.count('backend: ultralytics ') == 1 and 'backend: ultralytics 8.4.190 (yolo11n-cbam.yaml)' in out.stdout
    assert (project / 'exp' / 'mine.txt').read_text() == 'keep' and (project / 'exp2' / 'weights' / 'last.pt').is_file()
    import yaml
    args = yaml.safe_load(open(project / 'exp2' / 'args.yaml'))
    assert {k: args[k] for k in ('epochs', 'batch', 'imgsz', 'seed', 'attn_start', 'workers', 'plots', 'pretrained')} \
        == {'epochs': 1, 'batch': 4, 'imgsz': 64, 'seed': 3, 'attn_start': 'residual', 'workers': 0, 'plots': False,
            'pretrained': str(stock)}
    assert 'attention start: residual for layers 5 (CBAM), 8 (CBAM), 13 (CBAM)' in log
    assert 'epoch 0 (after transfer)' in log
    assert connections(out) == '[]'


def test_train_command_refuses_what_ultralytics_cannot_take_and_leaves_yolov5_alone(tmp_path):
    from yolo_attn.ultralytics.train_command import _model_and_backend
    for args, says in ((['--hyp', 'h.yaml'], '--hyp: no ultralytics equivalent in yolo-attn train'),
                       (['--epochs', '0'], '--epochs 0: must be a whole number >= 1'),
                       (['--weights', 'yolov5n-shapes.pt'], 'a yolov5 checkpoint, and --cfg yolo11n.yaml')):
        out = yolo_attn(['train', '--cfg', 'yolo11n.yaml', '--data', __file__, *args, '--project', tmp_path / 'runs'],
                        tmp_path, tmp_path)
        err = out.stderr.strip().splitlines()
        assert out.returncode == 2 and len(err) == 1 and says in err[0], out.stderr[-2000:]
    assert not (tmp_path / 'runs').exists()
    # the backend follows the model: yolov5's YAMLs and checkpoints go to yolov5's train.py unchanged
    assert _model_and_backend(['--cfg', 'yolov5n-cbam', '--weights', 'yolov5n-shapes.pt']) is None
    assert _model_and_backend(['--weights', 'yolov5n-shapes.pt', '--data', 'd.yaml']) is None
    assert _model_and_backend(['--cfg', 'yolo11n-cbam.yaml']) == ('yolo11n-cbam.yaml', None)
    assert _model_and_backend(['--cfg', 'yolo11s-se', '--weights', 'w.pt']) == ('yolo11s-se', 'w.pt')


def test_a_data_yaml_download_script_is_never_run(tmp_path):
    """ultralytics runs a data YAML's ``download:`` (Python via exec, bash, a URL) when the val images are
    missing; with the plugin that is one line and nothing runs."""
    marker = tmp_path / 'script_ran'
    (tmp_path / 'data.yaml').write_text(f'path: {tmp_path}\ntrain: images/train\nval: images/val\nnames: {{0: a}}\n'
                                        f"download: |\n  open({str(marker)!r}, 'w').write('x')\n")
    out = yolo_attn(['yolo', 'detect', 'train', 'model=yolo11n.yaml', f'data={tmp_path / "data.yaml"}', 'epochs=1',
                     'imgsz=64', 'device=cpu', f'project={tmp_path / "runs"}'], tmp_path, tmp_path)
    err = out.stderr.strip().splitlines()
    assert out.returncode == 2 and len(err) == 1, out.stderr[-2000:]
    assert "images not found, missing path" in err[0] and 'runs no download script' in err[0]
    assert not marker.exists() and connections(out) == '[]'
