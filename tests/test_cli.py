"""The CLI as a user runs it: subprocesses, one-line errors with exit code 2, no tracebacks."""

import argparse
import collections
import importlib
import os
import re
import subprocess
import sys

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
    assert (out.stdout + out.stderr).count('GFLOPs') == 1  # ours at 320, not also yolov5's at 640


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
                                 'give a path to a .yaml file or a shipped name (yolov5l-ca, yolov5l-cbam, yolov5l-eca, ' \
                                 '... `yolo-attn build --all` lists them)'


def test_bad_imgsz(cli):
    out = cli('build', '--cfg', 'yolov5n-se', '--imgsz', '100')
    assert out.returncode == 2 and 'must be a multiple of the model stride 32' in out.stderr


def test_train_help_is_yolov5s_with_the_attention_start(tmp_path, cli):
    out = cli('train', '--help', cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    for flag in ('--weights', '--cfg', '--data', '--hyp', '--epochs', '--resume', '--freeze', '--exist-ok',
                 '--attn-start', '--attn-ramp'):
        assert flag in out.stdout
    assert '{ramp,paper,residual}' in out.stdout


def test_data_shapes_refuses_existing_folder(cli, tmp_path):
    (tmp_path / 'ds').mkdir()
    (tmp_path / 'ds' / 'mine.txt').write_text('keep')
    out = cli('data', 'shapes', '--out', tmp_path / 'ds')
    assert out.returncode == 2 and 'Traceback' not in out.stderr
    assert (tmp_path / 'ds' / 'mine.txt').read_text() == 'keep' and len(list((tmp_path / 'ds').iterdir())) == 1


HELP_PROBE = r'''
import sys
from yolo_attn.cli import main
try:
    main(sys.argv[1:])
except SystemExit as e:
    print('EXIT', e.code)
print('LOADED', 'torch' in sys.modules, 'yolov5' in sys.modules)
'''


@pytest.mark.parametrize('argv', [['--help'], ['build', '--imgsz', 'x'], ['insert', '--help'], ['nosuchcommand']])
def test_help_and_argument_errors_import_neither_torch_nor_yolov5(argv):
    """What makes them fast (measured in benchmarks/README.md, "CLI start-up"): nothing heavy is imported."""
    out = subprocess.run([sys.executable, '-c', HELP_PROBE, *argv], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip().endswith('LOADED False False'), out.stdout + out.stderr
    assert ('EXIT 0' if '--help' in argv else 'EXIT 2') in out.stdout


FLAGS_PROBE = r'''
import contextlib, io, sys
from yolo_attn.cli import main
codes = []
for argv in (sys.argv[1:2] + ['--help'], sys.argv[1:2] + ['--no-such-flag'], sys.argv[1:]):
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        try:
            codes.append(main(argv))
        except SystemExit as e:
            codes.append(e.code)
print('CODES', codes)
print('HEAVY', sorted(m for m in ('torch', 'pytorch_grad_cam', 'sklearn', 'cv2', 'yolov5') if m in sys.modules))
'''
# each command: its help, an unknown flag, and these arguments (a required one missing, a bad value)
BAD_ARGUMENTS = {'heatmap': ['--weights', 'w.pt'], 'heatmap-eval': ['--data', 'd.yaml', '--method'],
                 'heatmap-compare': ['--weights', 'a.pt', 'b.pt', '--source', 's', '--colormap', 'nope'],
                 'build': ['--imgsz', 'x'], 'data': ['shapes', '--train', 'x'], 'demo': ['--epochs', 'x'],
                 'insert': ['--block'], 'blocks': ['--nope']}


def test_bad_arguments_cover_every_own_command():
    from yolo_attn.cli import COMMANDS
    from yolo_attn.cli.scripts import COMMANDS as YOLOV5_SCRIPTS  # yolov5's parsers: they import yolov5
    assert sorted(BAD_ARGUMENTS) == sorted(c for c in COMMANDS if c not in YOLOV5_SCRIPTS)


@pytest.mark.parametrize('command', sorted(BAD_ARGUMENTS))
def test_every_command_sets_up_its_flags_without_torch_gradcam_opencv_or_yolov5(command):
    """Help and argument errors answer at once: building a command's parser (defaults, choices, help
    texts) imports none of the libraries that take seconds (docs/cli.md, "Global option")."""
    out = subprocess.run([sys.executable, '-c', FLAGS_PROBE, command, *BAD_ARGUMENTS[command]], capture_output=True,
                         text=True, timeout=120)
    assert 'CODES [0, 2, 2]' in out.stdout, out.stdout + out.stderr
    assert out.stdout.strip().endswith('HEAVY []'), out.stdout + out.stderr


def test_the_light_records_match_the_libraries():
    """What the flags list without importing pytorch-grad-cam and OpenCV is what those libraries have."""
    import cv2

    from yolo_attn.heatmaps.methods import CAM_CLASSES, GRADIENT_FREE, CamMethod
    from yolo_attn.heatmaps.style import COLORMAP_NAMES
    assert [m for m in CAM_CLASSES if not CamMethod(m).uses_gradients] == list(GRADIENT_FREE)
    assert list(COLORMAP_NAMES) == sorted(k[len('COLORMAP_'):].lower() for k in dir(cv2) if k.startswith('COLORMAP_'))


def test_package_names_are_the_objects_once_their_modules_load():
    """PEP 562 names of the packages: ``heatmaps.run`` is the function (its module is ``runner``)."""
    import yolo_attn.evaluation as evaluation
    import yolo_attn.heatmaps as heatmaps
    from yolo_attn.heatmaps.runner import run
    assert heatmaps.run is run and callable(heatmaps.run)
    assert heatmaps.DEFAULTS is importlib.import_module('yolo_attn.heatmaps.options').DEFAULTS
    assert evaluation.verdict is importlib.import_module('yolo_attn.evaluation.sanity').verdict
    with pytest.raises(AttributeError):
        heatmaps.nothing


def configured(command):
    from yolo_attn.cli import make_parser
    parser = make_parser(command)
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices[command]


def test_every_command_help_shows_defaults_and_choices(capsys):
    from yolo_attn.cli import COMMANDS, main
    from yolo_attn.cli.scripts import COMMANDS as YOLOV5_SCRIPTS
    commands = [c for c in COMMANDS if c not in YOLOV5_SCRIPTS]
    assert len(commands) == 8
    for command in commands:
        parsers = [configured(command)]
        parsers += [p for a in parsers[0]._actions if isinstance(a, argparse._SubParsersAction) for p in a.choices.values()]
        for p in parsers:
            text = ' '.join(p.format_help().split())
            for action in p._actions:
                if action.help in (None, argparse.SUPPRESS) or isinstance(action, argparse._SubParsersAction):
                    continue
                if action.default not in (None, False, argparse.SUPPRESS) and action.nargs != 0:
                    default = ' '.join(str(action.default).split())
                    assert f'(default: {default})' in text, (command, action.dest)
                for choice in action.choices or ():
                    assert str(choice) in text, (command, action.dest, choice)
    with pytest.raises(SystemExit):
        main(['heatmap', '--help'])
    text = ' '.join(capsys.readouterr().out.split())
    assert '--max-det MAX_DET maximum detections per image (default: 1000)' in text
    original = argparse.ArgumentParser._get_formatter
    for script, line in (('val', '--conf-thres CONF_THRES confidence threshold (default: 0.001)'),
                         ('detect', '--conf-thres CONF_THRES confidence threshold (default: 0.25)'),
                         ('train', '--epochs EPOCHS total training epochs (default: 100)'),
                         ('export', '--opset OPSET ONNX: opset version (default: 17)')):
        with pytest.raises(SystemExit):
            main([script, '--help'])  # yolov5's own parser, its defaults shown too
        assert line in ' '.join(capsys.readouterr().out.split()), script
    assert argparse.ArgumentParser._get_formatter is original  # restored after each help


def test_a_three_epoch_training_log_repeats_no_line_per_batch(tmp_path):
    """yolov5's per-batch deprecation warnings (torch.cuda.amp.autocast) are fixed at the source:
    over 3 epochs x 4 batches no line of the console shows up more than once per epoch (the
    validation table also once more for best.pt at the end)."""
    from yolo_attn.data.shapes import generate_shapes
    data = generate_shapes(tmp_path / 'ds', n_train=8, n_val=2, imgsz=64, progress=False)
    env = {k: v for k, v in os.environ.items() if k != 'PYTHONWARNINGS'}  # warnings as a user sees them
    out = subprocess.run([sys.executable, '-m', 'yolo_attn', 'train', '--cfg', 'yolov5n-se', '--data', data,
                          '--weights', '', '--epochs', '3', '--batch-size', '2', '--imgsz', '64', '--device', 'cpu',
                          '--workers', '0', '--noplots', '--project', tmp_path / 'runs', '--name', 'exp'],
                         capture_output=True, text=True, cwd=tmp_path, env={**env, 'OMP_NUM_THREADS': '1'},
                         timeout=900)
    assert out.returncode == 0, out.stderr[-2000:]
    log = [line.strip() for line in re.split(r'[\r\n]+', out.stdout + out.stderr) if line.strip()]
    counts = collections.Counter(log)
    assert len([line for line in log if '/2' in line or 'Epoch' in line]) >= 3  # the log is really there
    repeated = {line: n for line, n in counts.items() if n > 3 + 1}  # per epoch, and best.pt validated at the end
    assert not repeated, repeated
    assert 'torch.cuda.amp' not in out.stderr


def test_a_command_reads_its_checkpoint_once(tmp_path, monkeypatch):
    """The preflight's secure load and yolov5's ``attempt_load`` that follows share one read."""
    import cv2
    import numpy as np
    import torch

    from yolo_attn.cli import main
    from yolo_attn.integration import checkpoints
    reads = []
    real = torch.load
    monkeypatch.setattr(checkpoints.torch, 'load', lambda f, *a, **k: reads.append(str(f)) or real(f, *a, **k))
    cv2.imwrite(str(tmp_path / 'im.jpg'), np.full((64, 64, 3), 127, np.uint8))
    assert main(['heatmap', '--weights', 'yolov5n-shapes.pt', '--source', str(tmp_path / 'im.jpg'), '--imgsz', '64',
                 '--project', str(tmp_path / 'runs')]) == 0
    assert len(reads) == 1 and reads[0].endswith('yolov5n-shapes.pt')
    assert main(['heatmap', '--weights', 'yolov5n-shapes.pt', '--source', str(tmp_path / 'im.jpg'), '--imgsz', '64',
                 '--project', str(tmp_path / 'runs')]) == 0
    assert len(reads) == 2  # a later command reads the file again (nothing stale is kept)


def test_export_console_names_yolo_attn_and_warns_once(tmp_path):
    import shutil

    from yolo_attn.config.files import resolve_weights
    weights = tmp_path / 'best.pt'
    shutil.copy(resolve_weights('yolov5n-shapes.pt'), weights)
    env = {k: v for k, v in os.environ.items() if k != 'PYTHONWARNINGS'}  # warnings as a user sees them
    out = subprocess.run([sys.executable, '-m', 'yolo_attn', 'export', '--weights', weights, '--include',
                          'torchscript', 'onnx', '--imgsz', '64'], capture_output=True, text=True, cwd=tmp_path,
                         env=env, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    log = out.stdout + out.stderr
    assert f'yolo-attn detect --weights {tmp_path / "best.onnx"}' in log and 'yolo-attn val --weights' in log
    assert 'yolov5 detect' not in log and 'yolov5 val' not in log
    assert log.count('`torch.jit.trace` is deprecated') == 1  # torch warns on every trace; export traces twice+


def test_txt_image_list_resolves_as_yolov5_does(tmp_path):
    """Only ``./`` lines are relative to the list's folder; others are as written; non-images skipped."""
    from pathlib import Path

    from yolo_attn.integration.datasets import split_images
    (tmp_path / 'lists').mkdir()
    (tmp_path / 'lists' / 'val.txt').write_text('./a.jpg\nimages/b.png\n/abs/c.jpg\nnotes.md\n\n')
    got = split_images({'path': str(tmp_path), 'val': 'lists/val.txt'}, 'val')
    assert got == [tmp_path / 'lists' / 'a.jpg', Path('images/b.png'), Path('/abs/c.jpg')]


def test_python_run_functions_require_their_inputs():
    """``run(**kwargs)`` mirrors the CLI, where --weights/--source/--data are required: no default
    that names a file which does not exist offline (yolov5's 'yolov5s.pt', 'data/images')."""
    import inspect

    from yolo_attn.evaluation import compare, evaluate
    from yolo_attn.heatmaps import run as heatmap_run
    for fn, required in ((heatmap_run, ('weights', 'source')), (evaluate.run, ('weights', 'data')),
                         (compare.run, ('weights', 'source'))):
        params = inspect.signature(fn).parameters
        assert all(params[p].default is inspect.Parameter.empty for p in required), fn.__module__
    with pytest.raises(TypeError, match='source'):
        heatmap_run(weights='x.pt')
