"""Pretrained transfer across inserted layers (layer correspondence, not index)."""

from pathlib import Path

import torch
import yaml

import yolov5
from yolo_attn.config.files import load_cfg
from yolo_attn.config.transfer import correspondence_intersect, intersect_by_correspondence, layer_correspondence
from yolov5.models.yolo import Model
from yolov5.utils.general import intersect_dicts
from yolov5.utils.loss import ComputeLoss


def shifted(i):  # stock index -> index in the shipped attention YAMLs (rows inserted at 5, 8, 12)
    return i + (i >= 5) + (i >= 7) + (i >= 10)


def test_correspondence_of_shipped_yamls():
    for size in 'nsmlx':
        stock = load_cfg(f'yolov5{size}')
        assert layer_correspondence(stock, load_cfg(f'yolov5{size}-cbam')) == {i: shifted(i) for i in range(25)}
        assert layer_correspondence(stock, stock) == {i: i for i in range(25)}
    se, cbam = load_cfg('yolov5s-se'), load_cfg('yolov5s-cbam')
    assert set(layer_correspondence(se, cbam).values()) == set(range(28)) - {5, 8, 12}


def trained_stock_model(steps=3):
    """yolov5n trained a few real steps (yolov5's loss and hyperparameters) on a random batch."""
    torch.manual_seed(0)
    model = Model(load_cfg('yolov5n'), nc=5)
    hyp_file = Path(yolov5.__file__).parent / 'data' / 'hyps' / 'hyp.scratch-low.yaml'
    model.hyp = yaml.safe_load(hyp_file.read_text())
    loss_fn = ComputeLoss(model)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    images = torch.rand(2, 3, 128, 128)
    targets = torch.tensor([[0, 1, 0.5, 0.5, 0.2, 0.3], [1, 3, 0.3, 0.6, 0.1, 0.1]])
    model.train()
    for _ in range(steps):
        loss, _ = loss_fn(model(images), targets)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model


def test_every_stock_tensor_lands_in_its_corresponding_layer():
    stock = trained_stock_model()
    fresh_init = Model(load_cfg('yolov5n'), nc=5).state_dict()
    assert any(not torch.equal(v, fresh_init[k]) for k, v in stock.state_dict().items()), 'training changed nothing'
    target = Model(load_cfg('yolov5n-cbam'), nc=5)
    sd_stock, sd_target = stock.state_dict(), target.state_dict()
    kept, fresh = intersect_by_correspondence(sd_stock, sd_target, stock.yaml, target.yaml, exclude=['anchor'])
    target.load_state_dict(kept, strict=False)
    assert fresh == [5, 8, 12]
    loaded = target.state_dict()
    moved = 0
    for key, value in sd_stock.items():
        if 'anchor' in key:
            continue
        parts = key.split('.')
        parts[1] = str(shifted(int(parts[1])))
        assert torch.equal(loaded['.'.join(parts)], value), key
        moved += 1
    assert moved == len(kept) == len(sd_stock) - 1
    # what yolov5's index-based intersect_dicts keeps: only the layers before the first insertion
    by_index = intersect_dicts(sd_stock, sd_target, exclude=['anchor'])
    assert len(by_index) < len(kept) / 2


def test_train_hook_logs_transfer(caplog):
    stock = trained_stock_model(steps=1)
    target = Model(load_cfg('yolov5n-cbam'), nc=5)
    hook = correspondence_intersect(stock.yaml, target.yaml)
    with caplog.at_level('INFO', logger='yolov5'):
        kept = hook(stock.state_dict(), target.state_dict(), exclude=['anchor'])
    n = len(target.state_dict())
    assert f'transferred {len(kept)}/{n} tensors by layer correspondence; target layers left fresh: ' \
           f'5 (CBAM), 8 (CBAM), 12 (CBAM)' in caplog.text
