"""YAML surgery: rewiring by construction, the attention: section, text edits, weight remap, bad input.

The central property: inserting a block that is the identity anywhere in any stock yolov5 YAML,
then moving the stock weights to their new indices with the correspondence map, gives a network
that computes exactly what the original computes. Every reference must still read the feature it
read before, or outputs differ. To keep the runtime bounded, each stock structure is built with
yolov5n's multiples (depth 0.33, width 0.25): rewiring reads rows, and the 28 stock files are 15
distinct row structures (n/s/m/l/x differ only in their multiples).
"""

import argparse
import copy
import functools
import json
from pathlib import Path

import pytest
import torch
import torch.nn as nn
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import yolov5.models.yolo as yolo
from yolo_attn import ModelConfigError, register_block
from yolo_attn.config.files import load_cfg
from yolo_attn.errors import UserError
from yolo_attn.config.summary import quiet_yolov5
from yolo_attn.config.insert_file import insert_into_yaml_file
from yolo_attn.config.surgery import expand_attention, expand_attention_with_map, insert_blocks
from yolo_attn.config.textedit import rewrite_rows
from yolo_attn.cli.model import configure_insert as add_insert_arguments, run_insert as cmd_insert
from yolo_attn.config.transfer import intersect_by_correspondence, layer_correspondence, remap_state_dict

UPSTREAM = Path(yolo.__file__).parents[1] / 'models'


pytestmark = pytest.mark.usefixtures('one_thread')
STOCK = sorted(p for d in ('', 'hub', 'segment') for p in (UPSTREAM / d).glob('*.yaml') if p.name != 'anchors.yaml')


@register_block(paper='test block: identity')
class SurgeryIdentity(nn.Module):
    def __init__(self, c1):
        super().__init__()

    def forward(self, x):
        return x


@register_block(paper='test block: changes the shape')
class SurgeryHalver(nn.Module):
    def __init__(self, c1):
        super().__init__()

    def forward(self, x):
        return x[:, ::2]


def rows(d):
    return d['backbone'] + d['head']


def structure(path):
    d = load_cfg(path)
    return json.dumps({k: v for k, v in d.items() if k not in ('depth_multiple', 'width_multiple')}, sort_keys=True)


STRUCTURES = list({structure(p): p for p in reversed(STOCK)}.values())  # one file per distinct structure


def small(d):
    return {**copy.deepcopy(d), 'depth_multiple': 0.33, 'width_multiple': 0.25}


def build(d):
    with quiet_yolov5():
        return yolo.Model(copy.deepcopy(d)).eval()


@functools.lru_cache(maxsize=None)
def original(path):
    """The stock structure (small multiples), its model and an input its strides divide."""
    d = small(load_cfg(path))
    model = build(d)
    size = 128 if int(model.stride.max()) > 64 else 64
    return d, model, torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(0))


def flat(out):
    return [o for item in out for o in flat(item)] if isinstance(out, (list, tuple)) else [out]


def feature_rows(d):
    return [i for i, r in enumerate(rows(d)) if r[2] not in ('Detect', 'Segment')]


def assert_wired_by_construction(d, new, mapping):
    """Each reference to old row t now reads the last block stacked after t (t itself if none); every
    row that is not an old row is an inserted block reading the row before it."""
    old_rows, new_rows = rows(d), rows(new)
    inserted = set(range(len(new_rows))) - set(mapping.values())
    assert sorted(mapping) == list(range(len(old_rows))) and list(mapping.values()) == sorted(mapping.values())
    for j in inserted:
        assert new_rows[j][0] == -1 and new_rows[j][2] in ('SurgeryIdentity', 'CBAM', 'SE')

    def carrier(t):
        j = mapping[t]
        while j + 1 in inserted:
            j += 1
        return j

    for i, (f, n, m, args) in enumerate(old_rows):
        nf, nn_, nm, nargs = new_rows[mapping[i]]
        assert (nn_, nm, nargs) == (n, m, args)
        old_refs, new_refs = (f if isinstance(f, list) else [f]), (nf if isinstance(nf, list) else [nf])
        assert [x < 0 for x in old_refs] == [x < 0 for x in new_refs]  # absolute stays absolute, relative relative
        want = [-1 if (i == 0 and x == -1) else carrier(x if x >= 0 else i + x) for x in old_refs]
        got = [-1 if (i == 0 and x == -1) else (x if x >= 0 else mapping[i] + x) for x in new_refs]
        assert got == want, (i, f, nf)


