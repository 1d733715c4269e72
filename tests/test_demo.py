"""The demo pipeline end to end on a tiny budget (the real settings are measured in the README)."""

import json
from pathlib import Path

from yolo_attn.demo import print_summary, run_demo


def test_demo_writes_everything_into_a_new_folder(tmp_path, capsys):
    (tmp_path / 'demo' / 'exp').mkdir(parents=True)
    (tmp_path / 'demo' / 'exp' / 'old.txt').write_text('keep')
    summary = run_demo(tmp_path / 'demo', 'exp', n_train=8, n_val=4, imgsz=64, epochs=1, batch=4)
    out = Path(summary['dir'])
    assert out.name == 'exp2' and (tmp_path / 'demo' / 'exp' / 'old.txt').read_text() == 'keep'
    assert (out / 'train' / 'weights' / 'best.pt').is_file() and (out / 'val').is_dir()
    saved = json.loads((out / 'summary.json').read_text())
    assert 0 <= saved['mAP50'] <= 1 and saved['settings']['epochs'] == 1 and saved['seconds']['total'] > 0
    print_summary(summary)
    text = capsys.readouterr().out
    assert 'yolo-attn demo finished' in text and str(out / 'summary.json') in text
