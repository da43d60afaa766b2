// Cameras: the health wall. A tile per camera with its last frame (fetched with the token),
// ingest state, frame rate, faults; sort and filter by grid cell (cells below included).

import { getJson, imageUrl } from './api.js';
import { cameras } from './store.js';
import { esc, fmtAgo, html, pool, setHtml } from './util.js';

const STATE_RANK = { backoff: 0, stalled: 1, connecting: 2, streaming: 3, disabled: 4 };

export class CamerasView {
  constructor(el) {
    this.el = el;
    this.sort = 'worst';
    this.cell = '';
    this.text = '';
    this.cellIds = null;
    this.urls = new Map();
    setHtml(
      el,
      html`<div class="toolbar">
        <h2>Cameras</h2>
        <label>sort <select id="cw-sort">
          <option value="worst">worst first</option><option value="name">name</option>
          <option value="kind">kind</option><option value="cell">grid cell</option></select></label>
        <label>grid cell <select id="cw-cell"><option value="">all</option></select></label>
        <input id="cw-text" type="search" placeholder="filter by name or id">
        <span id="cw-summary" class="wall-summary"></span>
      </div>
      <div id="cw-wall" class="wall"></div>`,
    );
    this.wall = el.querySelector('#cw-wall');
    el.querySelector('#cw-sort').addEventListener('change', (e) => {
      this.sort = e.target.value;
      this.render();
    });
    el.querySelector('#cw-cell').addEventListener('change', async (e) => {
      this.cell = e.target.value;
      this.cellIds = null;
      if (this.cell) {
        const page = await getJson(`/api/v1/cameras?grid_cell=${encodeURIComponent(this.cell)}&limit=1000`);
        this.cellIds = new Set(page.items.map((c) => c.id));
      }
      this.render();
      this.refreshShots();
    });
    el.querySelector('#cw-text').addEventListener('input', (e) => {
      this.text = e.target.value.trim().toLowerCase();
      this.render();
    });
  }

  async show() {
    this.visible = true;
    await this.load();
    this.timer = setInterval(() => this.load(), 10_000);
  }

  hide() {
    this.visible = false;
    clearInterval(this.timer);
  }

  async load() {
    try {
      const [cams, health, quality] = await Promise.all([
        cameras(true),
        getJson('/api/v1/health/cameras').catch(() => []),
        getJson('/api/v1/maintenance/quality').catch(() => []),
      ]);
      this.cams = [...cams.values()];
      this.health = new Map(health.map((h) => [h.camera, h]));
      this.quality = new Map(quality.map((q) => [q.camera_id, q]));
      if (!this.cellsLoaded) await this.loadCells();
      this.render();
      this.refreshShots();
    } catch (e) {
      setHtml(this.wall, html`<p class="error">cameras: ${e.message}</p>`);
    }
  }

  async loadCells() {
    const ids = new Set(this.cams.map((c) => c.grid_cell).filter(Boolean));
    let cells = [];
    try {
      cells = await getJson('/api/v1/coverage/cells?states=all');
    } catch {
      cells = [...ids].map((id) => ({ id, name: id, level: 0 }));
    }
    const sel = this.el.querySelector('#cw-cell');
    cells.sort((a, b) => (a.level - b.level) || a.id.localeCompare(b.id));
    sel.insertAdjacentHTML(
      'beforeend',
      cells.map((c) => `<option value="${esc(c.id)}">${'· '.repeat(Math.max(0, c.level - 1))}${esc(c.name)} (${esc(c.id)})</option>`).join(''),
    );
    this.cellsLoaded = true;
  }

  stateOf(c) {
    if (!c.enabled || c.status === 'disabled') return 'disabled';
    return this.health.get(c.id)?.state ?? 'connecting';
  }