def assert_same_function(path, new, mapping):
    d, model, x = original(path)
    modified = build(new)
    modified.load_state_dict(remap_state_dict(model.state_dict(), mapping))  # strict: every layer lands
    with torch.no_grad():
        for a, b in zip(flat(model(x)), flat(modified(x)), strict=True):
            torch.testing.assert_close(b, a, atol=0, rtol=0)


def test_structures_cover_every_stock_yaml():
    assert len(STOCK) == 28 and len(STRUCTURES) == 15
    assert {structure(p) for p in STOCK} == {structure(p) for p in STRUCTURES}


@pytest.mark.parametrize('path', STRUCTURES, ids=lambda p: p.stem)
def test_identity_after_every_layer_keeps_outputs(path):
    """An identity after every feature layer at once: every reference in the file is rewired."""
    d = original(path)[0]
    new, mapping = insert_blocks(d, 'SurgeryIdentity', feature_rows(d), [])
    assert len(rows(new)) == 2 * len(rows(d)) - 1
    assert_wired_by_construction(d, new, mapping)
    assert layer_correspondence(d, new) == mapping  # what transfer's alignment finds
    assert_same_function(path, new, mapping)


@st.composite
def insertions(draw):
    path = draw(st.sampled_from(STRUCTURES))
    hosts = draw(st.lists(st.sampled_from(feature_rows(original(path)[0])), min_size=1, max_size=4))
    return path, hosts


