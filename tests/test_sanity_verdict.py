"""The randomisation check's verdict on hand-made maps: raw and location-prior-partialled rank
correlation, per head level; maps that are only the location prior never pass."""

import cv2
import numpy as np
import pytest

from yolo_attn.evaluation.sanity import (PARTIAL_THRESHOLD, RAW_THRESHOLD, centre_prior, correlations,
                                         rank_correlation, verdict, verdicts)
from yolo_attn.heatmaps.methods import NOT_PER_DETECTION, describe, per_detection

SHAPE = (96, 128)
BOX = (40, 30, 80, 62)  # x1 y1 x2 y2
RNG = np.random.default_rng(0)


def smooth_noise(seed, sigma=3.0):
    return cv2.GaussianBlur(np.random.default_rng(seed).random(SHAPE).astype(np.float32), (0, 0), sigma)


def prior_blob():
    """A map that is only "near the box centre": a decreasing function of the prior's distance."""
    return np.exp(centre_prior(SHAPE, BOX)).astype(np.float32)


def normalised(m):
    return ((m - m.min()) / (m.max() - m.min())).astype(np.float32)


def pairs(make_trained, make_random, n=6):
    return [correlations(make_trained(i), make_random(i), BOX) for i in range(n)]


def test_partial_correlation_removes_the_location_prior():
    # both maps = the same location prior + independent detail: high raw rho, partial near 0
    a = normalised(prior_blob() + 0.15 * smooth_noise(1))
    b = normalised(prior_blob() + 0.15 * smooth_noise(2))
    raw, partial, prior = correlations(a, b, BOX)
    assert raw > 0.6 and abs(partial) < 0.15 and prior > 0.6
    # a shared off-centre structure is agreement beyond the prior: the partial rho keeps it
    shared = smooth_noise(3, sigma=6)
    raw2, partial2, _ = correlations(normalised(prior_blob() + 2 * shared), normalised(prior_blob() + 2 * shared +
                                                                                       0.05 * smooth_noise(4)), BOX)
    assert partial2 > 0.8 and raw2 > 0.8
    assert rank_correlation(a, b) == raw  # the raw rho alone, as before


def test_verdicts_on_hand_made_maps():
    independent = verdict('m', pairs(lambda i: smooth_noise(10 + i), lambda i: smooth_noise(50 + i)))
    assert independent.verdict == 'pass' and independent.passed
    assert abs(independent.mean_rho) < 0.2 and 'pass' in independent.reason

    same = verdict('m', pairs(lambda i: smooth_noise(10 + i), lambda i: 2 * smooth_noise(10 + i) + 1))
    assert same.verdict == 'fail' and same.mean_rho == pytest.approx(1.0) and same.mean_rho_partial > 0.99
    assert 'FAILED' in same.reason

    # prior-only maps: trained and random both "a blob at the box centre" + a little noise. The
    # partial rho is ~0 (the residuals are independent) but this must not pass.
    prior_only = verdict('m', pairs(lambda i: normalised(prior_blob() + 0.02 * smooth_noise(10 + i)),
                                    lambda i: normalised(prior_blob() + 0.02 * smooth_noise(50 + i))))
    assert prior_only.mean_rho_partial < PARTIAL_THRESHOLD and prior_only.verdict == 'inconclusive'
    assert 'location prior' in prior_only.reason
    # the trained map is the prior itself (the random one anything): not a pass either
    exact = verdict('m', pairs(lambda i: prior_blob(), lambda i: smooth_noise(50 + i)))
    assert exact.verdict != 'pass' and exact.mean_rho_prior == pytest.approx(1.0)

    # maps that share location and half their detail: raw and partial both high -> fail
    mixed = verdict('m', pairs(lambda i: normalised(prior_blob() + 0.3 * smooth_noise(10 + i)),
                               lambda i: normalised(prior_blob() + 0.3 * smooth_noise(10 + i)
                                                    + 0.1 * smooth_noise(50 + i))))
    assert mixed.mean_rho > RAW_THRESHOLD and mixed.verdict == 'fail'


def test_constant_maps_and_empty_groups():
    flat = np.full(SHAPE, 0.5, np.float32)
    assert correlations(flat, smooth_noise(1), BOX)[:2] == (1.0, 1.0)  # shows nothing: counts as unchanged
    assert correlations(smooth_noise(1), flat, BOX)[:2] == (0.0, 0.0)
    v = verdict('m', [correlations(flat, smooth_noise(i), BOX) for i in range(4)], constant=4)
    assert v.verdict == 'fail' and '4 of 4 maps are constant' in v.reason
    empty = verdict('m', [])
    assert empty.verdict == 'inconclusive' and empty.n == 0


def test_a_failing_head_level_keeps_the_method_from_passing():
    good = pairs(lambda i: smooth_noise(10 + i), lambda i: smooth_noise(50 + i), n=12)
    bad = pairs(lambda i: smooth_noise(10 + i), lambda i: smooth_noise(10 + i) * 3, n=6)
    levels = ['P4'] * 12 + ['P3'] * 6
    out = verdicts('m', good + bad[:0], levels[:12], [False] * 12)
    assert [v.level for v in out] == ['all', 'P4'] and out[0].passed
    mixed = verdicts('m', good * 3 + bad, ['P4'] * 36 + ['P3'] * 6, [False] * 42)
    by_level = {v.level: v for v in mixed}
    assert by_level['P3'].verdict == 'fail' and by_level['P4'].passed
    assert mixed[0].mean_rho <= RAW_THRESHOLD and mixed[0].verdict == 'inconclusive' and 'P3' in mixed[0].reason
    few = verdicts('m', good * 3 + bad[:2], ['P4'] * 36 + ['P3'] * 2, [False] * 38)
    assert few[0].passed  # 2 detections are too few to speak for a level


def test_not_per_detection_methods_are_read_from_the_library():
    from yolo_attn.heatmaps.methods import CAM_CLASSES
    assert [m for m in CAM_CLASSES if not per_detection(m)] == ['eigencam']
    assert NOT_PER_DETECTION in describe('eigencam') and describe('eigengradcam') == 'eigengradcam'


def test_not_per_detection_is_true_of_the_maps(ws):
    """eigencam's maps are identical for every detection of an image that uses the same layers (all
    of them with fixed layers; those of one head level with per-level layers); eigengradcam's are not."""
    from threadpoolctl import threadpool_limits
    from conftest import WS_IMGSZ
    from yolo_attn.heatmaps import explain
    path = sorted((ws / 'ds' / 'images' / 'val').glob('*.jpg'))[0]
    for method, layers in (('eigencam', 'detect'), ('eigencam', None), ('eigengradcam', 'detect')):
        with threadpool_limits(1, 'blas'):  # grad-cam's numpy SVDs: OpenBLAS threads on a busy 2-core CPU: 100x slower
            dets = next(explain(ws / 'w.pt', path, imgsz=WS_IMGSZ, method=method, layers=layers, conf_thres=0.05,
                                max_det=5)).detections
        groups = {}
        for d in dets:
            groups.setdefault(0 if layers else d.level, []).append(d.map)  # detections that use the same layers
        groups = [maps for maps in groups.values() if len(maps) >= 2]
        assert groups, (method, layers)
        same = all(np.array_equal(m, maps[0]) for maps in groups for m in maps[1:])
        assert same == (not per_detection(method)), (method, layers)
