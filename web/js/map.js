// The city drawn in SVG from the API's GeoJSON layers — no tiles (no tile server exists offline):
// grid cells shaded by road coverage, roads as vector lines, coverage gaps, fields of view coloured
// by DORI level, rings (closed green, open red, with their leaks), entrances, cameras. Wheel zooms,
// drag pans; a click on a camera or on the ground is reported to the owner.

import { getJson } from './api.js';

export const LEVELS = ['detect', 'observe', 'recognise', 'identify'];
const NS = 'http://www.w3.org/2000/svg';

function el(name, attrs = {}, text) {
  const e = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined && v !== null) e.setAttribute(k, v);
  if (text !== undefined) {
    const t = document.createElementNS(NS, 'title');
    t.textContent = text;
    e.appendChild(t);
  }
  return e;
}

async function layer(path) {
  try {
    return await getJson(path);
  } catch (e) {
    return { features: [], error: e };
  }
}

export class CityMap {
  /** `opts`: onCamera(id), onPick([lon, lat]), level (DORI level for coverage shading). */
  constructor(box, opts = {}) {
    this.box = box;
    this.opts = opts;
    this.level = opts.level ?? 'observe';
    this.show = { cells: true, roads: true, gaps: true, fov: true, rings: true, entrances: true, cameras: true };
    this.svg = el('svg', { class: 'city', preserveAspectRatio: 'xMidYMid meet', role: 'img', 'aria-label': 'city map' });
    this.groups = {};
    for (const g of ['cells', 'roads', 'gaps', 'fov', 'rings', 'entrances', 'cameras', 'overlay']) {
      this.groups[g] = el('g', { class: `layer-${g}` });
      this.svg.appendChild(this.groups[g]);
    }
    box.appendChild(this.svg);
    this.legend();
    this.wire();
    this.armed = new Map();
    this.crossed = new Set();
    this.incident = null;
  }

  legend() {
    const d = document.createElement('div');
    d.className = 'map-legend';
    d.innerHTML =
      LEVELS.map((l) => `<span><i style="background:var(--${l})"></i>${l}</span>`).join('') +
      '<span><i style="background:var(--ok)"></i>ring closed</span><span><i style="background:var(--bad)"></i>ring open / gap / leak</span>' +
      '<span><i style="background:#4aa3ff;border-radius:50%"></i>checkpoint <i style="background:#e6eaef;border-radius:50%"></i>camera</span>';
    this.box.appendChild(d);
  }

  /** Loads every layer and draws. Layers the token may not read are left out. */
  async load() {
    const lv = LEVELS.join(',');
    const [cams, roads, cells, rings, entrances, gaps, cov, ringStates] = await Promise.all([
      layer(`/api/v1/geo/layers/cameras?levels=${lv}`),
      layer('/api/v1/geo/layers/roads'),
      layer('/api/v1/geo/layers/cells'),
      layer('/api/v1/geo/layers/rings'),
      layer('/api/v1/geo/layers/entrances'),
      layer(`/api/v1/coverage/gaps.geojson?level=${this.level}&min_len_m=5`),
      getJson(`/api/v1/coverage/cells?level=${this.level}`).catch(() => []),
      getJson('/api/v1/rings').catch(() => []),
    ]);
    if (cams.error) throw cams.error;
    this.data = { cams, roads, cells, rings, entrances, gaps, cov, ringStates };
    if (!this.proj) this.fit();
    this.draw();
  }

