"""The CLI as a user runs it: subprocesses, one-line errors with exit code 2, no tracebacks."""

import pytest

from yolo_attn.config.files import resolve_cfg


def test_blocks_lists_signatures_and_papers(cli):
    out = cli('blocks')
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert any(l.startswith('CBAM') and 'CBAM(c1, r=16, k=7)' in l and 'ECCV 2018' in l for l in lines)
    assert any(l.startswith('SE') and 'SE(c1, r=16)' in l and 'CVPR 2018' in l for l in lines)


def test_build_prints_table_summary_and_forward_check(cli, tmp_path):
    out = cli('build', '--cfg', 'yolov5n-cbam', '--imgsz', '320', cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert 'yolo_attn.blocks.cbam.CBAM' in out.stderr  # yolov5's layer table
    assert 'yolov5n-cbam' in out.stdout and 'GFLOPs@320' in out.stdout
    assert 'forward check: ok (6300 predictions at 320x320)' in out.stdout


def write(tmp_path, text, name='m.yaml'):
    p = tmp_path / name
    p.write_text(text)
    return p


def edited(old, new):
    text = resolve_cfg('yolov5s-cbam').read_text()
    assert old in text
    return text.replace(old, new, 1)


@pytest.mark.parametrize('case,text,message', [
    ('unknown block', edited('[-1, 1, CBAM, []],  # 5', '[-1, 1, CBMA, []],  # 5'),
     "layer 5 (CBMA): unknown module 'CBMA'; did you mean CBAM"),
    ('arg count', edited('[-1, 1, CBAM, []],  # 5', '[-1, 1, CBAM, [16, 7, 1]],  # 5'),
     'layer 5 (CBAM): takes (r, k) after the input channels, got [16, 7, 1]'),
    ('arg type', edited('[-1, 1, CBAM, []],  # 5', '[-1, 1, CBAM, [0.5]],  # 5'),
     'layer 5 (CBAM): reduction must be a positive integer, got 0.5'),
    ('from index', edited('[[-1, 8], 1, Concat, [1]]', '[[-1, 80], 1, Concat, [1]]'),
     "layer 15 (Concat): 'from' index 80 is out of range"),
    ('channel count', edited('[-1, 1, CBAM, []],  # 12', '[-1, 1, CBAM, [1024]],  # 12'),
     'layer 12 (CBAM): reduction 1024 on 512 channels leaves no hidden units'),
    ('malformed', 'nc: 80\nbackbone: [[-1, 1, Conv, [64]]\n', 'malformed YAML (line'),
    ('expression', edited('[-1, 1, CBAM, []],  # 5', '[-1, 1, CBAM, ["__import__(\'os\').getcwd()"]],  # 5'),
     'layer 5 (CBAM): refusing to evaluate'),
])
def test_bad_yaml_gets_one_line(cli, tmp_path, case, text, message):
    path = write(tmp_path, text)
    out = cli('build', '--cfg', path, '--imgsz', '320')
    assert out.returncode == 2, (case, out.stdout, out.stderr)
    assert 'Traceback' not in out.stderr
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith(f'yolo-attn build: error: {path}') and message in last, last


def test_missing_file(cli, tmp_path):
    out = cli('build', '--cfg', tmp_path / 'nope.yaml')
    assert out.returncode == 2 and 'Traceback' not in out.stderr
    assert out.stderr.strip() == f'yolo-attn build: error: model YAML not found: {tmp_path / "nope.yaml"}; ' \
                                 'give a path to a .yaml file or a shipped name such as yolov5s-cbam'


def test_bad_imgsz(cli):
    out = cli('build', '--cfg', 'yolov5n-se', '--imgsz', '100')
    assert out.returncode == 2 and 'must be a multiple of the model stride 32' in out.stderr


def test_tools_script_is_the_same_cli(tmp_path):
    import subprocess
    import sys
    from conftest import ROOT
    out = subprocess.run([sys.executable, str(ROOT / 'tools' / 'build.py'), '--cfg', 'yolov5n-se', '--imgsz', '320'],
                         capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert 'forward check: ok' in out.stdout


def test_train_help_is_yolov5s_and_tools_script_matches(tmp_path):
    import subprocess
    import sys
    from conftest import ROOT
    out = subprocess.run([sys.executable, str(ROOT / 'tools' / 'train.py'), '--help'], capture_output=True, text=True,
                         cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    for flag in ('--weights', '--cfg', '--data', '--hyp', '--epochs', '--resume', '--freeze', '--exist-ok'):
        assert flag in out.stdout


def test_data_shapes_refuses_existing_folder(cli, tmp_path):
    (tmp_path / 'ds').mkdir()
    (tmp_path / 'ds' / 'mine.txt').write_text('keep')
    out = cli('data', 'shapes', '--out', tmp_path / 'ds')
    assert out.returncode == 2 and 'Traceback' not in out.stderr
    assert (tmp_path / 'ds' / 'mine.txt').read_text() == 'keep' and len(list((tmp_path / 'ds').iterdir())) == 1
