// The city map in SVG, fed one view at a time by the server (`/api/v1/geo/map/view`): at city
// scale cameras come as clusters with counts by state, roads as the major classes simplified to
// the pixel, grid cells at the level that fits; at street scale every camera with its fields of
// view by DORI level, the coverage gaps and the entrances. Rings always. No tiles (no tile server
// exists offline). What the map sends and draws is bounded by the screen, not by the city.
//
// Elements are keyed (a camera by id, a road by id, …): a new view updates the elements it shares
// with the last one in place and adds or removes the rest. Camera states come as changes since the
// last poll (`/api/v1/geo/map/states`) and recolour the cameras they name: no reload.
//
// Wheel zooms, drag pans (the drawing moves at once; the view's data follows when the pointer
// rests), a click on a cluster zooms into it, on a camera reports it, on the ground reports the
// place. `box.dataset.viewSeq` counts view changes and `box.dataset.rendered` is the last one drawn
// with its data (the browser test waits on them).

import { getJson } from './api.js';

export const LEVELS = ['detect', 'observe', 'recognise', 'identify'];
const NS = 'http://www.w3.org/2000/svg';
// Metres a view's request reaches beyond each edge, as a share of the view (pans stay drawn).
const MARGIN = 0.15;
// The view is fetched again once the pointer rests this long.
const SETTLE_MS = 40;
// Every level's field of view is drawn up to this many cameras in view; only the chosen level's above.
const ALL_LEVELS_UP_TO = 300;

function el(name, attrs = {}) {
  const e = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined && v !== null) e.setAttribute(k, v);
  return e;
}

/** Sets an attribute only when it changes (no style recalculation for nothing). */
function put(e, k, v) {
  const s = String(v);
  if (e.getAttribute(k) !== s) e.setAttribute(k, s);
}

function title(e, text) {
  let t = e.firstElementChild;
  if (!t || t.tagName !== 'title') {
    t = document.createElementNS(NS, 'title');
    e.prepend(t);
  }
  if (t.textContent !== text) t.textContent = text;
}

export class CityMap {
  /** `opts`: onCamera(id), onPick([lon, lat]), onRendered(view data), level (DORI level for coverage). */
  constructor(box, opts = {}) {
    this.box = box;
    this.opts = opts;
    this.level = opts.level ?? 'observe';
    this.show = { cells: true, roads: true, gaps: true, fov: true, rings: true, entrances: true, cameras: true, units: true };
    this.svg = el('svg', { class: 'city', preserveAspectRatio: 'xMidYMid meet', role: 'img', 'aria-label': 'city map' });
    this.groups = {};
    for (const g of ['cells', 'roads', 'gaps', 'fov', 'rings', 'entrances', 'clusters', 'cameras', 'tracks', 'units', 'overlay']) {
      this.groups[g] = el('g', { class: `layer-${g}` });
      this.svg.appendChild(this.groups[g]);
    }
    box.appendChild(this.svg);
    this.keyed = {};
    this.cellPct = new Map();
    this.camPos = new Map();
    this.armed = new Map();
    this.crossed = new Set();
    this.incident = null;
    this.viewSeq = 0;
    this.fetchSeq = 0;
    this.legend();
    this.wire();
  }

  legend() {
    const d = document.createElement('div');
    d.className = 'map-legend';
    d.innerHTML =
      LEVELS.map((l) => `<span><i style="background:var(--${l})"></i>${l}</span>`).join('') +
      '<span><i style="background:var(--ok)"></i>ring closed</span><span><i style="background:var(--bad)"></i>ring open / gap / leak / offline</span>' +
      '<span><i style="background:#4aa3ff;border-radius:50%"></i>checkpoint <i style="background:#e6eaef;border-radius:50%"></i>camera</span>' +
      '<span><i style="background:#3d7a57;border-radius:50%"></i>cluster (count; red share offline)</span>' +
      '<span><i class="unit-key available"></i>patrol unit <i class="unit-key dispatched"></i>dispatched <i class="unit-key on_scene"></i>on scene</span>';
    this.box.appendChild(d);
  }

