"""A user's own block from the CLI, by each of the three ways to name its module.

``--import MODULE`` (the module next to the user, found from the working folder by the console
script), ``YOLO_ATTN_IMPORTS=MODULE`` (the environment, as torchrun ranks get it) and the entry-point
group ``yolo_attn.blocks`` (an installed package: here a dist-info folder on ``PYTHONPATH``, no
flag at all). Each one makes the block work in build, train (one tiny epoch), val and heatmap,
run as subprocesses of the real console script. Without any of them the same YAML is refused.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

CONSOLE = Path(sys.executable).parent / 'yolo-attn'
IMGSZ = '64'

BLOCK_SOURCE = '''
import torch
import torch.nn as nn

from yolo_attn import register_block


class GateScale(nn.Module):  # a helper class the block holds: on the allowlist with it
    def __init__(self, c1):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(1, c1, 1, 1))

    def forward(self, x):
        return 1 + torch.tanh(self.w)


@register_block(paper='a test block')
class {name}(nn.Module):
    def __init__(self, c1):
        super().__init__()
        self.scale = GateScale(c1)

    def forward(self, x):
        return x * self.scale(x)
'''


def run(args, cwd, env_extra=None, timeout=600):
    env = {**os.environ, 'PYTHONWARNINGS': 'ignore', 'OMP_NUM_THREADS': '1'}
    for k in ('YOLO_ATTN_IMPORTS', 'PYTHONPATH'):
        env.pop(k, None)
    env.update(env_extra or {})
    return subprocess.run([str(CONSOLE), *map(str, args)], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    from yolo_attn.data.shapes import generate_shapes
    return generate_shapes(tmp_path_factory.mktemp('ub') / 'shapes', n_train=4, n_val=2, imgsz=64, seed=0,
                           progress=False)


def model_yaml(folder: Path, block: str) -> Path:
    """yolov5n with the user's block after layers 4 and 9 (an ``attention:`` section)."""
    from yolo_attn.config.files import load_cfg
    d = load_cfg('yolov5n')
    d['nc'] = 5
    d['attention'] = [{'block': block, 'after': [4, 9]}]
    path = folder / f'yolov5n-{block.lower()}.yaml'
    path.write_text(yaml.safe_dump(d, sort_keys=False))
    return path


def check_everywhere(cwd: Path, data: Path, cfg: Path, block: str, flags=(), env=None):
    """build, train one epoch, val and heatmap with the user block; each exits 0 and shows it."""
    out = run([*flags, 'build', '--cfg', cfg, '--imgsz', IMGSZ], cwd, env)
    assert out.returncode == 0, out.stderr[-2000:]
    assert (out.stdout + out.stderr).count(block) >= 2  # the layer table lists the two inserted blocks
    project = cwd / 'runs'
    out = run([*flags, 'train', '--cfg', cfg, '--data', data, '--weights', '', '--epochs', '1', '--batch-size', '2',
               '--imgsz', IMGSZ, '--device', 'cpu', '--workers', '0', '--noplots', '--project', project,
               '--name', 'train'], cwd, env)
    assert out.returncode == 0, out.stderr[-2000:]
    best = project / 'train' / 'weights' / 'best.pt'
    assert best.is_file()
    out = run([*flags, 'val', '--weights', best, '--data', data, '--imgsz', IMGSZ, '--device', 'cpu',
               '--project', project, '--name', 'val'], cwd, env)
    assert out.returncode == 0, out.stderr[-2000:]
    assert 'all' in out.stdout + out.stderr  # yolov5's results table
    out = run([*flags, 'heatmap', '--weights', best, '--source', data.parent / 'images' / 'val', '--imgsz', IMGSZ,
               '--conf-thres', '0.0001', '--max-det', '2', '--project', project, '--name', 'heat'], cwd, env)
    assert out.returncode == 0, out.stderr[-2000:]
    manifest = json.loads((project / 'heat' / 'heatmaps.json').read_text())
    assert len(manifest['images']) == 2
    return best


def test_without_a_mechanism_the_block_is_unknown(tmp_path):
    (tmp_path / 'myblocks.py').write_text(BLOCK_SOURCE.format(name='NotImported'))
    out = run(['build', '--cfg', model_yaml(tmp_path, 'NotImported'), '--imgsz', IMGSZ], tmp_path)
    assert out.returncode == 2 and 'NotImported' in out.stderr and 'Traceback' not in out.stderr


def test_import_flag_from_the_working_folder(tmp_path, data):
    (tmp_path / 'myblocks.py').write_text(BLOCK_SOURCE.format(name='FlagGate'))
    best = check_everywhere(tmp_path, data, model_yaml(tmp_path, 'FlagGate'), 'FlagGate',
                            flags=('--import', 'myblocks'))
    # the checkpoint holds the user's classes: refused without the import, in one line
    out = run(['val', '--weights', best, '--data', data, '--imgsz', IMGSZ, '--device', 'cpu',
               '--project', tmp_path / 'runs', '--name', 'val'], tmp_path)
    assert out.returncode == 2 and 'myblocks' in out.stderr and 'Traceback' not in out.stderr


def test_environment_variable(tmp_path, data):
    (tmp_path / 'envblocks.py').write_text(BLOCK_SOURCE.format(name='EnvGate'))
    check_everywhere(tmp_path, data, model_yaml(tmp_path, 'EnvGate'), 'EnvGate',
                     env={'YOLO_ATTN_IMPORTS': 'envblocks'})


def test_entry_point_group_of_an_installed_package(tmp_path, data):
    site = tmp_path / 'site'  # what pip writes for a package: the module and its dist-info
    (site / 'gatepkg').mkdir(parents=True)
    (site / 'gatepkg' / '__init__.py').write_text(BLOCK_SOURCE.format(name='PkgGate'))
    info = site / 'gatepkg-0.1.dist-info'
    info.mkdir()
    (info / 'METADATA').write_text('Metadata-Version: 2.1\nName: gatepkg\nVersion: 0.1\n')
    (info / 'entry_points.txt').write_text('[yolo_attn.blocks]\ngatepkg = gatepkg\n')
    work = tmp_path / 'work'  # not the package's folder: only the entry point can find it
    work.mkdir()
    check_everywhere(work, data, model_yaml(work, 'PkgGate'), 'PkgGate', env={'PYTHONPATH': str(site)})


def test_bad_module_names_are_one_line(tmp_path):
    out = run(['--import', 'nosuchmodule', 'blocks'], tmp_path)
    assert out.returncode == 2 and "no module named 'nosuchmodule'" in out.stderr and 'Traceback' not in out.stderr
    (tmp_path / 'broken.py').write_text('raise RuntimeError("boom")\n')
    out = run(['blocks'], tmp_path, {'YOLO_ATTN_IMPORTS': 'broken'})
    assert out.returncode == 2 and 'RuntimeError: boom' in out.stderr and 'broken.py:1' in out.stderr
    out = run(['--import', 'not a module', 'blocks'], tmp_path)
    assert out.returncode == 2 and 'is not a module name' in out.stderr
