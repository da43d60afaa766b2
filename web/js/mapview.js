// Map: the whole city, layer toggles, the coverage level, ring states, a camera's details.

import { getJson, imageUrl } from './api.js';
import { cameras, onAlerts } from './store.js';
import { CityMap, LEVELS } from './map.js';
import { html, setHtml } from './util.js';

export class MapView {
  constructor(el) {
    this.el = el;
    setHtml(
      el,
      html`<div class="toolbar">
        <h2>Map</h2>
        <label>coverage at <select id="mv-level">${LEVELS.map((l) => html`<option ${l === 'observe' ? 'selected' : ''}>${l}</option>`)}</select></label>
        <span class="map-layers" id="mv-layers"></span>
        <button class="ghost" id="mv-home" title="or double-click the map">fit</button>
        <span id="mv-summary" class="dim"></span>
      </div>
      <div class="map-layout">
        <div class="map-box" id="mv-box"></div>
        <div class="map-side">
          <div class="panel cam-info" id="mv-cam"><p class="na">Click a camera.</p></div>
          <div class="panel" id="mv-rings"></div>
        </div>
      </div>`,
    );
    this.map = new CityMap(el.querySelector('#mv-box'), { onCamera: (id) => this.camera(id) });
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
      this.reload();
    });
    el.querySelector('#mv-home').addEventListener('click', () => {
      this.map.view = { ...this.map.home };
      this.map.applyView();
    });
    // Rings and camera states change with alerts: redraw soon after one arrives.
    onAlerts((a) => {
      if (this.visible && ['ring_opened', 'camera_offline'].includes(a.kind)) {
        clearTimeout(this.soon);
        this.soon = setTimeout(() => this.reload(), 1000);
      }
    });
  }

  async show() {
    this.visible = true;
    await this.reload();
    this.timer = setInterval(() => this.reload(), 15_000);
  }

  hide() {
    this.visible = false;
    clearInterval(this.timer);
  }

  async reload() {
    try {
      await this.map.load();
    } catch (e) {
      setHtml(this.el.querySelector('#mv-summary'), html`<span class="error">map: ${e.message}</span>`);
      return;
    }
    const d = this.map.data;
    const cams = d.cams.features.filter((f) => f.geometry.type === 'Point');
    const online = cams.filter((f) => f.properties.status === 'online').length;
    this.el.querySelector('#mv-summary').textContent =
      `${cams.length} cameras (${online} online) · ${d.rings.features.length} rings · ${d.roads.features.length} roads · ${d.gaps.features?.length ?? 0} gaps at ${this.map.level}`;
    const states = Array.isArray(d.ringStates) ? d.ringStates : [];
    setHtml(
      this.el.querySelector('#mv-rings'),
      html`<h3>Rings</h3>${states.map(
        (r) => html`<div><b>${r.name}</b> <span class="pill ${r.open ? 'new' : ''}">${r.open ? 'open' : 'closed'}</span>
          <div class="dim">${r.members.length} checkpoints, ${r.down.length} down, ${r.leaks.length} leaks, ${r.crossings} road crossings</div></div>`,
      )}`,
    );
  }

  async camera(id) {
    const box = this.el.querySelector('#mv-cam');
    const c = (await cameras()).get(id);
    if (!c) return;
    setHtml(
      box,
      html`<h3>${c.name}</h3><img alt="last frame" hidden>
      <div class="dim">${c.id}</div>
      <div>${c.kind} · ${c.owner} · ${c.status} · ${c.resolution.width}×${c.resolution.height}, ${c.hfov_deg.toFixed(0)}° looking ${c.bearing_deg}°, ${c.mounting_height_m} m up</div>
      <div class="dim">grid cell ${c.grid_cell ?? '—'} · ${c.profile} profile</div>`,
    );
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