  /** The first time, frames the whole city; then loads the view's data and draws it. */
  async load() {
    if (!this.proj) {
      this.extent = await getJson('/api/v1/geo/map/extent');
      this.fitTo(this.extent.bbox ?? [0, 0, 0, 0]);
    }
    await this.refresh();
  }

  fitTo([lonA, latA, lonB, latB]) {
    const lon0 = (lonA + lonB) / 2;
    const lat0 = (latA + latB) / 2;
    this.proj = { lon0, lat0, kx: 111320 * Math.cos((lat0 * Math.PI) / 180), ky: 110540 };
    const [x0, y1] = this.xy([lonA, latA]);
    const [x1, y0] = this.xy([lonB, latB]);
    const m = Math.max(x1 - x0, y1 - y0, 100) * 0.04;
    this.home = { x: x0 - m, y: y0 - m, w: x1 - x0 + 2 * m, h: y1 - y0 + 2 * m };
    this.view = { ...this.home };
    this.applyView();
  }

  xy([lon, lat]) {
    const p = this.proj;
    return [(lon - p.lon0) * p.kx, -(lat - p.lat0) * p.ky];
  }

  lonlat([x, y]) {
    const p = this.proj;
    return [x / p.kx + p.lon0, -y / p.ky + p.lat0];
  }

  path(coords, close) {
    let s = '';
    for (let i = 0; i < coords.length; i++) {
      const [x, y] = this.xy(coords[i]);
      s += `${i ? 'L' : 'M'}${x.toFixed(1)},${y.toFixed(1)}`;
    }
    return s + (close ? 'Z' : '');
  }

  /** The sector a camera reaches at one range, as a path. */
  sector(c, r) {
    const [x, y] = this.xy([c.lon, c.lat]);
    if (c.hfov_deg >= 359) return `M${x - r},${y}a${r},${r} 0 1,0 ${2 * r},0a${r},${r} 0 1,0 ${-2 * r},0Z`;
    const a0 = ((c.bearing_deg - c.hfov_deg / 2) * Math.PI) / 180;
    const a1 = ((c.bearing_deg + c.hfov_deg / 2) * Math.PI) / 180;
    const p = (a) => `${(x + r * Math.sin(a)).toFixed(1)},${(y - r * Math.cos(a)).toFixed(1)}`;
    return `M${x.toFixed(1)},${y.toFixed(1)}L${p(a0)}A${r},${r} 0 ${c.hfov_deg > 180 ? 1 : 0},1 ${p(a1)}Z`;
  }

  /** The box a request covers: the view and a margin around it, in map units. */
  reach() {
    const v = this.view;
    return { x0: v.x - v.w * MARGIN, x1: v.x + v.w * (1 + MARGIN), y0: v.y - v.h * MARGIN, y1: v.y + v.h * (1 + MARGIN), w: v.w };
  }

  /** Whether the drawn data still serves the view (inside what was fetched, about the same scale). */
  covered() {
    const b = this.loaded;
    const v = this.view;
    if (!b || this.stale) return false;
    const scale = v.w / b.w;
    return v.x >= b.x0 && v.y >= b.y0 && v.x + v.w <= b.x1 && v.y + v.h <= b.y1 && scale > 0.7 && scale < 1.4;
  }

