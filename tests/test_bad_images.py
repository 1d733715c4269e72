"""Bad datasets, labels, images and image sources: unreadable, empty, truncated or self-linked images,
non-finite or short labels, a camera or video that gives nothing are one line with exit code 2."""

import os

import pytest

from bad_input import TRAIN, assert_bad_input, assert_bad_input_isolated, folder, make_workspace, random_file, write


@pytest.fixture(scope='module')
def ws(tmp_path_factory):
    return make_workspace(tmp_path_factory)


def dataset_with(ws, name, label=None, images=None):
    """A copy of the shapes data YAML whose first val label or every val image is replaced."""
    import shutil
    shutil.copytree(ws / 'ds', ws / name, dirs_exist_ok=True)
    yaml_text = (ws / 'ds' / 'shapes.yaml').read_text().replace(str(ws / 'ds'), str(ws / name))
    (ws / name / 'shapes.yaml').write_text(yaml_text)
    if label is not None:
        sorted((ws / name / 'labels' / 'val').glob('*.txt'))[0].write_text(label)
        sorted((ws / name / 'labels' / 'train').glob('*.txt'))[0].write_text(label)
    if images is not None:
        for f in (ws / name / 'images' / 'val').glob('*'):
            f.write_bytes(images)
    return f'{name}/shapes.yaml'


def truncated(ws):
    (ws / 'tr.jpg').write_bytes((ws / 'ds' / 'images' / 'val' / '00000.jpg').read_bytes()[:300])
    return 'tr.jpg'


def selflink(ws):
    if not (ws / 'self.jpg').is_symlink():
        os.symlink('self.jpg', ws / 'self.jpg')
    return 'self.jpg'


BAD_IMAGES = {  # name: (argv builder, words the one line must contain)
    'label class nan': (lambda ws: ['train', '--data', dataset_with(ws, 'nan', label='nan 0.5 0.5 0.1 0.1\n'),
                                    *TRAIN], 'finite'),
    'label x_center inf': (lambda ws: ['train', '--data', dataset_with(ws, 'inf', label='0 inf 0.5 0.1 0.1\n'),
                                       *TRAIN], 'finite'),
    'no readable val image': (lambda ws: ['val', '--weights', 'ok.pt', '--data', dataset_with(ws, 'unread',
                                                                                             images=b'junk')],
                              'can be read'),
    'source is an empty file': (lambda ws: ['detect', '--weights', 'ok.pt', '--source', write(ws, 'e.jpg', '')],
                                'could be read'),
    'source is text': (lambda ws: ['detect', '--weights', 'ok.pt', '--source', write(ws, 't.jpg', 'text')],
                       'could be read'),
    'source is a truncated JPEG': (lambda ws: ['heatmap', '--weights', 'ok.pt', '--imgsz', '64', '--source',
                                               truncated(ws)], 'could be read'),
    'source symlinks to itself': (lambda ws: ['detect', '--weights', 'ok.pt', '--source', selflink(ws)], 'symlink'),
    'camera 7 absent': (lambda ws: ['detect', '--weights', 'ok.pt', '--source', '7'], 'camera'),
}


@pytest.mark.parametrize('case', list(BAD_IMAGES))
def test_bad_image_or_dataset_is_one_line_and_exit_2(ws, monkeypatch, capsys, case):
    assert_bad_input(ws, monkeypatch, capsys, *BAD_IMAGES[case])


# Run from an empty folder with the network refused: also nothing written but runs/
BAD_IMAGES_ISOLATED = {  # name: (argv builder, words the one line must contain)
    'source is a folder without images': (lambda ws: ['detect', '--weights', 'ok.pt', '--source',
                                                      folder(ws, 'nonimg')], 'No images or videos found'),
    'label with 4 columns': (lambda ws: ['val', '--weights', 'ok.pt', '--data', dataset_with(
        ws, 'four', label='0 0.5 0.5 0.1\n')], 'x_center y_center width height'),
    'video that does not decode': (lambda ws: ['detect', '--weights', 'ok.pt', '--source', random_file(ws, 'v.mp4')],
                                   'gave an image or a video frame'),
}


@pytest.mark.parametrize('case', list(BAD_IMAGES_ISOLATED))
def test_bad_image_or_dataset_is_one_line_exit_2_offline_and_writes_nothing(ws, monkeypatch, capsys, no_network,
                                                                            tmp_path, case):
    assert_bad_input_isolated(ws, monkeypatch, capsys, no_network, tmp_path, *BAD_IMAGES_ISOLATED[case])
