// Map: the whole city, layer toggles, the coverage level, search (camera id or name, or a plate's
// last passage), ring states, a camera's details; camera states kept live by polling the changes.

import { getJson, imageUrl, unitStream } from './api.js';
import { onAlerts } from './store.js';
import { CityMap, LEVELS } from './map.js';
import { html, setHtml, toast } from './util.js';

// How often the camera state changes are asked for while the map is shown.
const LIVE_MS = 1000;
// How often a shown unit's track is read again (its unit's position arrives live).
const TRACK_MS = 5000;
// Changes are asked for again this far back (a state written late by another node still shows).
const OVERLAP_MS = 5000;

export class MapView {
  constructor(el) {
    this.el = el;
    setHtml(
      el,
      html`<div class="toolbar">
        <h2>Map</h2>
        <label>coverage at <select id="mv-level">${LEVELS.map((l) => html`<option ${l === 'observe' ? 'selected' : ''}>${l}</option>`)}</select></label>
        <span class="map-layers" id="mv-layers"></span>
        <form id="mv-search" class="map-search"><input id="mv-q" type="search" placeholder="camera id, name or plate" autocomplete="off" aria-label="search the map"><button class="ghost">find</button></form>
        <button class="ghost" id="mv-home" title="or double-click the map">fit</button>
        <span id="mv-summary" class="dim"></span>
      </div>
      <div class="map-layout">
        <div class="map-box" id="mv-box"></div>
        <div class="map-side">
          <div class="panel" id="mv-found" hidden></div>
          <div class="panel cam-info" id="mv-cam"><p class="na">Click a camera (zoom in where the clusters are).</p></div>
          <div class="panel" id="mv-rings"></div>
        </div>
      </div>`,
    );
    this.map = new CityMap(el.querySelector('#mv-box'), { onCamera: (id) => this.camera(id), onUnit: (id) => this.unitTrack(id), onRendered: (d) => this.summary(d) });
    const layers = el.querySelector('#mv-layers');
    for (const k of Object.keys(this.map.show)) {
      const l = document.createElement('label');
      l.innerHTML = `<input type="checkbox" checked data-layer="${k}"> ${k === 'fov' ? 'fields of view' : k}`;
      layers.appendChild(l);
    }
    layers.addEventListener('change', (e) => {
      this.map.show[e.target.dataset.layer] = e.target.checked;
      this.map.applyLayers();
    });
    el.querySelector('#mv-level').addEventListener('change', (e) => {
      this.map.level = e.target.value;
      this.map.stale = true;
      this.reload();
    });
    el.querySelector('#mv-home').addEventListener('click', () => this.map.goHome());
    el.querySelector('#mv-search').addEventListener('submit', (e) => {
      e.preventDefault();
      this.search(el.querySelector('#mv-q').value);
    });
    // A ring opening changes what the view draws: fetch it again soon after the alert.
    onAlerts((a) => {
      if (this.visible && a.kind === 'ring_opened') {
        clearTimeout(this.soon);
        this.soon = setTimeout(() => {
          this.map.stale = true;
          this.reload();
        }, 500);
      }
    });
  }

  async show() {
    this.visible = true;
    await this.reload();
    this.live();
    this.liveUnits();
  }

  hide() {
    this.visible = false;
    clearTimeout(this.liveTimer);
    clearTimeout(this.trackTimer);
    this.unitsFeed?.stop();
    this.unitsFeed = null;
  }

  /** Patrol units live while the map shows (`/api/v1/units/stream`: every unit, then each
   * change as it is stored); not for roles that may not read them (the layer stays empty). */
  liveUnits() {
    this.unitsFeed?.stop();
    if (!this.visible) return;
    const units = new Map();
    this.unitsFeed = unitStream({
      onEvent: (c) => {
        if (c.full) units.clear();
        for (const u of c.units) units.set(u.id, u);
        for (const id of c.gone) units.delete(id);
        this.map.setUnits([...units.values()]);
      },
    });
    this.liveTrack();
  }

  /** The shown track, read again every few seconds. */
  async liveTrack() {
    clearTimeout(this.trackTimer);
    if (!this.visible) return;
    if (this.trackOf) {
      try {
        await this.unitTrack(this.trackOf, true);
      } catch (e) {
        console.warn('track:', e.message);
      }
    }
    this.trackTimer = setTimeout(() => this.liveTrack(), TRACK_MS);
  }

  /** A click on a unit shows its track of the last hour (kept current while shown); a second
   * click hides it. */
  async unitTrack(id, refresh = false) {
    if (!refresh && this.trackOf === id) {
      this.trackOf = null;
      this.map.setTrack(null);
      return;
    }
    this.trackOf = id;
    try {
      const fixes = await getJson(`/api/v1/units/${encodeURIComponent(id)}/track?limit=5000`);
      if (this.trackOf !== id) return;
      this.map.setTrack(id, fixes);
      if (!refresh) toast(`${id}: ${fixes.length} positions in the last hour`);
    } catch (e) {
      toast(`track of ${id}: ${e.message}`);
    }
  }

  /** Polls the camera state changes and hands them to the map; a change it cannot recolour by
   * itself (inside a cluster, a ring member) fetches the view again. */
  async live() {
    clearTimeout(this.liveTimer);
    if (!this.visible) return;
    try {
      // The first ask only learns the server's clock.
      const since = this.since ?? Number.MAX_SAFE_INTEGER;
      const r = await getJson(`/api/v1/geo/map/states?since_ms=${since}`);
      this.since = r.now_ms - OVERLAP_MS;
      if (r.truncated) {
        this.map.stale = true;
        await this.reload();
      } else if (r.changes.length && this.map.applyStates(r.changes)) {
        this.map.stale = true;
        await this.map.refresh();
      }
    } catch (e) {
      console.warn('map states:', e.message);
    }
    this.liveTimer = setTimeout(() => this.live(), LIVE_MS);
  }

