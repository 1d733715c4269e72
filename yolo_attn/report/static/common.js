// Shared by every yolo-attn report page. Data comes from the JSON block and reaches the page only
// through textContent and DOM properties: no string of it is ever parsed as HTML.
'use strict';

const T_START = performance.now();

function $(id) { return document.getElementById(id); }

function readData() {
  const block = $('data');
  return block ? JSON.parse(block.textContent) : {};
}

// A URL the page may load: relative paths only (the report writes percent-encoded relative paths;
// this refuses anything with a scheme, such as javascript:, or a protocol-relative //host).
function safeUrl(u) {
  if (typeof u !== 'string' || u === '' || /^[a-z][a-z0-9+.-]*:/i.test(u) || u.startsWith('//')) return null;
  return u;
}

// el('div', {class: 'card', text: 'star'}, child, ...): attributes set one by one, text as text.
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = String(v);
    else if (k === 'src' || k === 'href') { const u = safeUrl(v); if (u) e.setAttribute(k, u); }
    else e.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children) if (c !== null && c !== undefined) e.append(c);
  return e;
}

function fmt(x, digits) {
  if (x === null || x === undefined || (typeof x === 'number' && !isFinite(x))) return '\u2014';
  return typeof x === 'number' ? x.toFixed(digits === undefined ? 3 : digits) : String(x);
}

// Parameters from the query (?class=star) and the hash (#class=star&min=0.5); the hash wins.
function urlParams() {
  const p = new URLSearchParams(location.search);
  for (const [k, v] of new URLSearchParams(location.hash.slice(1))) p.set(k, v);
  return p;
}

// The state as the hash (shareable links), defaults left out, without a history entry per change.
function setHash(state, defaults) {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(state)) {
    if (v === null || v === undefined || v === '' || String(v) === String(defaults[k] ?? '')) continue;
    p.set(k, String(v));
  }
  const h = p.toString();
  if (h !== location.hash.slice(1)) history.replaceState(null, '', h ? '#' + h : location.pathname + location.search);
}

// The filter controls' values ({name: trimmed value}), and setting them from URL parameters (a
// missing or unknown value falls back to its default).
function controlState(ctl) {
  const s = {};
  for (const k of Object.keys(ctl)) s[k] = ctl[k].value.trim();
  return s;
}
function setControlValues(ctl, defaults, p) {
  for (const k of Object.keys(ctl)) {
    const v = p.get(k);
    ctl[k].value = v === null ? defaults[k] : v;
    if (ctl[k].tagName === 'SELECT' && ctl[k].selectedIndex < 0) ctl[k].value = defaults[k];
  }
}

function option(value, label) { return el('option', {value: value, text: label === undefined ? value : label}); }

// Renders items in pages: the first `size`, then the next on "show more" or when it scrolls into view.
class Pager {
  constructor(container, button, render, size) {
    this.container = container; this.button = button; this.render = render; this.size = size;
    this.items = []; this.shown = 0;
    button.addEventListener('click', () => this.more());
    if ('IntersectionObserver' in window) {
      new IntersectionObserver((entries) => {
        if (entries.some((e) => e.isIntersecting) && this.shown < this.items.length) this.more();
      }, {rootMargin: '600px'}).observe(button);
    }
  }
  reset(items) {
    this.items = items; this.shown = 0;
    this.container.replaceChildren();
    this.more();
  }
  more() {
    const frag = document.createDocumentFragment();
    const end = Math.min(this.shown + this.size, this.items.length);
    for (let i = this.shown; i < end; i++) frag.append(this.render(this.items[i], i));
    this.container.append(frag);
    this.shown = end;
    this.button.hidden = this.shown >= this.items.length;
    const shown = $('shown');
    if (shown) shown.textContent = String(this.shown);
  }
}

// #bench=1: timings written into <pre id="bench"> as JSON (benchmarks/report_page.py reads them).
function benchReport(result) {
  const pre = el('pre', {id: 'bench', class: 'bench', text: JSON.stringify(result)});
  document.body.append(pre);
}

function timeIt(fn) {
  const t = performance.now();
  fn();
  void document.body.offsetHeight; // the layout the change caused, counted too
  return performance.now() - t;
}
