"""Tests for the synthetic shapes dataset generator (yolo_attn/data/shapes.py)."""
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from yolo_attn.data.shapes import CLASS_NAMES, generate_shapes

IMGSZ = 320
N_TRAIN, N_VAL = 32, 8


def _labels(root: Path, split: str) -> dict:
    """{stem: (k, 5) float array} for every label file of a split."""
    out = {}
    for f in sorted((root / 'labels' / split).glob('*.txt')):
        rows = [list(map(float, line.split())) for line in f.read_text().splitlines()]
        out[f.stem] = np.array(rows, dtype=float).reshape(-1, 5)
    return out


def _files(root: Path) -> dict:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob('*')) if p.is_file()}


@pytest.fixture(scope='module')
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp('shapes') / 'ds'
    yaml_path = generate_shapes(root, n_train=N_TRAIN, n_val=N_VAL, imgsz=IMGSZ, seed=0, progress=False)
    return root, yaml_path


def test_layout_and_yaml(dataset):
    root, yaml_path = dataset
    assert yaml_path == root.resolve() / 'shapes.yaml'
    for split, n in (('train', N_TRAIN), ('val', N_VAL)):
        images = sorted((root / 'images' / split).glob('*.jpg'))
        labels = sorted((root / 'labels' / split).glob('*.txt'))
        assert len(images) == len(labels) == n
        assert [p.stem for p in images] == [p.stem for p in labels]
    data = yaml.safe_load(yaml_path.read_text())
    assert Path(data['path']) == root.resolve() and Path(data['path']).is_absolute()
    assert data['train'] == 'images/train' and data['val'] == 'images/val'
    assert data['nc'] == len(CLASS_NAMES) >= 5
    assert data['names'] == dict(enumerate(CLASS_NAMES))
    for k in ('train', 'val'):
        assert (Path(data['path']) / data[k]).is_dir()


def test_images_are_rgb_imgsz(dataset):
    root, _ = dataset
    for p in sorted((root / 'images' / 'train').glob('*.jpg'))[:4]:
        img = cv2.imread(str(p))
        assert img.shape == (IMGSZ, IMGSZ, 3) and img.dtype == np.uint8
        assert img.std() > 10  # not a flat canvas


def test_labels_valid(dataset):
    root, _ = dataset
    for split in ('train', 'val'):
        for f in (root / 'labels' / split).glob('*.txt'):
            for line in f.read_text().splitlines():
                parts = line.split()
                assert len(parts) == 5 and parts[0].isdigit()
                assert all(len(v.split('.')[1]) == 6 for v in parts[1:])  # 6 decimals
        for arr in _labels(root, split).values():
            assert len(arr) >= 1
            cls, xc, yc, w, h = arr.T
            assert np.all((cls >= 0) & (cls < len(CLASS_NAMES))) and np.all(cls == cls.round())
            for v in (xc, yc, w, h):
                assert np.all((v > 0) & (v <= 1))
            eps = 1e-6  # rounding to 6 decimals
            assert np.all(xc - w / 2 >= -eps) and np.all(xc + w / 2 <= 1 + eps)
            assert np.all(yc - h / 2 >= -eps) and np.all(yc + h / 2 <= 1 + eps)


def test_object_statistics(dataset):
    root, _ = dataset
    arrs = list(_labels(root, 'train').values())
    boxes = np.concatenate(arrs)
    assert len(boxes) / len(arrs) >= 3  # several objects per image (2-8 drawn)
    area = boxes[:, 3] * boxes[:, 4]
    side = boxes[:, 3:5].max(1)
    assert (area < 0.003).sum() >= 5  # small: box under 0.3 % of the image (<~17 px side at 320)
    assert side.min() < 0.06  # down to ~4 % of the side
    assert (side > 0.35).sum() >= 3  # large: over a third of the side
    assert side.max() <= 0.5 + 1e-6
    assert set(boxes[:, 0].astype(int)) == set(range(len(CLASS_NAMES)))  # every class shows up