  /** Fetches the view's data and draws it; a newer request makes an older answer moot. */
  async refresh() {
    const seq = ++this.fetchSeq;
    this.abort?.abort();
    const abort = new AbortController();
    this.abort = abort;
    const r = this.reach();
    const clampLon = (v) => Math.max(-180, Math.min(180, v));
    const clampLat = (v) => Math.max(-89.9, Math.min(89.9, v));
    const [lonA, latA] = this.lonlat([r.x0, r.y1]);
    const [lonB, latB] = this.lonlat([r.x1, r.y0]);
    const bbox = [clampLon(lonA), clampLat(latA), clampLon(lonB), clampLat(latB)];
    if (bbox[2] <= bbox[0]) bbox[2] = bbox[0] + 1e-5;
    if (bbox[3] <= bbox[1]) bbox[3] = bbox[1] + 1e-5;
    const px = Math.round(Math.max(100, this.svg.clientWidth || this.box.clientWidth || 800) * (1 + 2 * MARGIN));
    let data;
    const t0 = performance.now();
    this.inflight = true;
    try {
      data = await getJson(
        `/api/v1/geo/map/view?bbox=${bbox.map((n) => n.toFixed(6)).join(',')}&width_px=${px}&level=${this.level}`,
        { signal: abort.signal },
      );
    } catch (e) {
      if (seq === this.fetchSeq) this.inflight = false;
      if (e.name === 'AbortError') return;
      throw e;
    }
    if (seq !== this.fetchSeq) return;
    this.inflight = false;
    this.stale = false;
    this.loaded = r;
    this.data = data;
    const t1 = performance.now();
    this.draw(data);
    // What the last view cost: its request and its drawing, ms (shown to the browser test).
    this.box.dataset.fetchMs = (t1 - t0).toFixed(0);
    this.box.dataset.drawMs = (performance.now() - t1).toFixed(0);
    this.box.dataset.coverage = data.coverage_pending ? 'pending' : 'ready';
    this.box.dataset.mode = data.mode;
    this.opts.onRendered?.(data);
    // The view may have moved while the data came: drawn when it is still covered, asked for
    // again when not.
    if (this.covered()) this.box.dataset.rendered = String(this.viewSeq);
    else this.scheduleRefresh();
    clearTimeout(this.pendingTimer);
    // The coverage shading is still being computed: ask again for it.
    if (data.coverage_pending) this.pendingTimer = setTimeout(() => this.refresh().catch(() => {}), 1500);
  }

  scheduleRefresh() {
    clearTimeout(this.settle);
    this.settle = setTimeout(() => this.refresh().catch((e) => console.warn('map view:', e.message)), SETTLE_MS);
  }

  /** Keyed update of one layer: elements of keys still present are updated, the rest replaced. */
  sync(layer, items, keyOf, make, update) {
    const g = this.groups[layer];
    const old = this.keyed[layer] ?? new Map();
    const next = new Map();
    for (const it of items) {
      const k = keyOf(it);
      let e = old.get(k);
      if (e) old.delete(k);
      else {
        e = make(it);
        g.appendChild(e);
      }
      update(e, it);
      next.set(k, e);
    }
    for (const e of old.values()) e.remove();
    this.keyed[layer] = next;
  }