@settings(max_examples=30, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(insertions())
def test_identity_at_random_positions_keeps_outputs(case):
    """Random configs and hosts, repeated hosts stacking blocks (one attention: entry each)."""
    path, hosts = case
    d = original(path)[0]
    section = {**d, 'attention': [{'block': 'SurgeryIdentity', 'after': [h]} for h in hosts]}
    new, mapping = expand_attention_with_map(section)
    assert 'attention' not in new and len(rows(new)) == len(rows(d)) + len(hosts)
    assert_wired_by_construction(d, new, mapping)
    assert layer_correspondence(d, new) == layer_correspondence(d, section) == mapping
    if len(set(hosts)) == len(hosts):
        assert insert_blocks(d, 'SurgeryIdentity', hosts, []) == (new, mapping)
    assert_same_function(path, new, mapping)


def test_negative_offsets_spanning_an_insertion():
    """yolov3-tiny's head reads [-2] (layer 14 from 16) and Detect reads [19, 15]."""
    d = load_cfg('yolov3-tiny')
    new, mapping = insert_blocks(d, 'SE', [15], [])
    r = rows(new)
    assert r[17] == [-3, 1, 'Conv', [128, 1, 1]]  # still layer 14, now three rows back
    assert r[16] == [-1, 1, 'SE', []] and r[-1][0] == [20, 16]  # Detect reads the attended P5
    assert mapping == {i: i + (i > 15) for i in range(21)}


def test_matches_the_hand_written_shipped_yamls():
    for size in 'nsmlx':
        for name, block in (('cbam', 'CBAM'), ('se', 'SE')):
            new, mapping = insert_blocks(load_cfg(f'yolov5{size}'), block, [4, 6, 9], [])
            assert new == load_cfg(f'yolov5{size}-{name}')
    assert mapping == {i: i + (i >= 5) + (i >= 7) + (i >= 10) for i in range(25)}


def test_insert_file_and_attention_section_give_the_same_network(tmp_path):
    """`yolo-attn insert` output and the `attention:` section: same rows, same network, same outputs.
    (Building Model(dict with an attention: section) needs parse_model to call expand_attention.)"""
    out = tmp_path / 'yolov5s-cbam-ins.yaml'
    insert_into_yaml_file('yolov5s', out, 'CBAM', [4, 6, 9], [8, 3])
    section = {**load_cfg('yolov5s'), 'attention': [{'block': 'CBAM', 'after': [4, 6, 9], 'args': [8, 3]}]}
    assert expand_attention(section) == load_cfg(out)
    section_file = tmp_path / 'section.yaml'
    section_file.write_text((UPSTREAM / 'yolov5s.yaml').read_text() + '\nattention:\n'
                            '  - {block: CBAM, after: [4, 6, 9], args: [8, 3]}\n')
    a, b = build(load_cfg(out)), build(load_cfg(section_file))
    assert [(m.i, m.f, m.type, m.np) for m in a.model] == [(m.i, m.f, m.type, m.np) for m in b.model]
    assert b.model[5].channel.mlp[0].out_features == 128 // 8 and b.model[12].spatial.conv.kernel_size == (3, 3)
    b.load_state_dict(a.state_dict())
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(b(x)[0], a(x)[0], atol=0, rtol=0)


def test_stock_weights_land_in_every_corresponding_layer():
    torch.manual_seed(0)
    d = load_cfg('yolov5n')
    stock = build(d)
    with torch.no_grad():
        for t in stock.state_dict().values():
            if t.is_floating_point():
                t.normal_()  # nothing left at an initial value that a fresh model would share
    new, mapping = insert_blocks(d, 'CBAM', [2, 4, 6, 9, 17], [])
    section = {**d, 'attention': [{'block': 'CBAM', 'after': [2, 4, 6, 9, 17]}]}
    assert layer_correspondence(d, new) == layer_correspondence(d, section) == mapping
    target = build(new)
    kept, fresh = intersect_by_correspondence(stock.state_dict(), target.state_dict(), d, new)
    target.load_state_dict(kept, strict=False)
    inserted = sorted(set(range(len(rows(new)))) - set(mapping.values()))
    assert fresh == inserted == [3, 6, 9, 13, 22]
    loaded = target.state_dict()
    for key, value in stock.state_dict().items():
        parts = key.split('.')
        parts[1] = str(mapping[int(parts[1])])
        assert torch.equal(loaded['.'.join(parts)], value), key
    assert len(kept) == len(stock.state_dict())


def test_attention_section_map_is_exact_where_alignment_is_ambiguous():
    """SE after layer 4 of yolov5s-se (which has an SE at 5): by signature alone the stock SE could
    pair with either; the section's own map says the stock SE moved to 6."""
    d = load_cfg('yolov5s-se')
    section = {**d, 'attention': [{'block': 'SE', 'after': 4}]}
    new, mapping = expand_attention_with_map(section)
    assert mapping[5] == 6 and rows(new)[5] == rows(new)[6] == [-1, 1, 'SE', []]
    assert layer_correspondence(d, section) == mapping
    assert layer_correspondence(d, new)[5] == 5  # plain alignment of the expanded dict picks the first SE


def test_text_edit_keeps_comments_order_and_fixes_index_comments(tmp_path):
    src = (UPSTREAM / 'yolov5s.yaml').read_text()
    out_path = tmp_path / 'out.yaml'
    insert_into_yaml_file(UPSTREAM / 'yolov5s.yaml', out_path, 'CBAM', [4, 6, 9], [])
    out = out_path.read_text()
    assert out.startswith('# yolo-attn insert: CBAM after layers 4, 6, 9 of yolov5s.yaml (now layers 5, 8, 12).\n')
    for line in ('   [-1, 1, CBAM, []],  # 5 CBAM, inserted', '   [[-1, 8], 1, Concat, [1]],  # cat backbone P4',
                 '   [-1, 1, Conv, [512, 3, 2]],  # 6-P4/16', '   [-1, 3, C3, [256, False]],  # 20 (P3/8-small)',
                 '   [[20, 23, 26], 1, Detect, [nc, anchors]],  # Detect(P3, P4, P5)',
                 'width_multiple: 0.50  # layer channel multiple'):
        assert line in out.splitlines(), line
    not_rows = iter(line for line in src.splitlines() if not line.lstrip().startswith('['))
    remaining = iter(out.splitlines())
    assert all(line in remaining for line in not_rows)  # every comment, key, blank line and bracket, in order
    assert yaml.safe_load(out) == insert_blocks(load_cfg('yolov5s'), 'CBAM', [4, 6, 9], [])[0]


@pytest.mark.parametrize('path', STOCK, ids=lambda p: f'{p.parent.name}/{p.stem}')
def test_text_edit_applies_to_every_stock_layout(path):
    d = load_cfg(path)
    hosts = sorted(set(feature_rows(d)[::3] + feature_rows(d)[-1:]))
    new, mapping = insert_blocks(d, 'SE', hosts, [8])
    out = rewrite_rows(path.read_text(), rows(d), rows(new), mapping, '')
    assert out is not None and yaml.safe_load(out) == new
    assert len(out.splitlines()) == len(path.read_text().splitlines()) + len(hosts)


def test_unusual_layouts_fall_back_to_a_clean_dump(tmp_path):
    d = load_cfg('yolov5n')
    block_style = tmp_path / 'block.yaml'
    block_style.write_text(yaml.safe_dump(d, sort_keys=False))  # rows as block sequences
    closing = tmp_path / 'closing.yaml'
    closing.write_text((UPSTREAM / 'yolov5n.yaml').read_text().replace('[1024, 5]],  # 9\n  ]', '[1024, 5]]]  # 9'))
    with_section = tmp_path / 'section.yaml'
    with_section.write_text((UPSTREAM / 'yolov5n.yaml').read_text() + 'attention: [{block: SE, after: [4]}]\n')
    for src in (block_style, closing, with_section):
        out = tmp_path / f'{src.stem}-out.yaml'
        mapping = insert_into_yaml_file(src, out, 'CBAM', [9], [])
        text = out.read_text()
        assert '# (written from the parsed YAML' in text.splitlines()[2]
        assert list(yaml.safe_load(text)) == [k for k in load_cfg(src) if k != 'attention']
        assert yaml.safe_load(text) == insert_blocks(load_cfg(src), 'CBAM', [9], [])[0]
    assert mapping[9] == 10 and rows(load_cfg(out))[5] == [-1, 1, 'SE', []]  # section expanded too


def test_refuses_to_overwrite(tmp_path):
    out = tmp_path / 'taken.yaml'
    out.write_text('keep me')
    with pytest.raises(UserError, match='already exists; refusing to overwrite'):
        insert_into_yaml_file('yolov5n', out, 'SE', [4], [])
    assert out.read_text() == 'keep me'


def parse_cli(*argv):
    p = argparse.ArgumentParser(prog='yolo-attn insert')
    add_insert_arguments(p)
    return p.parse_args(list(argv))


def test_cli_insert(tmp_path, capsys):
    out = tmp_path / 'n-ca.yaml'
    assert cmd_insert(parse_cli('--cfg', 'yolov5n', '--block', 'CoordAtt', '--after', '4,6,9', '--args', '16',
                                '-o', str(out))) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == f'wrote {out}: CoordAtt [16] after layers 4, 6, 9 of yolov5n.yaml (new layers 5, 8, 12)'
    assert printed[1] == 'layer map (old -> new): 0-4 -> 0-4, 5-6 -> 6-7, 7-9 -> 9-11, 10-24 -> 13-27'
    assert rows(load_cfg(out))[5] == [-1, 1, 'CoordAtt', [16]]
    parsed = parse_cli('--cfg', 'x', '--block', 'SimAM', '--after', '4', '--args', '0.001,2', '-o', 'y')
    assert parsed.after == [4] and parsed.args == [0.001, 2]
    with pytest.raises(SystemExit):
        parse_cli('--cfg', 'x', '--block', 'SE', '--after', '4,x', '-o', 'y')


BAD = [
    ('CBAM', [25], None, 'after 25: no such layer; the model has layers 0..24 (a block can follow layers 0..23)'),
    ('CBAM', [24], None, "after 24: layer 24 is Detect, the model's output, not a feature map; "
                         'a block can follow layers 0..23'),
    ('CBAM', [-1], None, 'after -1: no such layer'),
    ('CBMA', [4], None, "unknown block 'CBMA'; did you mean CBAM?"),
    ('C3', [4], None, 'C3 is a YOLOv5 layer, not an attention block'),
    ('SE', [4, 4], None, 'after lists layer 4 twice'),
    ('SE', [], None, 'after: no layer index given'),
    ('SE', [4], 16, 'args must be a list'),
]


@pytest.mark.parametrize('block,after,args,message', BAD, ids=[b[3][:30] for b in BAD])
def test_bad_input_is_one_line(block, after, args, message, tmp_path):
    d = load_cfg('yolov5s')
    with pytest.raises(ModelConfigError) as e:
        insert_blocks(d, block, after, args)
    assert message in str(e.value) and '\n' not in str(e.value)
    with pytest.raises(ModelConfigError) as e:  # the same through the attention: section, naming the entry
        expand_attention({**d, 'attention': [{'block': block, 'after': after, 'args': args}]})
    assert str(e.value).startswith('attention[0]: ') and message in str(e.value)
    with pytest.raises(UserError) as e:  # and through the file writer, naming the file
        insert_into_yaml_file('yolov5s', tmp_path / 'o.yaml', block, after, args)
    assert str(e.value).startswith(str(UPSTREAM / 'yolov5s.yaml')) and message in str(e.value)
    assert not (tmp_path / 'o.yaml').exists()


def test_shape_changing_block_is_one_line(tmp_path):
    with pytest.raises(ModelConfigError) as e:
        insert_into_yaml_file('yolov5n', tmp_path / 'o.yaml', 'SurgeryHalver', [4], [])
    assert 'with SurgeryHalver inserted after 4: layer 5 (SurgeryHalver): registered block SurgeryHalver must ' \
           'preserve its input shape, (1, 64, 8, 8) became (1, 32, 8, 8)' in str(e.value)
    assert '\n' not in str(e.value) and not (tmp_path / 'o.yaml').exists()
    with pytest.raises(ModelConfigError, match='layer 5 .SurgeryHalver.: registered block SurgeryHalver must preserve'):
        yolo.Model(expand_attention({**load_cfg('yolov5n'), 'attention': [{'block': 'SurgeryHalver', 'after': 4}]}))


@pytest.mark.parametrize('section,message', [
    ({'block': 'SE'}, "attention[0]: missing 'after'"),
    ([{'block': 'SE', 'after': 4, 'r': 8}], "attention[0]: unknown key 'r'; an entry has block, after, args"),
    ('SE after 4', 'attention: expected a list of {block, after, args} entries'),
    ([['SE', 4]], 'attention[0]: expected a mapping'),
    ([{'block': 'SE', 'after': [4]}, {'block': 'SE', 'after': 'four'}],
     "attention[1]: after 'four': expected a layer index"),
])
def test_malformed_attention_section(section, message):
    with pytest.raises(ModelConfigError) as e:
        expand_attention({**load_cfg('yolov5n'), 'attention': section})
    assert message in str(e.value) and '\n' not in str(e.value)


def test_expand_attention_leaves_plain_dicts_alone():
    d = load_cfg('yolov5n')
    assert expand_attention(d) is d
    assert expand_attention({**d, 'attention': None}) == d
    single = expand_attention({**d, 'attention': {'block': 'ECA', 'after': 4, 'args': [3]}})  # one mapping is one entry
    assert rows(single)[5] == [-1, 1, 'ECA', [3]] and 'attention' not in single


def test_cli_subprocess_error_is_one_line_exit_2(cli, tmp_path):
    out = cli('insert', '--cfg', 'yolov5s', '--block', 'CBAM', '--after', '4,24', '-o', tmp_path / 'o.yaml')
    assert out.returncode == 2 and 'Traceback' not in out.stderr
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith('yolo-attn insert: error: ') and "after 24: layer 24 is Detect, the model's output" in last
    assert not (tmp_path / 'o.yaml').exists()
