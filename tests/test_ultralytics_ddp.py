"""ultralytics' multi-GPU path rebuilds the trainer in a fresh process from a generated worker file
(``utils/dist.py generate_ddp_file``). That worker, run in a fresh process that never imported
yolo_attn, trains the attention model — shipped blocks and a user's block (``YOLO_ATTN_IMPORTS``)."""

import os
import subprocess
import sys
import textwrap

import torch
import yaml

from test_user_blocks import BLOCK_SOURCE


def test_generated_ddp_worker_builds_the_attention_model_in_a_fresh_process(tmp_path, monkeypatch):
    from yolo_attn.data.shapes import generate_shapes
    data = generate_shapes(tmp_path / 'shapes', n_train=4, n_val=2, imgsz=64, seed=0, progress=False)
    (tmp_path / 'mygate.py').write_text(BLOCK_SOURCE.format(name='MyDdpGate'))
    import ultralytics
    stock = yaml.safe_load(open(os.path.join(os.path.dirname(ultralytics.__file__), 'cfg/models/11/yolo11.yaml')))
    stock['attention'] = [{'block': 'CBAM', 'after': [4], 'args': [16, 7]}, {'block': 'MyDdpGate', 'after': [6]}]
    (tmp_path / 'yolo11n-mine.yaml').write_text(yaml.safe_dump(stock, sort_keys=False))
    env = {**os.environ, 'YOLO_CONFIG_DIR': str(tmp_path / 'settings'), 'OMP_NUM_THREADS': '1',
           'PYTHONWARNINGS': 'ignore', 'YOLO_ATTN_IMPORTS': 'mygate', 'PYTHONPATH': str(tmp_path)}
    make = textwrap.dedent(f'''
        import yolo_attn
        from ultralytics.models.yolo.detect import DetectionTrainer
        from ultralytics.utils.dist import generate_ddp_file
        t = DetectionTrainer(overrides=dict(model={str(tmp_path / 'yolo11n-mine.yaml')!r}, data={str(data)!r},
                             epochs=1, imgsz=64, batch=2, device='cpu', workers=0, project={str(tmp_path / 'runs')!r},
                             name='worker', plots=False))
        print('FILE', generate_ddp_file(t))
    ''')
    made = subprocess.run([sys.executable, '-c', make], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=600)
    assert made.returncode == 0, made.stderr[-3000:]
    worker = made.stdout.split('FILE')[-1].strip()
    assert 'yolo_attn' not in open(worker).read()  # the file is ultralytics' own; nothing of ours is written in it
    run = subprocess.run([sys.executable, worker], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, (run.stdout + run.stderr)[-3000:]
    monkeypatch.syspath_prepend(str(tmp_path))  # the user's module, to read the checkpoint here
    ckpt = torch.load(tmp_path / 'runs' / 'worker' / 'weights' / 'last.pt', weights_only=False)
    model = ckpt.get('model') or ckpt.get('ema')
    assert [type(model.model[i]).__name__ for i in (5, 8)] == ['CBAM', 'MyDdpGate']
    sys.modules.pop('mygate', None)