  draw(d) {
    if (d.cell_level !== this.cellLevel || d.level !== this.cellPctLevel) {
      this.cellPct.clear();
      this.cellLevel = d.cell_level;
      this.cellPctLevel = d.level;
    }
    this.sync('cells', d.cells, (c) => c.id, () => el('path', { class: 'cell' }), (e, c) => {
      // While the report is computed again, a cell keeps the shading it had.
      if (!d.coverage_pending) this.cellPct.set(c.id, c.covered_pct);
      const p = d.coverage_pending ? this.cellPct.get(c.id) : c.covered_pct;
      put(e, 'd', this.path(c.coords, false));
      put(e, 'fill', p === null || p === undefined ? '#56606c' : `hsl(${(p * 1.2).toFixed(0)},70%,45%)`);
      put(e, 'fill-opacity', { 1: 0.12, 2: 0.14, 3: 0.16 }[c.level] ?? 0.12);
      put(e, 'data-id', c.id);
      title(e, `${c.name} (level ${c.level}, ${c.cameras} cameras)${p !== undefined && p !== null ? `: ${p.toFixed(1)} % of road covered at ${d.level}` : ''}`);
    });
    const width = { motorway: 24, trunk: 20, primary: 16, secondary: 12, tertiary: 10 };
    const minPx = d.mpp * 1.2;
    this.sync('roads', d.roads, (r) => r.id, () => el('path'), (e, r) => {
      put(e, 'class', `road ${r.class}`);
      put(e, 'd', this.path(r.coords, false));
      put(e, 'stroke-width', Math.max(width[r.class] ?? 7, minPx).toFixed(1));
      put(e, 'data-id', r.id);
      title(e, r.name ?? r.id);
    });
    // Every gap in one path: thousands of short stretches are one element to draw.
    this.sync('gaps', d.gaps.length ? [d.gaps] : [], () => 'all', () => el('path', { class: 'gap' }), (e, gaps) => {
      put(e, 'd', gaps.map((g) => this.path(g, false)).join(''));
      title(e, `${gaps.length} stretches of road not covered at ${d.level}`);
    });
    this.drawFov(d.cameras);
    this.camPos = new Map();
    this.cams = new Map(d.cameras.map((c) => [c.id, c]));
    this.sync('cameras', d.cameras, (c) => c.id, () => el('circle'), (e, c) => {
      const [x, y] = this.xy([c.lon, c.lat]);
      this.camPos.set(c.id, [c.lon, c.lat]);
      put(e, 'cx', x.toFixed(1));
      put(e, 'cy', y.toFixed(1));
      put(e, 'class', `cam ${c.status} ${c.kind}${c.id === this.selectedCam ? ' selected' : ''}`);
      put(e, 'data-px', c.kind === 'checkpoint' ? 6 : 4.5);
      put(e, 'data-id', c.id);
      title(e, `${c.name} (${c.kind}, ${c.status}, ${c.resolution}, ${c.hfov_deg}° looking ${c.bearing_deg}°)`);
    });
    this.sync('clusters', d.clusters, (c) => `${c.lon},${c.lat}`, () => {
      const g = el('g', { class: 'cluster' });
      g.append(el('circle'), el('text', { 'text-anchor': 'middle', 'dominant-baseline': 'central', 'data-font': 11 }));
      return g;
    }, (g, c) => this.cluster(g, c));
    const rings = [];
    const leaks = [];
    for (const r of d.rings) {
      rings.push(r);
      for (const m of r.members) this.camPos.set(m.id, [m.lon, m.lat]);
      for (const l of r.leaks) leaks.push({ r, l });
    }
    this.sync('rings', [...rings, ...leaks], (x) => (x.l ? `leak:${x.r.id}:${x.l.lon},${x.l.lat}` : `ring:${x.id}`), (x) => el(x.l ? 'circle' : 'path'), (e, x) => {
      if (x.l) {
        const [cx, cy] = this.xy([x.l.lon, x.l.lat]);
        put(e, 'class', 'leak');
        put(e, 'cx', cx);
        put(e, 'cy', cy);
        put(e, 'data-px', 5);
        title(e, `${x.r.name} leaks at ${x.l.road}${x.l.guarded_when_up_by.length ? ` (closed when ${x.l.guarded_when_up_by.join(', ')} is up)` : ''}`);
      } else {
        put(e, 'class', `ring ${x.open ? 'open' : 'closed'}`);
        put(e, 'd', this.path(x.coords, true));
        put(e, 'data-id', x.id);
        title(e, `${x.name}: ${x.open ? `OPEN (${x.down.length} down, ${x.leaks.length} leaks)` : 'closed'}`);
      }
    });
    this.sync('entrances', d.entrances, (x) => x.id, () => el('rect'), (e, x) => {
      const [cx, cy] = this.xy([x.lon, x.lat]);
      put(e, 'class', `entrance ${x.compliant === null ? '' : x.compliant ? 'ok' : 'bad'}`);
      e.dataset.x = cx;
      e.dataset.y = cy;
      put(e, 'data-px', 5);
      put(e, 'data-id', x.id);
      title(e, `entrance ${x.name}: ${x.compliant === null ? 'being checked' : x.compliant ? 'meets the rule' : 'breaks the entrance rule'}`);
    });
    this.drawOverlay();
    this.drawTrack();
    this.drawUnits();
    this.applyLayers();
    this.scaleMarks();
  }

  /** Patrol units at their newest positions, coloured by status (stale ones faded). */
  setUnits(units) {
    this.units = units;
    this.drawUnits();
    this.scaleMarks();
  }

