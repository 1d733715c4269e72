"""``yolo-attn heatmap`` outputs: video frames named by their zero-padded index with the frame in the
manifest and ``--save-video``; energy in box measured before ``--renorm-in-box``; head levels named
P3/P4/P5; figure flags on the CLI; the not-per-detection warning."""

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import WS_IMGSZ, run_cli
from yolo_attn.heatmaps.runner import run

pytestmark = pytest.mark.usefixtures('one_thread')
KW = dict(imgsz=WS_IMGSZ, conf_thres=0.05, max_det=3)


def make_video(path, frames):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*'mp4v'), 5, frames[0].shape[1::-1])
    for f in frames:
        writer.write(f)
    writer.release()
    return path


@pytest.fixture(scope='module')
def clip(ws, tmp_path_factory):
    files = sorted((ws / 'ds' / 'images' / 'val').glob('*.jpg'))
    frames = [cv2.imread(str(f)) for f in files] * 2  # 6 frames
    return make_video(tmp_path_factory.mktemp('video') / 'clip.mp4', frames)


@pytest.mark.parametrize('vid_stride', [1, 2])
def test_video_frames_are_named_by_their_index(ws, clip, tmp_path, capsys, vid_stride):
    m = run(weights=ws / 'w.pt', source=clip, vid_stride=vid_stride, save_video=True, project=tmp_path, **KW)
    save = Path(m['save_dir'])
    frames = [i['frame'] for i in m['images']]
    assert frames == list(range(vid_stride - 1, 6, vid_stride))  # 0-based index in the video: 0..5 or 1, 3, 5
    for image in m['images']:
        stem = f"clip_{image['frame']:06d}"
        assert Path(image['overview']).name == f'{stem}.png' and Path(image['overview']).is_file()
        assert image['detections'] and all(Path(d['png']).name.startswith(f'{stem}_0') for d in image['detections'])
        assert image['video'] == str(save / 'clip.mp4')
    assert (save / 'clip_000000.png').is_file() == (vid_stride == 1)  # the first frame is padded too
    cap = cv2.VideoCapture(str(save / 'clip.mp4'))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == len(frames)
    ok, first = cap.read()
    assert ok and first.shape[:2] == cv2.imread(m['images'][0]['overview']).shape[:2]
    cap.release()
    progress = capsys.readouterr().err
    assert f'{len(frames)}/{len(frames)}' in progress  # one progress step per frame, not per file
    on_disk = json.loads((save / 'heatmaps.json').read_text())
    assert on_disk['complete'] and [i['frame'] for i in on_disk['images']] == frames


def test_energy_in_box_is_measured_before_renormalising(ws, tmp_path):
    source = sorted((ws / 'ds' / 'images' / 'val').glob('*.jpg'))[0]
    plain = run(weights=ws / 'w.pt', source=source, project=tmp_path, save_maps=True, **KW)['images'][0]
    renorm = run(weights=ws / 'w.pt', source=source, project=tmp_path, renorm_in_box=True, save_maps=True,
                 **KW)['images'][0]
    assert plain['frame'] is None and len(plain['detections']) == 3
    for a, b in zip(plain['detections'], renorm['detections']):
        assert b['energy_in_box'] == pytest.approx(a['energy_in_box'], abs=2e-6)  # the map's own share (same path)
        assert a['energy_in_box'] < 0.99  # not the 1.0 every renormalised map would give
        cam = np.load(b['npy'])
        x1, y1, x2, y2 = (int(round(v)) for v in b['box_xyxy'])
        assert cam.sum() == pytest.approx(cam[y1:y2, x1:x2].sum())  # the renormalised map is zero outside
        assert a['head_level'] in ('P3', 'P4', 'P5')


def test_figure_flags_and_not_per_detection_warning_on_the_cli(ws, tmp_path):
    source = sorted((ws / 'ds' / 'images' / 'val').glob('*.jpg'))[0]
    out = run_cli('heatmap', '--weights', ws / 'w.pt', '--source', source, '--imgsz', WS_IMGSZ, '--conf-thres', '0.05',
                  '--max-det', '2', '--method', 'eigencam', '--scale', '3', '--alpha', '0.3', '--colormap', 'viridis',
                  '--hide-conf', '--line-thickness', '1', '--project', tmp_path, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    assert 'eigencam is not per-detection' in out.stderr
    manifest = json.loads((tmp_path / 'exp' / 'heatmaps.json').read_text())
    assert manifest['style'] == {'alpha': 0.3, 'colormap': 'viridis', 'hide_labels': False, 'hide_conf': True,
                                 'line_thickness': 1, 'scale': 3.0}
    assert manifest['per_detection'] is False
    for d in manifest['images'][0]['detections']:
        assert cv2.imread(d['png']).shape[:2] == (3 * WS_IMGSZ, 3 * WS_IMGSZ)

def test_help_and_bad_figure_flags(ws, tmp_path, capsys):
    from yolo_attn.cli import main
    with pytest.raises(SystemExit):
        main(['heatmap', '--help'])
    assert 'eigencam (not per-detection' in ' '.join(capsys.readouterr().out.split())
    source = sorted((ws / 'ds' / 'images' / 'val').glob('*.jpg'))[0]
    for flag, value in (('--alpha', '1.5'), ('--scale', '0')):
        assert main(['heatmap', '--weights', str(ws / 'w.pt'), '--source', str(source), flag, value, '--project',
                     str(tmp_path / 'bad')]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert f'{flag} {value}' in err[-1] and err[-1].startswith('yolo-attn heatmap: error:'), err
    assert not (tmp_path / 'bad').exists()
