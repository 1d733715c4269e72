"""Bad weights and checkpoint files: nothing in a checkpoint, an ONNX model's metadata or a label cache
runs; a file that is not a usable YOLOv5 checkpoint is one line with exit code 2."""

import os
import pathlib

import numpy as np
import pytest
import torch

from bad_input import assert_bad_input, assert_bad_input_isolated, folder, make_workspace, run_in_process, write
from yolo_attn.data.shapes import generate_shapes


@pytest.fixture(scope='module')
def ws(tmp_path_factory):
    return make_workspace(tmp_path_factory)


def onnx_with_names(path, names: str):
    """A valid ONNX model (Identity) carrying yolov5's metadata keys, ``names`` as given."""
    import onnx
    from onnx import TensorProto, helper
    x = helper.make_tensor_value_info('images', TensorProto.FLOAT, [1, 3, 64, 64])
    y = helper.make_tensor_value_info('output0', TensorProto.FLOAT, [1, 3, 64, 64])
    graph = helper.make_graph([helper.make_node('Identity', ['images'], ['output0'])], 'g', [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 12)])
    model.ir_version = 8
    for key, value in {'stride': '32', 'names': names}.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(model, str(path))
    return path


class TouchOnLoad:
    """A pickle payload: unpickling it creates ``marker``."""

    def __init__(self, marker):
        self.marker = pathlib.Path(marker)

    def __reduce__(self):
        return pathlib.Path.touch, (self.marker,)


def test_onnx_metadata_code_and_a_pickled_label_cache_never_run(ws, monkeypatch, capsys, tmp_path):
    from yolov5.models.common import DetectMultiBackend
    from yolov5.utils.dataloaders import LoadImagesAndLabels
    # ONNX: names as a literal load; names as code are refused and do not run
    assert DetectMultiBackend(str(onnx_with_names(tmp_path / 'ok.onnx', "{0: 'a', 1: 'b'}"))).names == {0: 'a', 1: 'b'}
    marker = tmp_path / 'onnx-ran'
    evil = onnx_with_names(tmp_path / 'evil.onnx', f"__import__('pathlib').Path({str(marker)!r}).touch() or {{0: 'a'}}")
    rc, lines, _ = run_in_process(ws, monkeypatch, capsys, 'detect', '--weights', evil, '--source', 'ds/images/val',
                                  '--imgsz', 64)
    assert rc == 2 and 'refused to evaluate' in lines[-1] and not marker.exists()
    # label cache: a pickle payload that np.load(allow_pickle=True) would run
    probe = tmp_path / 'probe.npy'
    with open(probe, 'wb') as f:
        np.save(f, np.array(TouchOnLoad(tmp_path / 'probe-ran'), dtype=object), allow_pickle=True)
    np.load(probe, allow_pickle=True)
    assert (tmp_path / 'probe-ran').exists()  # the payload is live
    ds = tmp_path / 'ds'
    generate_shapes(ds, n_train=2, n_val=2, imgsz=64, progress=False)
    marker = tmp_path / 'cache-ran'
    with open(ds / 'labels' / 'val.cache', 'wb') as f:
        np.save(f, np.array(TouchOnLoad(marker), dtype=object), allow_pickle=True)
    dataset = LoadImagesAndLabels(str(ds / 'images' / 'val'), img_size=64, batch_size=2)
    assert not marker.exists() and len(dataset.im_files) == 2 and len(dataset.labels) == 2  # rebuilt from labels


def malicious_pth(ws):
    class Payload:
        def __reduce__(self):
            return os.system, ('echo pwned',)
    torch.save({'model': Payload()}, ws / 'evil.pth')
    return 'evil.pth'


def not_yolov5(ws):
    torch.save({'model': torch.nn.Linear(2, 2)}, ws / 'linear.pt')
    return 'linear.pt'


def random_pt(ws):
    (ws / 'random.pt').write_bytes(np.random.default_rng(0).bytes(3000))
    return 'random.pt'