  drawUnits() {
    if (!this.proj || !this.units) return;
    const placed = this.units.filter((u) => u.position);
    this.sync(
      'units',
      placed,
      (u) => u.id,
      () => el('circle', { 'data-px': 6 }),
      (e, u) => {
        const [x, y] = this.xy([u.position.lon, u.position.lat]);
        put(e, 'cx', x);
        put(e, 'cy', y);
        put(e, 'class', `unit ${u.status}${u.stale ? ' stale' : ''}`);
        e.dataset.unit = u.id;
        e.dataset.status = u.status;
        title(e, `${u.name} (${u.kind}) · ${u.status.replace('_', ' ')}${u.alert_id ? ` · alert ${u.alert_id}` : ''}${u.stale ? ' · position stale' : ''}`);
      },
    );
  }

  /** A unit's track (its positions, oldest first) as a line; `null` clears it. */
  setTrack(id, fixes) {
    this.track = id ? { id, fixes } : null;
    this.drawTrack();
  }

  drawTrack() {
    const g = this.groups.tracks;
    g.replaceChildren();
    if (!this.proj || !this.track || !this.track.fixes.length) return;
    const pts = this.track.fixes.map((f) => this.xy([f.lon, f.lat]).map((v) => v.toFixed(1)).join(',')).join(' ');
    const line = el('polyline', { class: 'track', points: pts });
    line.dataset.unit = this.track.id;
    line.dataset.points = String(this.track.fixes.length);
    title(line, `track of ${this.track.id}: ${this.track.fixes.length} positions`);
    g.appendChild(line);
  }

  /** Fields of view, one path per DORI level and state (thousands of sectors, a few elements):
   * every level up to ALL_LEVELS_UP_TO cameras, only the chosen level above. */
  drawFov(cams) {
    const many = cams.length > ALL_LEVELS_UP_TO;
    const paths = new Map();
    for (const c of cams) {
      for (let i = 0; i < LEVELS.length; i++) {
        if ((many && LEVELS[i] !== this.level) || !(c.ranges_m[i] > 0)) continue;
        const k = `${LEVELS[i]}${c.status !== 'online' ? ' offline' : ''}`;
        paths.set(k, (paths.get(k) ?? '') + this.sector(c, c.ranges_m[i]));
      }
    }
    this.sync('fov', [...paths], ([k]) => k, () => el('path'), (e, [k, d]) => {
      put(e, 'class', `fov ${k}`);
      put(e, 'd', d);
      title(e, `fields of view: ${k}`);
    });
  }

  cluster(g, c) {
    const [x, y] = this.xy([c.lon, c.lat]);
    const [circle, text] = g.children;
    const bad = c.count ? c.offline / c.count : 0;
    put(circle, 'cx', x.toFixed(1));
    put(circle, 'cy', y.toFixed(1));
    put(circle, 'data-px', (7 + 2.2 * Math.log2(c.count + 1)).toFixed(1));
    put(circle, 'fill', `hsl(${(140 * (1 - Math.min(1, bad * 5))).toFixed(0)},45%,36%)`);
    put(circle, 'class', 'cluster-dot');
    put(text, 'x', x.toFixed(1));
    put(text, 'y', y.toFixed(1));
    text.dataset.x0 = x.toFixed(1);
    if (text.textContent !== String(c.count)) text.textContent = String(c.count);
    put(g, 'data-count', c.count);
    put(g, 'data-offline', c.offline);
    g.dataset.lon = c.lon;
    g.dataset.lat = c.lat;
    title(g, `${c.count} cameras: ${c.online} online, ${c.offline} offline, ${c.other} other; ${c.checkpoints} checkpoints (click to zoom in)`);
  }

  /** Camera state changes (from `/api/v1/geo/map/states`): recolours the cameras drawn; returns
   * whether a change falls where the drawing cannot recolour by itself (a cluster, a ring member). */
  applyStates(changes) {
    let needsView = false;
    let recolour = false;
    const b = this.loaded;
    for (const ch of changes) {
      const cam = this.cams?.get(ch.id);
      if (cam) {
        if (cam.status === ch.status) continue;
        cam.status = ch.status;
        const e = this.keyed.cameras?.get(ch.id);
        if (e) {
          put(e, 'class', `cam ${cam.status} ${cam.kind}${cam.id === this.selectedCam ? ' selected' : ''}`);
          title(e, `${cam.name} (${cam.kind}, ${cam.status}, ${cam.resolution}, ${cam.hfov_deg}° looking ${cam.bearing_deg}°)`);
        }
        recolour = true;
      } else if (b && this.data?.mode === 'clusters') {
        const [x, y] = this.xy([ch.lon, ch.lat]);
        if (x >= b.x0 && x <= b.x1 && y >= b.y0 && y <= b.y1) needsView = true;
      }
      if (this.data?.rings.some((r) => r.members.some((m) => m.id === ch.id))) needsView = true;
    }
    if (recolour) this.drawFov(this.data.cameras);
    return needsView;
  }