  rows() {
    let list = this.cams.filter(
      (c) =>
        (!this.cellIds || this.cellIds.has(c.id)) &&
        (!this.text || c.name.toLowerCase().includes(this.text) || c.id.toLowerCase().includes(this.text)),
    );
    const faults = (c) => this.quality.get(c.id)?.faults?.length ?? 0;
    const by = {
      worst: (a, b) =>
        (STATE_RANK[this.stateOf(a)] ?? 9) - (STATE_RANK[this.stateOf(b)] ?? 9) || faults(b) - faults(a) || a.name.localeCompare(b.name),
      name: (a, b) => a.name.localeCompare(b.name),
      kind: (a, b) => a.kind.localeCompare(b.kind) || a.name.localeCompare(b.name),
      cell: (a, b) => (a.grid_cell ?? '~').localeCompare(b.grid_cell ?? '~') || a.name.localeCompare(b.name),
    }[this.sort];
    return list.sort(by);
  }

  render() {
    if (!this.cams) return;
    const list = this.rows();
    const n = { streaming: 0, down: 0, faults: 0 };
    for (const c of this.cams) {
      const s = this.stateOf(c);
      if (s === 'streaming') n.streaming++;
      else if (s === 'backoff' || s === 'stalled') n.down++;
      if (this.quality.get(c.id)?.faults?.length) n.faults++;
    }
    this.el.querySelector('#cw-summary').textContent =
      `${list.length} shown · ${n.streaming} streaming · ${n.down} down · ${n.faults} with quality faults`;
    // Keep existing tiles (and their pictures); only reorder and update text.
    const keep = new Map([...this.wall.querySelectorAll('.tile')].map((t) => [t.dataset.id, t]));
    const frag = document.createDocumentFragment();
    for (const c of list) {
      const tile = keep.get(c.id) ?? this.newTile(c);
      keep.delete(c.id);
      this.fillTile(tile, c);
      frag.appendChild(tile);
    }
    for (const [id, t] of keep) {
      t.remove();
      const u = this.urls.get(id);
      if (u) URL.revokeObjectURL(u);
      this.urls.delete(id);
    }
    this.wall.replaceChildren(frag);
  }

  newTile(c) {
    const t = document.createElement('div');
    t.className = 'tile';
    t.dataset.id = c.id;
    t.innerHTML = `<div class="shot"><span class="noshot">no picture</span><img alt="" hidden></div><div class="meta"></div>`;
    return t;
  }

  fillTile(t, c) {
    const h = this.health.get(c.id);
    const q = this.quality.get(c.id);
    const state = this.stateOf(c);
    t.className = `tile state-${state}${q?.faults?.length ? ' has-fault' : ''}`;
    t.dataset.state = state;
    setHtml(
      t.querySelector('.meta'),
      html`<div class="name" title="${c.name}">${c.name}</div>
      <div><span class="state ${state}">${state}</span> <span class="dim">${c.kind} · ${c.grid_cell ?? 'no cell'}</span></div>
      <div class="dim">${h ? `${h.measured_fps.toFixed(1)} / ${h.expected_fps.toFixed(0)} fps · ${h.reconnects_last_hour} reconnects/h` : c.status}</div>
      ${q?.faults?.length ? html`<div>${q.faults.map((f) => html`<span class="fault">${f.replaceAll('_', ' ')}</span>`)}</div>` : ''}
      ${h?.last_error && state !== 'streaming' ? html`<div class="error" title="${h.last_error}">${h.last_error}</div>` : ''}
      <div class="dim" title="${c.id}">${c.id}${h?.last_frame_at ? ` · frame ${fmtAgo(Date.parse(h.last_frame_at))}` : ''}</div>`,
    );
  }

  /** New snapshots for the streaming cameras shown, four at a time. */
  async refreshShots() {
    if (this.refreshing || !this.visible) return;
    this.refreshing = true;
    try {
      const tiles = [...this.wall.querySelectorAll('.tile[data-state=streaming]')];
      await pool(tiles, 4, async (t) => {
        const id = t.dataset.id;
        try {
          const u = await imageUrl(`/api/v1/cameras/${encodeURIComponent(id)}/snapshot.jpg`);
          const img = t.querySelector('img');
          const old = this.urls.get(id);
          img.onload = () => {
            img.hidden = false;
            t.querySelector('.noshot').hidden = true;
            if (old) URL.revokeObjectURL(old);
          };
          img.src = u;
          this.urls.set(id, u);
        } catch {
          /* no frame yet: keep the last picture */
        }
      });
    } finally {
      this.refreshing = false;
    }
  }
}