def test_deterministic(tmp_path):
    kw = dict(n_train=4, n_val=2, imgsz=IMGSZ, progress=False)
    generate_shapes(tmp_path / 'a', seed=7, **kw)
    generate_shapes(tmp_path / 'b', seed=7, **kw)
    generate_shapes(tmp_path / 'c', seed=8, **kw)
    a, b, c = (_files(tmp_path / k) for k in 'abc')
    labels = [k for k in a if k.endswith('.txt')]
    images = [k for k in a if k.endswith('.jpg')]
    assert len(labels) == len(images) == 6 and a.keys() == b.keys() == c.keys()
    assert all(a[k] == b[k] for k in labels)  # byte-identical labels
    for k in images:  # identical pixels
        pa, pb = (cv2.imread(str(tmp_path / r / k)) for r in 'ab')
        assert np.array_equal(pa, pb)
    assert all(a[k] != c[k] for k in labels)  # another seed, another dataset
    pa, pc = (cv2.imread(str(tmp_path / r / images[0])) for r in 'ac')
    assert not np.array_equal(pa, pc)


def test_train_and_val_differ(dataset):
    root, _ = dataset
    train, val = _labels(root, 'train'), _labels(root, 'val')
    for stem in val:  # same file names, different content
        assert stem in train
        assert train[stem].shape != val[stem].shape or not np.allclose(train[stem], val[stem])
    ti = cv2.imread(str(root / 'images' / 'train' / f'{stem}.jpg'))
    vi = cv2.imread(str(root / 'images' / 'val' / f'{stem}.jpg'))
    assert not np.array_equal(ti, vi)


def test_refuses_non_empty_out(tmp_path):
    out = tmp_path / 'busy'
    out.mkdir()
    (out / 'keep.txt').write_text('precious\n')
    (out / 'images').mkdir()
    before = _files(out)
    with pytest.raises(FileExistsError) as exc:
        generate_shapes(out, n_train=2, n_val=1, progress=False)
    msg = str(exc.value)
    assert str(out) in msg and '--out' in msg and '\n' not in msg
    assert _files(out) == before
    assert sorted(p.name for p in out.iterdir()) == ['images', 'keep.txt']
    assert not any((out / 'images').iterdir())
    a_file = tmp_path / 'file'
    a_file.write_text('x')
    with pytest.raises(FileExistsError):
        generate_shapes(a_file, n_train=2, n_val=1, progress=False)
    assert a_file.read_text() == 'x'


def test_empty_existing_out_is_used(tmp_path):
    (tmp_path / 'empty').mkdir()
    y = generate_shapes(tmp_path / 'empty', n_train=1, n_val=1, imgsz=64, progress=False)
    assert y.is_file() and len(list((tmp_path / 'empty' / 'images' / 'train').glob('*.jpg'))) == 1


@pytest.mark.parametrize('kw, word', [
    (dict(n_train=0), 'n_train'), (dict(n_val=-1), 'n_val'), (dict(n_train=2.5), 'n_train'),
    (dict(imgsz=32), 'imgsz'), (dict(imgsz=100), 'imgsz'), (dict(imgsz=320.0), 'imgsz'),
    (dict(seed=-1), 'seed'),
])
def test_bad_arguments(tmp_path, kw, word):
    out = tmp_path / 'out'
    with pytest.raises(ValueError, match=word) as exc:
        generate_shapes(out, progress=False, **kw)
    assert '\n' not in str(exc.value)
    assert not out.exists()  # nothing created


def test_progress_bar(tmp_path, capsys):
    generate_shapes(tmp_path / 'p', n_train=1, n_val=1, imgsz=64, progress=True)
    assert 'shapes' in capsys.readouterr().err
    generate_shapes(tmp_path / 'q', n_train=1, n_val=1, imgsz=64, progress=False)
    assert capsys.readouterr().err == ''