  fit() {
    const pts = [];
    const walk = (c) => (typeof c[0] === 'number' ? pts.push(c) : c.forEach(walk));
    for (const l of [this.data.cams, this.data.roads, this.data.cells, this.data.rings]) {
      for (const f of l.features ?? []) walk(f.geometry.coordinates);
    }
    if (!pts.length) pts.push([0, 0]);
    const lons = pts.map((p) => p[0]);
    const lats = pts.map((p) => p[1]);
    const lon0 = (Math.min(...lons) + Math.max(...lons)) / 2;
    const lat0 = (Math.min(...lats) + Math.max(...lats)) / 2;
    const kx = 111320 * Math.cos((lat0 * Math.PI) / 180);
    const ky = 110540;
    this.proj = { lon0, lat0, kx, ky };
    const xs = lons.map((l) => (l - lon0) * kx);
    const ys = lats.map((l) => -(l - lat0) * ky);
    const [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
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
    return coords.map((c, i) => `${i ? 'L' : 'M'}${this.xy(c).map((v) => v.toFixed(1)).join(',')}`).join('') + (close ? 'Z' : '');
  }

  polyPath(geom) {
    const rings = geom.type === 'Polygon' ? geom.coordinates : geom.type === 'MultiPolygon' ? geom.coordinates.flat() : [];
    return rings.map((r) => this.path(r, true)).join('');
  }

  linePath(geom) {
    const lines = geom.type === 'LineString' ? [geom.coordinates] : geom.type === 'MultiLineString' ? geom.coordinates : [];
    return lines.map((l) => this.path(l, false)).join('');
  }

  draw() {
    const d = this.data;
    const g = this.groups;
    for (const k of Object.keys(g)) g[k].replaceChildren();
    const cov = new Map((Array.isArray(d.cov) ? d.cov : []).map((c) => [c.id, c]));
    for (const f of d.cells.features ?? []) {
      const c = cov.get(f.properties.cell_id);
      const p = c?.roads?.covered_pct;
      const fill = p === null || p === undefined ? '#56606c' : `hsl(${(p * 1.2).toFixed(0)},70%,45%)`;
      g.cells.appendChild(
        el('path', { class: 'cell', d: this.polyPath(f.geometry), fill, 'fill-opacity': [0.2, 0.06, 0.1, 0.16][f.properties.level] ?? 0.1, 'data-id': f.properties.cell_id },
          `${f.properties.name} (level ${f.properties.level})${p !== undefined && p !== null ? `: ${p.toFixed(1)} % of road covered at ${this.level}` : ''}`),
      );
    }
    const width = { motorway: 24, trunk: 20, primary: 16, secondary: 12, tertiary: 10 };
    for (const f of d.roads.features ?? []) {
      const cls = f.properties.class ?? 'road';
      g.roads.appendChild(
        el('path', { class: `road ${cls}`, d: this.linePath(f.geometry), 'stroke-width': width[cls] ?? 7, 'data-id': f.properties.road_id }, f.properties.name ?? f.properties.road_id),
      );
    }
    for (const f of d.gaps.features ?? []) {
      g.gaps.appendChild(el('path', { class: 'gap', d: this.linePath(f.geometry) }, `not covered at ${f.properties.level}: ${f.properties.name ?? f.properties.road_id}, ${f.properties.length_m} m`));
    }
    this.camPos = new Map();
    const points = [];
    for (const f of d.cams.features ?? []) {
      const p = f.properties;
      if (f.geometry.type === 'Point') {
        this.camPos.set(p.camera_id, f.geometry.coordinates);
        points.push(f);
      } else {
        const off = p.status !== 'online' ? ' offline' : '';
        g.fov.appendChild(el('path', { class: `fov ${p.level}${off}`, d: this.polyPath(f.geometry), 'data-camera': p.camera_id }, `${p.camera_id}: ${p.level} up to ${p.range_m} m`));
      }
    }
    for (const f of d.rings.features ?? []) {
      const p = f.properties;
      g.rings.appendChild(
        el('path', { class: `ring ${p.open ? 'open' : 'closed'}`, d: this.polyPath(f.geometry), 'data-id': p.ring_id },
          `${p.name}: ${p.open ? `OPEN (${p.down.length} down, ${p.leaks} leaks)` : 'closed'}`),
      );
    }
    for (const r of Array.isArray(d.ringStates) ? d.ringStates : []) {
      for (const l of r.leaks ?? []) {
        const [x, y] = this.xy([l.lon, l.lat]);
        g.rings.appendChild(el('circle', { class: 'leak', cx: x, cy: y, 'data-px': 5 }, `${r.name} leaks at ${l.road_name ?? l.road_id}${l.guarded_when_up_by?.length ? ` (closed when ${l.guarded_when_up_by.join(', ')} is up)` : ''}`));
      }
    }
    for (const f of d.entrances.features ?? []) {
      const p = f.properties;
      const [x, y] = this.xy(f.geometry.coordinates);
      g.entrances.appendChild(el('rect', { class: `entrance ${p.compliant ? 'ok' : 'bad'}`, x, y, 'data-px': 5, 'data-id': p.entrance_id }, `entrance ${p.name}: ${p.compliant ? 'meets the rule' : 'breaks the entrance rule'}`));
    }
    for (const f of points) {
      const p = f.properties;
      const [x, y] = this.xy(f.geometry.coordinates);
      const c = el('circle', { class: `cam ${p.status} ${p.kind}`, cx: x, cy: y, 'data-px': p.kind === 'checkpoint' ? 6 : 4.5, 'data-id': p.camera_id },
        `${p.name} (${p.kind}, ${p.status}, ${p.resolution}, ${p.hfov_deg}° looking ${p.bearing_deg}°)`);
      if (p.camera_id === this.selectedCam) c.classList.add('selected');
      g.cameras.appendChild(c);
    }
    this.drawOverlay();
    this.applyLayers();
    this.scaleMarks();
  }

  drawOverlay() {
    const g = this.groups.overlay;
    g.replaceChildren();
    if (!this.proj) return;
    for (const [id, label] of this.armed) {
      const pos = this.camPos?.get(id);
      if (!pos) continue;
      const [x, y] = this.xy(pos);
      g.appendChild(el('circle', { class: this.crossed.has(id) ? 'crossed' : 'armed', cx: x, cy: y, 'data-px': 11, 'data-armed': id }, `armed: ${label}`));
      const t = el('text', { x, y, 'data-font': 11, 'data-dx': 13, fill: '#ffc53d' });
      t.textContent = label;
      g.appendChild(t);
    }
    if (this.incident) {
      const [x, y] = this.xy(this.incident);
      g.appendChild(el('circle', { class: 'incident', cx: x, cy: y, 'data-px': 7 }, 'incident'));
    }
  }

  applyLayers() {
    for (const [k, on] of Object.entries(this.show)) if (this.groups[k]) this.groups[k].style.display = on ? '' : 'none';
  }

  /** Markers keep their size on screen whatever the zoom. */
  scaleMarks() {
    const upp = this.view.w / Math.max(1, this.svg.clientWidth || this.box.clientWidth || 800);
    for (const e of this.svg.querySelectorAll('[data-px]')) {
      const px = Number(e.dataset.px) * upp;
      if (e.tagName === 'rect') {
        if (e.dataset.x === undefined) {
          e.dataset.x = e.getAttribute('x');
          e.dataset.y = e.getAttribute('y');
        }
        e.setAttribute('x', Number(e.dataset.x) - px);
        e.setAttribute('y', Number(e.dataset.y) - px);
        e.setAttribute('width', 2 * px);
        e.setAttribute('height', 2 * px);
      } else e.setAttribute('r', px);
    }
    for (const e of this.svg.querySelectorAll('text[data-font]')) {
      if (e.dataset.x0 === undefined) e.dataset.x0 = e.getAttribute('x');
      e.setAttribute('font-size', Number(e.dataset.font) * upp);
      e.setAttribute('x', Number(e.dataset.x0) + Number(e.dataset.dx ?? 0) * upp);
    }
  }

  applyView() {
    const v = this.view;
    this.svg.setAttribute('viewBox', `${v.x} ${v.y} ${v.w} ${v.h}`);
    this.scaleMarks();
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
        const [mx, my] = this.toMap(e.clientX, e.clientY);
        const k = e.deltaY > 0 ? 1.2 : 1 / 1.2;
        const v = this.view;
        const w = Math.min(this.home.w * 4, Math.max(40, v.w * k));
        const f = w / v.w;
        this.view = { x: mx - (mx - v.x) * f, y: my - (my - v.y) * f, w, h: v.h * f };
        this.applyView();
      },
      { passive: false },
    );
    let drag = null;
    this.svg.addEventListener('pointerdown', (e) => {
      if (e.button !== 0) return;
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
      const cam = e.target.closest?.('.cam');
      if (cam && this.opts.onCamera) {
        this.selectCamera(cam.dataset.id);
        this.opts.onCamera(cam.dataset.id);
        return;
      }
      if (this.opts.onPick && this.proj) this.opts.onPick(this.lonlat(this.toMap(e.clientX, e.clientY)));
    });
    this.svg.addEventListener('dblclick', () => {
      if (this.home) {
        this.view = { ...this.home };
        this.applyView();
      }
    });
    new ResizeObserver(() => this.proj && this.scaleMarks()).observe(this.box);
  }

  selectCamera(id) {
    this.selectedCam = id;
    for (const c of this.svg.querySelectorAll('.cam.selected')) c.classList.remove('selected');
    this.svg.querySelector(`.cam[data-id="${CSS.escape(id)}"]`)?.classList.add('selected');
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
