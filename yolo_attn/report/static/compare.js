// yolo-attn heatmap-compare report: one row per object (its panel and each model's numbers), filtered
// by "missed by", class and the difference of a metric between two models. URL hash: missed, class,
// metric, a, b, diff, sort.
(function () {
  const D = readData();
  const models = D.models || [], classes = D.classes || [], F = D.fields || [];
  const objects = D.objects || [];
  const col = (name) => F.indexOf(name);
  const ctl = {missed: $('f-missed'), class: $('f-class'), metric: $('f-metric'), a: $('f-a'), b: $('f-b'),
               diff: $('f-diff'), sort: $('f-sort')};
  const DEFAULTS = {missed: '', class: '', metric: 'score', a: models[0] || '', b: models[1] || '', diff: '',
                    sort: 'image'};
  models.forEach((m) => {
    ctl.missed.append(option(`model:${m}`, `by ${m}`));
    ctl.a.append(option(m)); ctl.b.append(option(m));
  });
  const counts = new Map();
  objects.forEach((o) => counts.set(o.cls, (counts.get(o.cls) || 0) + 1));
  classes.forEach((c, i) => ctl.class.append(option(c, `${c} (${counts.get(i) || 0})`)));
  $('total').textContent = String(objects.length);

  const list = $('objects');
  let view = [];
  const pager = new Pager(list, $('more'), row, 100);

  const state = () => controlState(ctl);
  const setControls = (p) => setControlValues(ctl, DEFAULTS, p);
  function value(o, model, metric) {
    const m = o.m[models.indexOf(model)];
    if (!m || m[0]) return null;  // not detected by that model
    const v = m[col(metric)];
    return typeof v === 'number' && isFinite(v) ? v : null;
  }
  function difference(o, s) {
    const a = value(o, s.a, s.metric), b = value(o, s.b, s.metric);
    return a === null || b === null ? null : a - b;
  }

  function apply(updateHash) {
    const s = state();
    const cls = s.class === '' ? -1 : classes.indexOf(s.class);
    const least = s.diff === '' ? null : Math.abs(Number(s.diff));
    const missedBy = s.missed.startsWith('model:') ? models.indexOf(s.missed.slice(6)) : -1;
    view = objects.filter((o) => {
      if (cls >= 0 && o.cls !== cls) return false;
      const missed = o.m.map((m) => !m || m[0] === 1);
      if (s.missed === 'any-model' && !missed.some(Boolean)) return false;
      if (s.missed === 'none' && missed.some(Boolean)) return false;
      if (missedBy >= 0 && !missed[missedBy]) return false;
      if (least !== null) { const d = difference(o, s); if (d === null || Math.abs(d) < least) return false; }
      return true;
    });
    if (s.sort === 'diff') {
      const key = (o) => { const d = difference(o, s); return d === null ? -1 : Math.abs(d); };
      view = view.map((o, i) => [key(o), i, o]).sort((x, y) => y[0] - x[0] || x[1] - y[1]).map((x) => x[2]);
    }
    $('count').textContent = String(view.length);
    $('empty').hidden = view.length > 0;
    pager.reset(view);
    if (updateHash) setHash(s, DEFAULTS);
  }

  function row(o) {
    const s = state();
    const head = el('tr', {}, ...['model', 'score', 'PG', 'EPG', 'deletion AUC', 'insertion AUC', 'level', 'layers']
      .map((h) => el('th', {text: h})));
    const body = models.map((name, j) => {
      const m = o.m[j];
      const missed = !m || m[0] === 1;
      const cells = missed ? [el('td', {class: 'missed', text: 'MISSED', colspan: '7'})] :
        [el('td', {class: 'num', text: fmt(m[col('score')], 3)}),
         el('td', {class: 'num', text: {1: 'hit', 0: 'miss'}[m[col('pointing_game')]] || '\u2014'}),
         el('td', {class: 'num', text: fmt(m[col('energy_pg')], 3)}),
         el('td', {class: 'num', text: fmt(m[col('deletion_auc')], 3)}),
         el('td', {class: 'num', text: fmt(m[col('insertion_auc')], 3)}),
         el('td', {text: m[col('level_name')] || ''}), el('td', {text: m[col('layers')] || ''})];
      return el('tr', {}, el('td', {text: name}), ...cells);
    });
    const d = difference(o, s);
    const label = (D.metrics.find((x) => x[0] === s.metric) || [s.metric, s.metric])[1];
    return el('div', {class: 'object', 'data-object': `${o.image}#${o.k}`},
      el('img', {class: 'panel', src: o.panel, loading: 'lazy', decoding: 'async', alt: `object ${o.k} of ${o.image}`}),
      el('div', {},
        el('div', {class: 'title', title: o.path, text: `${o.image} \u00b7 object ${o.k} \u00b7 ${classes[o.cls]}`}),
        el('table', {}, el('thead', {}, head), el('tbody', {}, ...body)),
        el('p', {class: 'note', text: d === null ? '' : `${label}: ${s.a} \u2212 ${s.b} = ${fmt(d, 3)}`})));
  }

  for (const c of Object.values(ctl)) c.addEventListener(c.tagName === 'INPUT' ? 'input' : 'change', () => apply(true));
  $('f-reset').addEventListener('click', () => { setControls(new URLSearchParams()); apply(true); });
  function fromUrl() { setControls(urlParams()); apply(false); }
  window.addEventListener('hashchange', fromUrl);
  fromUrl();
  document.body.dataset.ready = '1';
})();
