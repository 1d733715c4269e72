"""Every command that reads a model YAML or a block name sees every registered block, whatever it
imports: a fresh process, a YAML given by path in another folder, a shipped block and a user's
(``--import`` and ``YOLO_ATTN_IMPORTS``). ``insert`` once failed here with "unknown block 'CBAM'"."""

import pytest
import yaml

from test_user_blocks import BLOCK_SOURCE, run


@pytest.fixture(scope='module')
def folder(tmp_path_factory, yolov5_models_dir):
    """A user's folder: yolov5's own yolov5n.yaml copied in, and a module defining MyGate."""
    d = tmp_path_factory.mktemp('act')
    (d / 'my.yaml').write_text((yolov5_models_dir / 'yolov5n.yaml').read_text())
    (d / 'mygate.py').write_text(BLOCK_SOURCE.format(name='MyGate'))
    return d


@pytest.mark.parametrize('block, how', [('CBAM', 'shipped'), ('MyGate', 'flag'), ('MyGate', 'env')])
def test_insert_then_build_a_yaml_given_by_path(folder, block, how):
    flags = ['--import', 'mygate'] if how == 'flag' else []
    env = {'YOLO_ATTN_IMPORTS': 'mygate', 'PYTHONPATH': str(folder)} if how == 'env' else None
    out_yaml = folder / f'out-{block}-{how}.yaml'
    out = run([*flags, 'insert', '--cfg', './my.yaml', '--block', block, '--after', '4', '-o', out_yaml.name],
              folder, env)
    assert out.returncode == 0, out.stderr[-2000:]
    assert f'{block} after layers 4 of my.yaml (new layers 5)' in out.stdout
    rows = yaml.safe_load(out_yaml.read_text())['backbone']
    assert rows[5][2] == block
    out = run([*flags, 'build', '--cfg', f'./{out_yaml.name}', '--imgsz', '64'], folder, env)
    assert out.returncode == 0, out.stderr[-2000:]
    assert block in out.stdout + out.stderr and 'forward check: ok' in out.stdout


def test_blocks_lists_user_blocks_from_the_flag_and_the_environment(folder):
    for flags, env in ((['--import', 'mygate'], None), ([], {'YOLO_ATTN_IMPORTS': 'mygate', 'PYTHONPATH': str(folder)})):
        out = run([*flags, 'blocks'], folder, env)
        assert out.returncode == 0, out.stderr[-2000:]
        names = [line.split()[0] for line in out.stdout.splitlines() if line.strip()]
        assert {'SE', 'CBAM', 'ECA', 'CoordAtt', 'SimAM', 'MyGate'} <= set(names)


def test_an_unknown_block_is_still_one_line(folder):
    out = run(['insert', '--cfg', './my.yaml', '--block', 'CBMA', '--after', '4', '-o', 'x.yaml'], folder)
    assert out.returncode == 2 and "unknown block 'CBMA'; did you mean CBAM?" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and not (folder / 'x.yaml').exists()