  drawOverlay() {
    const g = this.groups.overlay;
    g.replaceChildren();
    if (!this.proj) return;
    for (const [id, label] of this.armed) {
      const pos = this.camPos?.get(id);
      if (!pos) continue;
      const [x, y] = this.xy(pos);
      const c = el('circle', { class: this.crossed.has(id) ? 'crossed' : 'armed', cx: x, cy: y, 'data-px': 11, 'data-armed': id });
      title(c, `armed: ${label}`);
      g.appendChild(c);
      const t = el('text', { x, y, 'data-font': 11, 'data-dx': 13, fill: '#ffc53d' });
      t.textContent = label;
      g.appendChild(t);
    }
    if (this.incident) {
      const [x, y] = this.xy(this.incident);
      const c = el('circle', { class: 'incident', cx: x, cy: y, 'data-px': 7 });
      title(c, 'incident');
      g.appendChild(c);
    }
  }

  applyLayers() {
    for (const [k, on] of Object.entries(this.show)) if (this.groups[k]) this.groups[k].style.display = on ? '' : 'none';
    this.groups.tracks.style.display = this.show.units ? '' : 'none';
    this.groups.clusters.style.display = this.show.cameras ? '' : 'none';
  }

  /** Markers keep their size on screen whatever the zoom. */
  scaleMarks() {
    if (!this.view) return;
    const upp = this.view.w / Math.max(1, this.svg.clientWidth || this.box.clientWidth || 800);
    for (const e of this.svg.querySelectorAll('[data-px]')) {
      const px = Number(e.dataset.px) * upp;
      if (e.tagName === 'rect') {
        put(e, 'x', Number(e.dataset.x) - px);
        put(e, 'y', Number(e.dataset.y) - px);
        put(e, 'width', 2 * px);
        put(e, 'height', 2 * px);
      } else put(e, 'r', px);
    }
    for (const e of this.svg.querySelectorAll('text[data-font]')) {
      if (e.dataset.x0 === undefined) e.dataset.x0 = e.getAttribute('x');
      put(e, 'font-size', Number(e.dataset.font) * upp);
      put(e, 'x', Number(e.dataset.x0) + Number(e.dataset.dx ?? 0) * upp);
    }
  }

  /** Shows `this.view`; its data follows when the pointer rests (at once when already drawn). */
  applyView() {
    // The view takes the drawing's shape, so that what shows is what was asked for.
    const W = this.svg.clientWidth;
    const H = this.svg.clientHeight;
    if (W > 0 && H > 0) {
      const v = this.view;
      const want = H / W;
      if (Math.abs(v.h / v.w - want) > 1e-6) {
        const cx = v.x + v.w / 2;
        const cy = v.y + v.h / 2;
        const [w, h] = v.h / v.w < want ? [v.w, v.w * want] : [v.h / want, v.h];
        this.view = { x: cx - w / 2, y: cy - h / 2, w, h };
      }
    }
    const v = this.view;
    this.svg.setAttribute('viewBox', `${v.x} ${v.y} ${v.w} ${v.h}`);
    this.viewSeq += 1;
    this.box.dataset.viewSeq = String(this.viewSeq);
    // Markers are resized once per frame, however many wheel events the frame had.
    if (!this.marksPending) {
      this.marksPending = true;
      requestAnimationFrame(() => {
        this.marksPending = false;
        this.scaleMarks();
      });
    }
    if (!this.data) return;
    if (!this.inflight && this.covered()) {
      clearTimeout(this.settle);
      this.box.dataset.rendered = String(this.viewSeq);
      return;
    }
    this.scheduleRefresh();
  }