  async reload() {
    try {
      await this.map.load();
    } catch (e) {
      setHtml(this.el.querySelector('#mv-summary'), html`<span class="error">map: ${e.message}</span>`);
    }
  }

  summary(d) {
    const x = this.map.extent ?? {};
    const inView =
      d.mode === 'points'
        ? `${d.cameras.length} in view (${d.cameras.filter((c) => c.status === 'online').length} online)`
        : `${d.cameras_in_view} in view in ${d.clusters.length} clusters (${d.clusters.reduce((n, c) => n + c.offline, 0)} offline)`;
    this.el.querySelector('#mv-summary').textContent =
      `${x.cameras ?? '?'} cameras · ${inView} · ${d.rings.length} rings · ${x.roads ?? '?'} roads${d.roads_left_out ? ` (${d.roads_left_out} minor ones hidden at this scale)` : ''}${d.coverage_pending ? ' · coverage being computed…' : ''}`;
    setHtml(
      this.el.querySelector('#mv-rings'),
      html`<h3>Rings</h3>${d.rings.map(
        (r) => html`<div><b>${r.name}</b> <span class="pill ${r.open ? 'new' : ''}">${r.open ? 'open' : 'closed'}</span>
          <div class="dim">${r.members.length} checkpoints, ${r.down.length} down, ${r.leaks.length} leaks</div></div>`,
      )}`,
    );
  }

  /** Cameras by id or name; a query that finds none is tried as a plate (its newest passage). */
  async search(q) {
    const box = this.el.querySelector('#mv-found');
    q = q.trim();
    if (!q) {
      box.hidden = true;
      return;
    }
    box.hidden = false;
    try {
      let hits = await getJson(`/api/v1/geo/map/search?q=${encodeURIComponent(q)}&limit=10`);
      let via = '';
      if (!hits.length && q.length >= 5) {
        const p = await getJson(`/api/v1/passages?plate=${encodeURIComponent(q)}&limit=1`).catch(() => ({ items: [] }));
        const last = p.items[0];
        if (last) {
          hits = await getJson(`/api/v1/geo/map/search?q=${encodeURIComponent(last.camera_id)}&limit=1`);
          via = `${last.plate_no ?? q} last passed ${new Date(last.pass_time_ms).toLocaleString()} at`;
        }
      }
      setHtml(
        box,
        html`<h3>Found</h3>${hits.length ? '' : html`<p class="na">Nothing matches ${q}.</p>`}${hits.map(
          (c) => html`<div><a href="#map" class="found" data-id="${c.id}" data-lon="${c.lon}" data-lat="${c.lat}">${via} ${c.name}</a> <span class="dim">${c.id} · ${c.status}</span></div>`,
        )}`,
      );
      for (const a of box.querySelectorAll('a.found')) {
        a.addEventListener('click', (e) => {
          e.preventDefault();
          this.goTo(a.dataset.id, [Number(a.dataset.lon), Number(a.dataset.lat)]);
        });
      }
      if (hits.length === 1) this.goTo(hits[0].id, [hits[0].lon, hits[0].lat]);
    } catch (e) {
      setHtml(box, html`<p class="error">search: ${e.message}</p>`);
    }
  }

  goTo(id, lonlat) {
    this.map.selectedCam = id;
    this.map.centreOn(lonlat, 500);
    this.camera(id);
  }

  async camera(id) {
    const box = this.el.querySelector('#mv-cam');
    let c;
    try {
      c = await getJson(`/api/v1/cameras/${encodeURIComponent(id)}`);
    } catch (e) {
      setHtml(box, html`<p class="error">${id}: ${e.message}</p>`);
      return;
    }
    setHtml(
      box,
      html`<h3>${c.name}</h3><img alt="last frame" hidden>
      <div class="dim">${c.id}</div>
      <div>${c.kind} · ${c.owner} · ${c.status} · ${c.resolution.width}×${c.resolution.height}, ${c.hfov_deg.toFixed(0)}° looking ${c.bearing_deg}°, ${c.mounting_height_m} m up</div>
      <div class="dim">grid cell ${c.grid_cell ?? '—'} · ${c.profile} profile</div>`,
    );
    if (!c.enabled) {
      // Known from a survey or a map: nothing streams, so there is no frame or health to show.
      box.insertAdjacentHTML('beforeend', html`<div class="dim">not ingested (${c.status_reason || c.config_source})</div>`.s);
      return;
    }
    try {
      const u = await imageUrl(`/api/v1/cameras/${encodeURIComponent(id)}/snapshot.jpg`);
      const img = box.querySelector('img');
      if (this.camUrl) URL.revokeObjectURL(this.camUrl);
      this.camUrl = u;
      img.src = u;
      img.hidden = false;
    } catch {
      /* no frame */
    }
    getJson(`/api/v1/cameras/${encodeURIComponent(id)}/health`)
      .then((h) => box.insertAdjacentHTML('beforeend', html`<div class="dim">ingest ${h.state}, ${h.measured_fps.toFixed(1)} fps${h.last_error ? ` · ${h.last_error}` : ''}</div>`.s))
      .catch(() => {});
  }
}
