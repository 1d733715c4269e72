"""Bad model, data and hyperparameter YAML: python tags are refused, wrong values and shapes are one
line naming the key, with exit code 2."""

import pytest

from bad_input import (NAMES, SPLITS, STOCK, TRAIN, assert_bad_input, assert_bad_input_isolated, data_yaml,
                       make_workspace, random_file, write)


@pytest.fixture(scope='module')
def ws(tmp_path_factory):
    return make_workspace(tmp_path_factory)


def variant(ws, name, old, new):
    """yolov5n.yaml with ``old`` replaced by ``new``."""
    return write(ws, name, STOCK.read_text().replace(old, new))


BAD_YAML = {  # name: (argv builder, words the one line must contain)
    'model nc is a string': (lambda ws: ['build', '--cfg', variant(ws, 'm1.yaml', 'nc: 80', "nc: '80'")], 'nc:'),
    'model nc is 0': (lambda ws: ['build', '--cfg', variant(ws, 'm2.yaml', 'nc: 80', 'nc: 0')], 'nc: 0'),
    'depth_multiple negative': (lambda ws: ['build', '--cfg', variant(ws, 'm3.yaml', 'depth_multiple: 0.33',
                                                                      'depth_multiple: -1')], 'depth_multiple'),
    'width_multiple is a string': (lambda ws: ['build', '--cfg', variant(ws, 'm4.yaml', 'width_multiple: 0.25',
                                                                         'width_multiple: wide')], 'width_multiple'),
    'layer kernel 0': (lambda ws: ['build', '--cfg', variant(ws, 'm5.yaml', '[64, 6, 2, 2]', '[64, 0, 2, 2]')],
                       'layer 0'),
    'layer stride is a string': (lambda ws: ['build', '--cfg', variant(ws, 'm6.yaml', '[64, 6, 2, 2]',
                                                                       "[64, 6, 'x', 2]")], 'layer 0'),
    'unknown Upsample mode': (lambda ws: ['build', '--cfg', variant(ws, 'm7.yaml', "'nearest'", "'bogus'")],
                              'Upsample'),
    'data YAML missing': (lambda ws: ['val', '--weights', 'ok.pt', '--data', 'missing.yaml'], 'missing.yaml'),
    'data YAML is a folder': (lambda ws: ['val', '--weights', 'ok.pt', '--data', 'ds'], 'folder'),
    'hyp python/object/apply': (lambda ws: ['train', '--data', 'ds/shapes.yaml', *TRAIN, '--hyp',
                                            write(ws, 'h.yaml', '!!python/object/apply:os.system ["echo pwned"]\n')],
                                'refused'),
    'hyp missing keys': (lambda ws: ['train', '--data', 'ds/shapes.yaml', *TRAIN, '--hyp',
                                     write(ws, 'h2.yaml', 'lr0: 0.01\n')], 'missing hyperparameters'),
}


@pytest.mark.parametrize('case', list(BAD_YAML))
def test_bad_yaml_is_one_line_and_exit_2(ws, monkeypatch, capsys, case):
    assert_bad_input(ws, monkeypatch, capsys, *BAD_YAML[case])


# Run from an empty folder with the network refused: also nothing written but runs/
BAD_YAML_ISOLATED = {  # name: (argv builder, words the one line must contain)
    'hyp python/object/new': (lambda ws: ['train', '--data', 'ds/shapes.yaml', *TRAIN, '--hyp', write(
        ws, 'h3.yaml', 'lr0: !!python/object/new:os.system ["echo pwned"]\n')], 'refused'),
    'data names python/name': (lambda ws: ['val', '--weights', 'ok.pt', '--data', data_yaml(
        ws, 'd1.yaml', SPLITS + 'names: !!python/name:os.system\n')], 'refused'),
    'model python/object/apply': (lambda ws: ['build', '--cfg', write(ws, 'm8.yaml', '!!python/object/apply:os.system '
                                                                                    '["echo pwned"]\n')], 'refused'),
    'anchors as strings': (lambda ws: ['build', '--cfg', variant(ws, 'm9.yaml', '[10,13, 16,30, 33,23]',
                                                                 '[ten,13, 16,30, 33,23]')], 'anchors:'),
    'data names fewer than nc': (lambda ws: ['val', '--weights', 'ok.pt', '--data', data_yaml(
        ws, 'd5.yaml', SPLITS + 'nc: 5\nnames: [a, b, c]\n')], 'lists 3 classes'),
    'data classes differ from the weights': (lambda ws: ['val', '--weights', 'ok.pt', '--data', data_yaml(
        ws, 'd6.yaml', SPLITS + 'names: [a, b, c, d, e, f, g]\n')], '(7 classes)'),
    'data YAML is a list': (lambda ws: ['val', '--weights', 'ok.pt', '--data', write(ws, 'd7.yaml', '- a\n- b\n')],
                            'must be a mapping'),
    'hyp lr0 negative': (lambda ws: ['train', '--data', 'ds/shapes.yaml', *TRAIN, '--hyp', write(
        ws, 'h4.yaml', (STOCK.parent.parent / 'data' / 'hyps' / 'hyp.scratch-low.yaml').read_text().replace(
            'lr0: 0.01', 'lr0: -1'))], 'lr0: -1'),
    'data YAML with a key given twice': (lambda ws: ['val', '--weights', 'ok.pt', '--data', data_yaml(
        ws, 'd8.yaml', SPLITS + NAMES + 'val: images/train\n')], "key 'val' is given twice"),
    'binary file as data YAML': (lambda ws: ['val', '--weights', 'ok.pt', '--data', random_file(ws, 'bin.yaml')],
                                 'malformed YAML'),
}


@pytest.mark.parametrize('case', list(BAD_YAML_ISOLATED))
def test_bad_yaml_is_one_line_exit_2_offline_and_writes_nothing(ws, monkeypatch, capsys, no_network, tmp_path, case):
    assert_bad_input_isolated(ws, monkeypatch, capsys, no_network, tmp_path, *BAD_YAML_ISOLATED[case])