  /** Centres the map on `[lon, lat]`, `width_m` across. */
  centreOn(lonlat, width_m = 600) {
    const [x, y] = this.xy(lonlat);
    const k = this.view.h / this.view.w;
    this.view = { x: x - width_m / 2, y: y - (width_m * k) / 2, w: width_m, h: width_m * k };
    this.applyView();
  }

  zoomAt(mx, my, k) {
    const v = this.view;
    const w = Math.min(this.home.w * 4, Math.max(40, v.w * k));
    const f = w / v.w;
    this.view = { x: mx - (mx - v.x) * f, y: my - (my - v.y) * f, w, h: v.h * f };
    this.applyView();
  }

  /** Client (screen) coordinates to map units. */
  toMap(cx, cy) {
    const pt = this.svg.createSVGPoint();
    pt.x = cx;
    pt.y = cy;
    const m = this.svg.getScreenCTM();
    if (!m) return [0, 0];
    const p = pt.matrixTransform(m.inverse());
    return [p.x, p.y];
  }

  wire() {
    this.svg.addEventListener(
      'wheel',
      (e) => {
        e.preventDefault();
        if (!this.view) return;
        const [mx, my] = this.toMap(e.clientX, e.clientY);
        this.zoomAt(mx, my, e.deltaY > 0 ? 1.2 : 1 / 1.2);
      },
      { passive: false },
    );
    let drag = null;
    this.svg.addEventListener('pointerdown', (e) => {
      if (e.button !== 0 || !this.view) return;
      drag = { x: e.clientX, y: e.clientY, v: { ...this.view }, moved: false };
    });
    window.addEventListener('pointermove', (e) => {
      if (!drag) return;
      const dx = e.clientX - drag.x;
      const dy = e.clientY - drag.y;
      if (Math.abs(dx) + Math.abs(dy) > 4) drag.moved = true;
      if (!drag.moved) return;
      const upp = this.view.w / Math.max(1, this.svg.clientWidth);
      this.view = { ...drag.v, x: drag.v.x - dx * upp, y: drag.v.y - dy * upp };
      this.applyView();
    });
    window.addEventListener('pointerup', () => {
      if (drag) this.dragged = drag.moved;
      drag = null;
    });
    this.svg.addEventListener('click', (e) => {
      if (this.dragged) {
        this.dragged = false;
        return;
      }
      const cluster = e.target.closest?.('.cluster');
      if (cluster) {
        this.centreOn([Number(cluster.dataset.lon), Number(cluster.dataset.lat)], this.view.w / 4);
        return;
      }
      const unit = e.target.closest?.('.unit');
      if (unit && this.opts.onUnit) {
        this.opts.onUnit(unit.dataset.unit);
        return;
      }
      const cam = e.target.closest?.('.cam');
      if (cam && this.opts.onCamera) {
        this.selectCamera(cam.dataset.id);
        this.opts.onCamera(cam.dataset.id);
        return;
      }
      if (this.opts.onPick && this.proj) this.opts.onPick(this.lonlat(this.toMap(e.clientX, e.clientY)));
    });
    this.svg.addEventListener('dblclick', () => this.goHome());
    new ResizeObserver(() => this.view && this.applyView()).observe(this.box);
  }

  goHome() {
    if (this.home) {
      this.view = { ...this.home };
      this.applyView();
    }
  }

  selectCamera(id) {
    this.selectedCam = id;
    for (const c of this.svg.querySelectorAll('.cam.selected')) c.classList.remove('selected');
    this.keyed.cameras?.get(id)?.classList.add('selected');
  }

  /** Interception overlay: armed checkpoints (id → label), crossed ones, the incident. */
  setPlan(armed, incident) {
    this.armed = armed;
    this.crossed = new Set();
    this.incident = incident;
    this.drawOverlay();
    this.scaleMarks();
  }

  markCrossed(id) {
    this.crossed.add(id);
    this.drawOverlay();
    this.scaleMarks();
  }

  setIncident(lonlat) {
    this.incident = lonlat;
    this.drawOverlay();
    this.scaleMarks();
  }
}
