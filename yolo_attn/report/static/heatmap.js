// yolo-attn heatmap report: a grid of every detection (filtered, sorted, rendered in pages), and the
// detail of one (its overlay beside its image's overview). URL hash: class, min, max, level, image,
// sort, view, open (a detection's number), bench.
(function () {
  const tRead = performance.now();
  const D = readData();
  const tParsed = performance.now();
  const images = D.images || [];
  const dets = (D.dets || []).map((row, id) => {
    const d = {id: id};
    D.fields.forEach((f, j) => { d[f] = row[j]; });
    d.imageName = (images[d.image] || {}).name || '';
    d.imageKey = d.imageName.toLowerCase();
    return d;
  });
  const classes = D.classes || [];
  const levels = D.levels || [];
  const DEFAULTS = {class: '', min: '', max: '', level: '', image: '', sort: 'score-desc', view: 'crop'};
  const SORTS = {
    'score-desc': (a, b) => b.score - a.score || a.id - b.id,
    'score-asc': (a, b) => a.score - b.score || a.id - b.id,
    'energy-asc': (a, b) => num(a.energy) - num(b.energy) || a.id - b.id,
    'energy-desc': (a, b) => num(b.energy) - num(a.energy) || a.id - b.id,
    'image': (a, b) => a.id - b.id,
  };
  function num(x) { return x === null || x === undefined ? -1 : x; }

  const ctl = {class: $('f-class'), min: $('f-min'), max: $('f-max'), level: $('f-level'), image: $('f-image'),
               sort: $('f-sort'), view: $('f-view')};
  const byClass = new Map(), byLevel = new Map();
  for (const d of dets) {
    byClass.set(d.cls, (byClass.get(d.cls) || 0) + 1);
    byLevel.set(d.level, (byLevel.get(d.level) || 0) + 1);
  }
  classes.forEach((name, i) => { if (byClass.has(i)) ctl.class.append(option(name, `${name} (${byClass.get(i)})`)); });
  levels.forEach((name, i) => { if (byLevel.has(i)) ctl.level.append(option(name, `${name} (${byLevel.get(i)})`)); });
  $('total').textContent = String(dets.length);

  let view = [];
  const grid = $('grid');
  const pager = new Pager(grid, $('more'), card, 240);

  const state = () => controlState(ctl);
  const setControls = (p) => setControlValues(ctl, DEFAULTS, p);

  function apply(updateHash) {
    const s = state();
    const cls = s.class === '' ? -1 : classes.indexOf(s.class);
    const lvl = s.level === '' ? -1 : levels.indexOf(s.level);
    const lo = s.min === '' ? -Infinity : Number(s.min), hi = s.max === '' ? Infinity : Number(s.max);
    const text = s.image.toLowerCase();
    view = dets.filter((d) => (cls < 0 || d.cls === cls) && (lvl < 0 || d.level === lvl) &&
                              d.score >= lo && d.score <= hi && (!text || d.imageKey.includes(text)));
    view.sort(SORTS[s.sort] || SORTS['score-desc']);
    grid.classList.toggle('full', s.view === 'full');
    $('count').textContent = String(view.length);
    $('empty').hidden = view.length > 0;
    pager.reset(view);
    if (updateHash) setHash({...s, open: openId === null ? '' : openId}, {...DEFAULTS, open: ''});
  }

  // The thumbnail: the detection's PNG, lazily loaded; by default moved and scaled so that a square
  // window around the box fills the square frame (the PNG shows the whole image). In percentages of
  // the frame, so it holds at any column width.
  function thumbImage(d) {
    const im = images[d.image];
    const img = el('img', {src: d.png, loading: 'lazy', decoding: 'async',
                           alt: `${classes[d.cls]} ${fmt(d.score, 2)}`});
    if (grid.classList.contains('full') || !im || !im.w || !im.h) return img;
    const [x1, y1, x2, y2] = d.box;
    const side = Math.min(Math.max(2 * Math.max(x2 - x1, y2 - y1), 32), Math.max(im.w, im.h));
    const place = (c, length) => (length >= side ? Math.min(Math.max(c - side / 2, 0), length - side)
                                                 : (length - side) / 2);  // centred where the image is smaller
    const pct = (v) => `${(100 * v / side).toFixed(3)}%`;
    img.style.width = pct(im.w); img.style.height = pct(im.h);
    img.style.left = pct(-place((x1 + x2) / 2, im.w)); img.style.top = pct(-place((y1 + y2) / 2, im.h));
    return img;
  }

  function card(d) {
    const c = el('div', {class: 'card', tabindex: '0', 'data-id': d.id, role: 'button'},
      el('div', {class: 'thumb'}, thumbImage(d)),
      el('div', {class: 'cap'},
        el('div', {class: 'row'}, el('span', {class: 'cls', text: classes[d.cls]}),
           el('span', {text: fmt(d.score, 2)})),
        el('div', {class: 'row'}, el('span', {class: 'lvl', text: levels[d.level]}),
           el('span', {class: 'note', text: `energy in box ${fmt(d.energy, 2)}`})),
        el('div', {class: 'img', title: (images[d.image] || {}).path, text: `${d.imageName} #${d.k}`})));
    c.addEventListener('click', () => open(d.id, true));
    c.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); open(d.id, true); }
    });
    return c;
  }

  // ---- the detail of one detection -------------------------------------------------------------
  let openId = null;
  const detail = $('detail');

  const WIDE = new Set(['image', 'file']);
  function meta(pairs) {
    return el('dl', {class: 'meta'}, ...pairs.filter(([, v]) => v !== null && v !== undefined && v !== '')
      .map(([k, v]) => el('div', {class: WIDE.has(k) ? 'wide' : null}, el('dt', {text: k}), el('dd', {text: v}))));
  }

  // A picture in a frame at the image's aspect ratio, as large as the sheet allows (small images
  // enlarged), so an outline drawn in percentages of the image sits on its box.
  function framed(src, im, attrs) {
    const frame = el('div', {class: 'frame'}, el('img', {...attrs, src: src}));
    if (im.w && im.h) frame.style.setProperty('--ar', String(im.w / im.h));
    return frame;
  }

  function outline(frame, im, box) {
    if (!im.w || !im.h) return frame;
    const [x1, y1, x2, y2] = box;
    const hl = el('div', {class: 'hl'});
    hl.style.left = `${100 * x1 / im.w}%`; hl.style.top = `${100 * y1 / im.h}%`;
    hl.style.width = `${100 * (x2 - x1) / im.w}%`; hl.style.height = `${100 * (y2 - y1) / im.h}%`;
    frame.append(hl);
    return frame;
  }

  function button(attrs, onClick) {
    const b = el('button', {type: 'button', ...attrs});
    b.addEventListener('click', onClick);
    return b;
  }

  function chips(d) {  // every detection of d's image, d marked
    const siblings = dets.filter((o) => o.image === d.image);
    const label = el('span', {class: 'note', text: `all ${siblings.length} detections of this image:`});
    return el('div', {class: 'chips'}, label,
      ...siblings.map((o) => button({class: o.id === d.id ? 'chip on' : 'chip',
                                     text: `${o.k}: ${classes[o.cls]} ${fmt(o.score, 2)}`}, () => open(o.id, true))));
  }

  function gates(im) {  // --attention-maps: each block's gate over the image
    const shown = (im.gates || []).filter((g) => g.png);
    if (!shown.length) return null;
    return el('div', {class: 'gates'}, ...shown.map((g) => el('figure', {},
      el('img', {src: g.png, loading: 'lazy', alt: `${g.block} gate`}),
      el('figcaption', {class: 'note', text: `layer ${g.layer} ${g.block}: gate ` +
                                             `${fmt(g.gate_min, 2)} \u2013 ${fmt(g.gate_max, 2)}`}))));
  }

  function open(id, updateHash) {
    const d = dets[id];
    if (!d) return;
    openId = id;
    const im = images[d.image] || {};
    const pos = view.indexOf(d);
    const title = `#${d.id} \u00b7 ${classes[d.cls]} ${fmt(d.score, 3)} \u00b7 ${levels[d.level]} \u00b7 ` +
                  `${d.imageName}, detection ${d.k}`;
    const sheet = el('div', {class: 'sheet'},
      el('div', {class: 'sheet-head'},
        el('h2', {id: 'detail-title', text: title}),
        el('span', {class: 'note', text: pos >= 0 ? `${pos + 1} of ${view.length}` : 'not in the filtered list'}),
        button({id: 'prev', text: '\u2190 previous', disabled: pos <= 0}, () => step(-1)),
        button({id: 'next', text: 'next \u2192', disabled: pos < 0 || pos >= view.length - 1}, () => step(1)),
        button({id: 'close', text: 'close \u00d7'}, () => shut(true))),
      el('div', {class: 'pair'},
        el('figure', {}, el('figcaption', {text: 'this detection: its map over the image, its box and label'}),
           framed(d.png, im, {id: 'detail-overlay', alt: `map of detection ${d.id}`})),
        el('figure', {}, el('figcaption', {text: "the image's overview: every detection numbered, this one outlined"}),
           outline(framed(im.overview, im, {alt: `overview of ${d.imageName}`}), im, d.box))),
      meta([['class', `${classes[d.cls]} (id ${d.cls_id})`], ['score', fmt(d.score, 4)],
            ['objectness', fmt(d.objectness, 4)], ['class probability', fmt(d.class_prob, 4)],
            ['energy in box', fmt(d.energy, 4)], ['head level', levels[d.level]],
            ['box xyxy', d.box.map((v) => fmt(v, 1)).join(', ')], ['anchor', d.anchor],
            ['grid cell', (d.cell || []).join(', ')], ['layers', (d.layers || []).join(', ')],
            ['constant map', d.constant ? 'yes: no gradient reached its layers' : null],
            ['image', im.path], ['frame', im.frame], ['file', decodeURIComponent(d.png || '')]]),
      chips(d), gates(im));
    detail.replaceChildren(sheet);
    detail.hidden = false;
    document.body.style.overflow = 'hidden';
    if (updateHash) setHash({...state(), open: id}, {...DEFAULTS, open: ''});
  }

  function step(delta) {
    const pos = view.indexOf(dets[openId]);
    const to = view[pos + delta];
    if (to) open(to.id, true);
  }

  function shut(updateHash) {
    openId = null;
    detail.hidden = true;
    detail.replaceChildren();
    document.body.style.overflow = '';
    if (updateHash) setHash({...state(), open: ''}, {...DEFAULTS, open: ''});
  }

  detail.addEventListener('click', (e) => { if (e.target === detail) shut(true); });
  document.addEventListener('keydown', (e) => {
    if (openId === null) return;
    if (e.key === 'Escape') shut(true);
    else if (e.key === 'ArrowLeft') step(-1);
    else if (e.key === 'ArrowRight') step(1);
  });

  for (const c of Object.values(ctl)) c.addEventListener(c.tagName === 'INPUT' ? 'input' : 'change', () => apply(true));
  $('f-reset').addEventListener('click', () => { setControls(new URLSearchParams()); apply(true); });

  function fromUrl() {
    const p = urlParams();
    setControls(p);
    apply(false);
    const id = p.get('open');
    if (id !== null && id !== '' && dets[Number(id)]) open(Number(id), false);
    else if (openId !== null) shut(false);
  }
  window.addEventListener('hashchange', fromUrl);
  const tBuilt = performance.now();
  fromUrl();
  const tShown = performance.now();
  document.body.dataset.ready = '1';

  if (urlParams().has('bench')) {  // benchmarks/report_page.py
    const p = urlParams();
    const result = {detections: dets.length, parse_ms: tParsed - tRead, build_ms: tBuilt - tParsed,
                    first_render_ms: tShown - tBuilt, ready_ms: tShown, script_start_ms: T_START, filters: []};
    const runs = [['class', () => { ctl.class.value = classes[0] || ''; }],
                  ['score >= 0.5', () => { ctl.class.value = ''; ctl.min.value = '0.5'; }],
                  ['image name', () => { ctl.min.value = ''; ctl.image.value = p.get('bench-image') || '1'; }],
                  ['sort by energy', () => { ctl.image.value = ''; ctl.sort.value = 'energy-asc'; }],
                  ['all', () => { ctl.sort.value = 'score-desc'; }]];
    for (let rep = 0; rep < 3; rep++) {
      for (const [name, set] of runs) {
        set();
        const ms = timeIt(() => apply(false));
        result.filters.push({name: name, ms: ms, count: view.length});
      }
      const ms = timeIt(() => pager.more());  // the next page of cards ("show more", or scrolling)
      result.filters.push({name: 'show more', ms: ms, count: pager.shown});
      const id = view[Math.min(5, view.length - 1)];
      if (id) result.filters.push({name: 'open a detection', ms: timeIt(() => open(id.id, false)), count: 1});
      shut(false);
    }
    benchReport(result);
  }
})();
