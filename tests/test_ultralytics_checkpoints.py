"""Ultralytics checkpoints after ``import yolo_attn``: weights-only loading in every caller (``YOLO(path)``
too), a model with our blocks round-trips in a fresh process, a pickle payload never runs, and a
checkpoint naming a missing module installs nothing."""

import os
import subprocess
import sys
import textwrap

import pytest

BUILD_AND_SAVE = '''
    import torch, yolo_attn
    from ultralytics.nn import tasks
    from ultralytics.utils import YAML
    import ultralytics, pathlib
    d = YAML.load(pathlib.Path(ultralytics.__file__).parent / 'cfg/models/11/yolo11.yaml')
    d['scale'] = 'n'
    d['backbone'].append([-1, 1, 'SE', []])  # after SPPF/C2PSA: later rows index earlier ones by number
    for row in d['head']:
        f = row[0]
        row[0] = [x + 1 if x >= len(d['backbone']) - 1 else x for x in f] if isinstance(f, list) else f
    torch.manual_seed(0)
    m = tasks.DetectionModel(d, ch=3, nc=2, verbose=False).eval()
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        y = m(x)[0]
    torch.save({'model': m, 'train_args': {}}, PATH)
    torch.save({'x': x, 'y': y}, REF)
'''

LOAD = '''
    import torch, yolo_attn
    from ultralytics import YOLO
    model = YOLO(PATH).model.eval()
    ref = torch.load(REF)
    with torch.no_grad():
        y = model(ref['x'])[0]
    print('RESULT', type(model.model[11]).__name__, float((y - ref['y']).abs().max()))
'''


def python(code: str, tmp_path, **env):
    env = {**os.environ, 'YOLO_CONFIG_DIR': str(tmp_path / 'cfg'), 'YOLO_OFFLINE': '1', 'OMP_NUM_THREADS': '1',
           'PYTHONWARNINGS': 'ignore', **env}
    env.pop('YOLO_ATTN_UNSAFE_TRUST_CHECKPOINTS', None)
    return subprocess.run([sys.executable, '-c', textwrap.dedent(code)], env=env, capture_output=True, text=True,
                          timeout=300, cwd=tmp_path)


def test_a_model_with_our_block_round_trips_in_a_fresh_process(tmp_path):
    path, ref = str(tmp_path / 'se.pt'), str(tmp_path / 'ref.pt')
    made = python(BUILD_AND_SAVE.replace('PATH', repr(path)).replace('REF', repr(ref)), tmp_path)
    assert made.returncode == 0, made.stderr[-3000:]
    loaded = python(LOAD.replace('PATH', repr(path)).replace('REF', repr(ref)), tmp_path)
    assert loaded.returncode == 0, loaded.stderr[-3000:]
    name, diff = loaded.stdout.split('RESULT')[-1].split()
    assert name == 'SE' and float(diff) == 0.0


@pytest.mark.parametrize('payload', ['code', 'missing module'])
def test_a_checkpoint_that_would_run_code_or_install_is_refused(tmp_path, payload):
    marker = tmp_path / 'ran'
    make = f'''
        import os, pickle, torch
        class Payload:
            def __reduce__(self):
                return (os.system, ('touch {marker}',))
        obj = {{'model': Payload()}}
        torch.save(obj, {str(tmp_path / 'bad.pt')!r})
    ''' if payload == 'code' else f'''
        import sys, types, torch
        fake = types.ModuleType('notinstalledblocks')
        class Gate(torch.nn.Module):
            pass
        Gate.__module__ = 'notinstalledblocks'
        fake.Gate = Gate
        sys.modules['notinstalledblocks'] = fake
        torch.save({{'model': Gate()}}, {str(tmp_path / 'bad.pt')!r})
    '''
    made = python(make, tmp_path)
    assert made.returncode == 0, made.stderr[-2000:]
    r = python(f'''
        import yolo_attn
        from ultralytics import YOLO
        try:
            YOLO({str(tmp_path / 'bad.pt')!r})
        except yolo_attn.UserError as e:
            print('REFUSED', e)
    ''', tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    assert 'REFUSED' in r.stdout and 'bad.pt' in r.stdout
    assert len(r.stdout.split('REFUSED')[1].strip().splitlines()) == 1  # one line
    assert not marker.exists()  # the payload never ran
    assert 'AutoInstall' not in r.stdout + r.stderr  # nothing installed


def test_yolov5_commands_name_the_ultralytics_backend_in_one_line(tmp_path, cli):
    """An ultralytics checkpoint handed to a yolov5 command is one line pointing to `yolo-attn yolo`."""
    made = python('''
        import torch, yolo_attn
        from ultralytics.nn import tasks
        from ultralytics.utils import YAML
        import ultralytics, pathlib
        d = YAML.load(pathlib.Path(ultralytics.__file__).parent / 'cfg/models/11/yolo11.yaml')
        d['scale'] = 'n'
        torch.save({'model': tasks.DetectionModel(d, ch=3, nc=2, verbose=False)}, 'u.pt')
    ''', tmp_path)
    assert made.returncode == 0, made.stderr[-2000:]
    (tmp_path / 'im').mkdir()
    for args in (('detect', '--weights', 'u.pt', '--source', 'im'),):  # train follows the model: test_ultralytics_train
        out = cli(*args, cwd=tmp_path)
        assert out.returncode == 2, out.stderr[-2000:]
        last = out.stderr.strip().splitlines()[-1]
        assert last.startswith(f'yolo-attn {args[0]}: error:') and 'ultralytics' in last and 'yolo-attn yolo' in last
        assert 'Traceback' not in out.stderr
    out = cli('build', '--cfg', 'yolo11-se', '--imgsz', '64', cwd=tmp_path)
    assert out.returncode == 0 and 'forward check: ok (ultralytics model, scale n)' in out.stdout, out.stderr[-2000:]