def test_yolov5_dataloader_accepts(dataset):
    from yolov5.utils.dataloaders import LoadImagesAndLabels  # a hard dependency: its failure is a failure
    root, _ = dataset
    ds = LoadImagesAndLabels(str(root / 'images' / 'train'), img_size=IMGSZ, batch_size=4, augment=False,
                             stride=32, workers=1, prefix='shapes: ')
    expected = _labels(root, 'train')
    assert len(ds) == N_TRAIN
    assert sum(len(x) for x in ds.labels) == sum(len(v) for v in expected.values())
    for f, lb in zip(ds.label_files, ds.labels):  # nothing dropped as duplicate / out of range
        np.testing.assert_allclose(lb, expected[Path(f).stem], atol=1e-6)
    img, targets, _, _ = ds[0]
    assert tuple(img.shape) == (3, IMGSZ, IMGSZ)
    assert len(targets) == len(expected[Path(ds.label_files[0]).stem])


def test_repo_data_yaml_points_at_datasets_shapes_from_any_cwd(tmp_path, monkeypatch):
    import yolo_attn  # noqa: F401
    from conftest import ROOT
    from yolo_attn.integration.datasets import load_data_yaml
    monkeypatch.chdir(tmp_path)
    d = load_data_yaml(ROOT / 'data' / 'shapes.yaml')
    assert Path(d['path']) == (ROOT / 'datasets' / 'shapes').resolve()
    assert d['names'] == {0: 'circle', 1: 'square', 2: 'triangle', 3: 'star', 4: 'cross'}


def test_hard_difficulty(tmp_path):
    kw = dict(n_train=24, n_val=2, imgsz=IMGSZ, seed=0, progress=False)
    generate_shapes(tmp_path / 'e0', **kw)
    generate_shapes(tmp_path / 'e1', difficulty='easy', **kw)
    easy_default, easy = (_files(tmp_path / k / 'labels') | _files(tmp_path / k / 'images') for k in ('e0', 'e1'))
    hard_yaml = generate_shapes(tmp_path / 'h', difficulty='hard', **kw)
    assert easy_default == easy  # the default is easy, and easy images are what they always were
    assert yaml.safe_load(hard_yaml.read_text())['names'] == dict(enumerate(CLASS_NAMES))  # same 5 classes
    e = np.concatenate(list(_labels(tmp_path / 'e1', 'train').values()))
    h_arrs = list(_labels(tmp_path / 'h', 'train').values())
    h = np.concatenate(h_arrs)
    assert set(h[:, 0].astype(int)) <= set(range(len(CLASS_NAMES)))  # distractors are never labelled
    assert len(h) / len(h_arrs) > 1.5 * len(e) / 24  # more objects per image
    small = lambda b: (b[:, 3:5].max(1) < 0.06).mean()
    assert small(h) > small(e)  # more small objects
    assert h[:, 3:5].max() <= 0.30 + 2 / IMGSZ  # anti-aliased edge pixels


def test_distractors_are_drawn_but_not_labelled():
    from yolo_attn.data.shapes import Difficulty, _render
    only_distractors = Difficulty(objects=(0, 0), distractors=(4, 4))
    nothing = Difficulty(objects=(0, 0))
    img, lines = _render(np.random.default_rng(3), 128, only_distractors)
    empty, _ = _render(np.random.default_rng(3), 128, nothing)
    assert lines == []
    assert (np.abs(img.astype(int) - empty.astype(int)).max(-1) > 60).mean() > 0.01  # shapes were drawn


def test_bad_difficulty(tmp_path):
    with pytest.raises(ValueError, match='difficulty'):
        generate_shapes(tmp_path / 'x', difficulty='medium', progress=False)
    assert not (tmp_path / 'x').exists()


def test_cli_difficulty_flag(tmp_path):
    from conftest import run_cli
    out = run_cli('data', 'shapes', '--out', tmp_path / 'd', '--train', '2', '--val', '1', '--imgsz', '64',
                  '--difficulty', 'hard', cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    ref = generate_shapes(tmp_path / 'r', n_train=2, n_val=1, imgsz=64, difficulty='hard', progress=False)
    assert _files(tmp_path / 'd' / 'labels') == _files(ref.parent / 'labels')
    bad = run_cli('data', 'shapes', '--out', tmp_path / 'b', '--difficulty', 'medium', cwd=tmp_path)
    assert bad.returncode == 2 and 'medium' in bad.stderr
