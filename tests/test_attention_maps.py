"""``--attention-maps``: each attention block's spatial gate, read by a forward hook, equals what the
block computes inside; channel-only blocks are skipped with a note; PNGs and manifest entries."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import WS_IMGSZ
from yolo_attn.blocks import CBAM, ECA, SE, CoordAtt, SimAM
from yolo_attn.heatmaps.api import letterbox_tensor
from yolo_attn.heatmaps.attention_maps import AttentionMaps, attention_layers, spatial_gate

torch.manual_seed(0)
X = torch.randn(1, 32, 12, 20)  # a feature map: 32 channels, 12 x 20 cells


def normalised(t):
    t = t.double()
    return (t - t.min()) / (t.max() - t.min())


def randomise(block):
    with torch.no_grad():
        for p in block.parameters():
            p.normal_(0, 0.5)
    return block.eval()


def gate_of(block):
    with torch.no_grad():
        return spatial_gate(X[0], block(X)[0])


def test_cbam_gate_is_its_spatial_attention():
    block = randomise(CBAM(32, 4))
    with torch.no_grad():
        inner = block.channel(X)
        maps = torch.cat((inner.mean(1, keepdim=True), inner.amax(1, keepdim=True)), 1)
        s = torch.sigmoid(block.spatial.conv(maps))[0, 0]  # CBAM's spatial attention, from its own layers
    gate = gate_of(block)
    torch.testing.assert_close(normalised(gate), normalised(s), atol=1e-5, rtol=0)  # float32 block, float64 ratio


def test_coordatt_gate_is_its_h_by_w_gate():
    block = randomise(CoordAtt(32, 8))
    h, w = X.shape[2:]
    with torch.no_grad():
        pooled = torch.cat((X.mean(3, keepdim=True), X.mean(2, keepdim=True).transpose(2, 3)), 2)
        y_h, y_w = block.act(block.bn1(block.conv1(pooled))).split((h, w), 2)
        a = torch.sigmoid(block.conv_h(y_h)) * torch.sigmoid(block.conv_w(y_w.transpose(2, 3)))
    torch.testing.assert_close(gate_of(block), a[0].double().mean(0), atol=1e-5, rtol=0)


def test_simam_gate_is_its_energy_gate():
    block = SimAM(32)
    d = (X - X.mean((2, 3), keepdim=True)).square()
    expected = torch.sigmoid(d / (4 * (d.sum((2, 3), keepdim=True) / (12 * 20 - 1) + 1e-4)) + 0.5)[0].mean(0)
    torch.testing.assert_close(gate_of(block), expected.double(), atol=1e-5, rtol=0)


@pytest.mark.parametrize('block', [SE(32, 4), ECA(32)])
def test_channel_only_blocks_have_a_flat_gate(block):
    gate = gate_of(randomise(block))
    assert float(gate.max() - gate.min()) < 1e-5 * float(gate.abs().max())


def test_model_maps_are_at_original_size_and_flat_gates_get_a_note(ws):
    from yolo_attn.heatmaps import load_model
    model = load_model(ws / 'w.pt')  # yolov5n-cbam: CBAM after each backbone stage
    layers = attention_layers(model)
    assert len(layers) == 3 and all(type(model.model[i]).__name__ == 'CBAM' for i in layers)
    im0 = np.random.default_rng(0).integers(0, 255, (100, 150, 3), dtype=np.uint8)
    x = letterbox_tensor(im0, WS_IMGSZ, int(model.stride.max()))[None]
    maps = AttentionMaps(model)(x, im0)
    assert [g.layer for g in maps] == layers and [g.stride for g in maps] == [8, 16, 32]
    for g in maps:
        assert g.map.shape == (100, 150) and g.map.dtype == np.float32 and g.note == ''
        assert g.map.min() >= 0 and g.map.max() == pytest.approx(1, abs=1e-3) and g.gate_max > g.gate_min
    # the first block turned into a channel-only gate (what SE and ECA do): skipped with a note
    model.model[layers[0]].forward = lambda x: x * torch.sigmoid(x.mean((2, 3), keepdim=True))
    flat = AttentionMaps(model)(x, im0)[0]
    assert flat.map is None and 'no spatial gate' in flat.note


def test_cli_writes_attention_pngs_and_manifest(ws, tmp_path):
    from yolo_attn.heatmaps.runner import run
    m = run(weights=ws / 'w.pt', source=ws / 'ds' / 'images' / 'val', imgsz=WS_IMGSZ, conf_thres=0.05, max_det=3,
            attention_maps=True, project=tmp_path)
    manifest = json.loads((Path(m['save_dir']) / 'heatmaps.json').read_text())
    assert manifest['attention_layers'] == [5, 8, 12] and manifest['complete']
    for image in manifest['images']:
        gates = image['attention_maps']
        assert [g['layer'] for g in gates] == [5, 8, 12] and all(g['block'] == 'CBAM' for g in gates)
        for g in gates:
            png = Path(g['png'])
            assert png.is_file() and png.name == f"{Path(image['path']).stem}_attn{g['layer']:02d}_CBAM.png"
            import cv2
            assert cv2.imread(str(png)).shape[:2] == (image['height'], image['width'])