BAD_CHECKPOINTS = {  # name: (argv builder, words the one line must contain)
    'train --weights with a pickle payload': (lambda ws: ['train', '--data', 'ds/shapes.yaml', '--weights',
                                                          malicious_pth(ws), '--cfg', 'yolov5n-se'],
                                              'refused: it references'),
    'val --weights with a pickle payload': (lambda ws: ['val', '--weights', malicious_pth(ws), '--data',
                                                        'ds/shapes.yaml'], 'refused: it references'),
    'model is not YOLOv5': (lambda ws: ['val', '--weights', not_yolov5(ws), '--data', 'ds/shapes.yaml'],
                            'not a YOLOv5 detection model'),
    'random bytes as .pt': (lambda ws: ['val', '--weights', random_pt(ws), '--data', 'ds/shapes.yaml'],
                            'not a readable PyTorch checkpoint (truncated or another format?)'),
    'TensorFlow SavedModel folder': (lambda ws: ['val', '--weights', folder(ws, 'm_saved_model'), '--data',
                                                 'ds/shapes.yaml'], 'graph operations'),
    'heatmap on ONNX': (lambda ws: ['heatmap', '--weights', onnx_with_names(ws / 'm.onnx', '{0: 1}'), '--source',
                                    'ds/images/val'], 'needs the PyTorch .pt'),
    'heatmap on TorchScript': (lambda ws: ['heatmap', '--weights', write(ws, 'm.torchscript', 'x'), '--source',
                                           'ds/images/val'], 'needs the PyTorch .pt'),
}


@pytest.mark.parametrize('case', list(BAD_CHECKPOINTS))
def test_bad_checkpoint_is_one_line_and_exit_2(ws, monkeypatch, capsys, case):
    assert_bad_input(ws, monkeypatch, capsys, *BAD_CHECKPOINTS[case])


def zip_pt(ws):
    import zipfile
    with zipfile.ZipFile(ws / 'zip.pt', 'w') as z:
        z.writestr('archive/data.txt', 'not a checkpoint')
    return 'zip.pt'


def edited_pt(ws, what):
    """ok.pt with one piece of its metadata damaged: ``names`` (one name), ``stride`` (the Detect's
    empty) or ``yaml`` (removed)."""
    model = torch.load(ws / 'ok.pt', weights_only=False)['model']
    if what == 'names':
        model.names = ['only']
    elif what == 'stride':
        model.model[-1].stride = torch.tensor([])
    else:
        del model.yaml
    torch.save({'model': model, 'epoch': -1}, ws / f'edited-{what}.pt')
    return f'edited-{what}.pt'


# Run from an empty folder with the network refused: also nothing written but runs/
BAD_CHECKPOINTS_ISOLATED = {  # name: (argv builder, words the one line must contain)
    '.pt is a zip of something else': (lambda ws: ['detect', '--weights', zip_pt(ws), '--source', 'ds/images/val'],
                                       'a zip archive without the records torch.save writes'),
    'weights is a folder': (lambda ws: ['val', '--weights', folder(ws, 'wdir.pt'), '--data', 'ds/shapes.yaml'],
                            'wdir.pt: is a folder, not a checkpoint file'),
    'checkpoint names fewer than classes': (lambda ws: ['detect', '--weights', edited_pt(ws, 'names'), '--source',
                                                         'ds/images/val'], 'holds 1 names'),
    'checkpoint Detect stride empty': (lambda ws: ['heatmap', '--weights', edited_pt(ws, 'stride'), '--source',
                                                   'ds/images/val'], 'expected 3 positive values'),
    'checkpoint without model.yaml, train --cfg': (lambda ws: ['train', '--data', 'ds/shapes.yaml', '--weights',
                                                               edited_pt(ws, 'yaml'), '--cfg', 'yolov5n-cbam'],
                                                   'model.yaml'),
}


@pytest.mark.parametrize('case', list(BAD_CHECKPOINTS_ISOLATED))
def test_bad_checkpoint_is_one_line_exit_2_offline_and_writes_nothing(ws, monkeypatch, capsys, no_network, tmp_path,
                                                                      case):
    assert_bad_input_isolated(ws, monkeypatch, capsys, no_network, tmp_path, *BAD_CHECKPOINTS_ISOLATED[case])
