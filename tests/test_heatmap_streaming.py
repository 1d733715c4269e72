"""Heatmaps streamed to disk (issue 12, exhaustion from small inputs): a detection keeps only its
per-layer maps at the layers' own resolutions and its heatmap is made when it is read, so ``yolo-attn
heatmap`` writes each detection's map and drops it; peak memory does not grow with detections."""

import tracemalloc

import cv2
import numpy as np

from conftest import WS_IMGSZ
from yolo_attn.heatmaps import explain, load_model
from yolo_attn.heatmaps.engine import renorm_in_box, to_original
from yolo_attn.heatmaps.runner import run

BIG = (960, 960)  # a map at this size is 3.7 MB; at the letterboxed 160 x 160 input 102 kB


def big_image(ws, tmp_path):
    im = cv2.imread(str(sorted((ws / 'ds' / 'images' / 'val').glob('*.jpg'))[0]))
    path = tmp_path / 'big.png'
    cv2.imwrite(str(path), cv2.resize(im, BIG[::-1], interpolation=cv2.INTER_LINEAR))
    return path


def test_detections_hold_input_size_maps_and_make_the_original_on_read(ws, tmp_path):
    model = load_model(ws / 'w.pt')
    for renorm in (False, True):
        result = next(explain(model, big_image(ws, tmp_path), imgsz=WS_IMGSZ, conf_thres=0.05, max_det=8,
                              renorm_in_box=renorm))
        assert result.shape == BIG and len(result.detections) == 8
        for d in result.detections:
            assert not [v for v in vars(d).values() if isinstance(v, np.ndarray)]
            kept = [c.shape for c in d.source.cams]  # per layer, at its own resolution (level: stride 8/16/32)
            assert kept in ([(20, 20)], [(20, 20), (10, 10)], [(10, 10), (5, 5)]), kept
            assert d.letterbox_map.shape == (160, 160)
            expected = to_original(d.letterbox_map, result.image.shape)
            expected = renorm_in_box(expected, d.box) if renorm else expected
            m = d.map
            assert m.shape == BIG and m.dtype == np.float32 and m is not d.map  # made on each read, not kept
            np.testing.assert_array_equal(m, expected)


def test_peak_memory_does_not_grow_with_detections(ws, tmp_path):
    """``run`` on a 960 x 960 image: numpy's peak allocation (tracemalloc) with 24 detections stays
    within a few original-size maps of the peak with 2; keeping every map would add 22 x 3.7 MB."""
    source = big_image(ws, tmp_path)
    map_bytes = BIG[0] * BIG[1] * 4
    peaks = {}
    run(weights=ws / 'w.pt', source=source, imgsz=WS_IMGSZ, conf_thres=0.05, max_det=1, project=tmp_path / 'runs',
        name='warm-up')  # one-off allocations (imports, caches) outside the comparison
    for n in (2, 24):
        tracemalloc.start()
        try:
            m = run(weights=ws / 'w.pt', source=source, imgsz=WS_IMGSZ, conf_thres=0.05, max_det=n, save_maps=True,
                    project=tmp_path / 'runs', name=f'n{n}')
            peaks[n] = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert len(m['images'][0]['detections']) == n
        for d in m['images'][0]['detections'][:2]:
            assert np.load(d['npy']).shape == BIG
    assert peaks[24] < peaks[2] + 4 * map_bytes, (peaks, map_bytes)
