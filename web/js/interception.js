// Interception (围堵截): click the map where it happened, start; the rings around it are armed
// with each checkpoint's earliest arrival time by road; crossings arrive live from the alert stream.

import { getJson, postJson } from './api.js';
import { allAlerts, onAlerts } from './store.js';
import { CityMap } from './map.js';
import { fmtDuration, fmtTime, html, setHtml, toast } from './util.js';

export class InterceptionView {
  constructor(el) {
    this.el = el;
    this.pick = null;
    this.current = null;
    setHtml(
      el,
      html`<div class="toolbar"><h2>Interception</h2>
        <span class="dim">Click the map where the incident happened, then start: the checkpoint rings around it are armed.</span></div>
      <div class="map-layout">
        <div class="map-box" id="ic-box"></div>
        <div class="map-side">
          <form class="panel" id="ic-form">
            <h3>New interception</h3>
            <div id="ic-where" class="dim">No place chosen: click the map.</div>
            <label>suspect plate (empty: every vehicle)<br><input id="ic-plate" placeholder="豫A12345" spellcheck="false"></label>
            <label>note<br><input id="ic-note" placeholder="robbery at …"></label>
            <div class="actions"><button id="ic-start" type="submit" disabled>Start interception</button></div>
          </form>
          <div class="panel" id="ic-plan"><p class="na">No interception shown.</p></div>
          <div class="panel" id="ic-crossings"><h3>Crossings</h3><p class="na">None yet.</p></div>
          <div class="panel" id="ic-list"></div>
        </div>
      </div>`,
    );
    this.map = new CityMap(el.querySelector('#ic-box'), { onPick: (p) => this.choose(p), onCamera: () => {} });
    this.map.svg.classList.add('pick');
    this.map.show.fov = false;
    el.querySelector('#ic-form').addEventListener('submit', (e) => {
      e.preventDefault();
      this.start();
    });
    el.querySelector('#ic-list').addEventListener('click', (e) => {
      const b = e.target.closest('button[data-id]');
      if (!b) return;
      if (b.dataset.op === 'close') this.close(Number(b.dataset.id));
      else this.open(Number(b.dataset.id));
    });
    onAlerts((a) => {
      if (a.kind === 'ring_crossing' && this.current && a.detail?.event?.interception_id === this.current.id) this.crossings();
    });
  }

  async show() {
    this.visible = true;
    try {
      await this.map.load();
      this.map.applyLayers();
    } catch (e) {
      setHtml(this.el.querySelector('#ic-plan'), html`<p class="error">map: ${e.message}</p>`);
    }
    this.list();
  }

  hide() {
    this.visible = false;
  }

  choose([lon, lat]) {
    this.pick = [lon, lat];
    this.map.setIncident(this.pick);
    this.el.querySelector('#ic-where').textContent = `Incident at ${lon.toFixed(5)}, ${lat.toFixed(5)}`;
    this.el.querySelector('#ic-start').disabled = false;
  }

  async start() {
    if (!this.pick) return;
    const plate = this.el.querySelector('#ic-plate').value.trim();
    const note = this.el.querySelector('#ic-note').value.trim();
    const body = { lon: this.pick[0], lat: this.pick[1] };
    if (plate) body.plate = plate;
    if (note) body.note = note;
    try {
      const r = await postJson('/api/v1/interceptions', body);
      toast(`interception ${r.id} started: ${r.rings.reduce((n, x) => n + x.checkpoints.length, 0)} checkpoints armed`);
      this.current = { id: r.id, lon: body.lon, lat: body.lat, plate: plate || null, plan: r.rings, status: 'active', created_at_ms: Date.now() };
      this.render();
      this.list();
    } catch (e) {
      toast(`interception: ${e.message}`);
    }
  }

  async open(id) {
    try {
      const r = await getJson(`/api/v1/interceptions/${id}`);
      this.current = r;
      this.pick = null;
      this.render();
    } catch (e) {
      toast(e.message);
    }
  }

  async close(id) {
    try {
      await postJson(`/api/v1/interceptions/${id}/close`, { by: 'dashboard' });
      toast(`interception ${id} closed`);
      if (this.current?.id === id) this.current.status = 'closed';
      this.render();
      this.list();
    } catch (e) {
      toast(e.message);
    }
  }

  render() {
    const ic = this.current;
    const box = this.el.querySelector('#ic-plan');
    if (!ic) return;
    const rings = Array.isArray(ic.plan) ? ic.plan : [];
    const armed = new Map();
    for (const r of rings) for (const c of r.checkpoints) armed.set(c.camera_id, c.eta_s === null || c.eta_s === undefined ? 'no road' : `ETA ${fmtDuration(c.eta_s)}`);
    this.map.setPlan(ic.status === 'active' ? armed : new Map(), [ic.lon, ic.lat]);
    setHtml(
      box,
      html`<h3 id="ic-title" data-id="${ic.id}">Interception #${ic.id} <span class="pill ${ic.status === 'active' ? 'new' : ''}">${ic.status}</span></h3>
      <div class="dim">${ic.plate ? `suspect ${ic.plate}` : 'every vehicle'} · started ${fmtTime(ic.created_at_ms)}</div>
      ${rings.length ? '' : html`<p class="na">The place is inside no checkpoint ring: nothing to arm.</p>`}
      ${rings.map(
        (r) => html`<div class="ring-plan"><h4>${r.name} (level ${r.level})</h4><table>
          <thead><tr><th>checkpoint</th><th>status</th><th class="num">earliest arrival</th><th title="the patrol unit proposed to the checkpoint: its time by road from where it is now, and how much before (or after) the suspect could be there">unit proposed</th></tr></thead><tbody>
          ${[...r.checkpoints]
            .sort((a, b) => (a.eta_s ?? 1e12) - (b.eta_s ?? 1e12))
            .map(
              (c) => html`<tr class="armed-checkpoint" data-camera="${c.camera_id}" data-ring="${r.ring_id}">
                <td>${c.name}</td><td>${c.status}</td><td class="num">${c.eta_s === null || c.eta_s === undefined ? 'no road' : fmtDuration(c.eta_s)}</td>
                <td class="ic-unit dim">…</td></tr>`,
            )}</tbody></table></div>`,
      )}`,
    );
    this.crossings();
    this.units();
  }

  /** The patrol units proposed to the armed checkpoints (the server's cover), in the table. */
  async units() {
    const ic = this.current;
    if (!ic || ic.status !== 'active') {
      for (const td of this.el.querySelectorAll('td.ic-unit')) td.textContent = '';
      return;
    }
    clearTimeout(this.unitTimer);
    let p;
    try {
      p = await getJson(`/api/v1/interceptions/${ic.id}/units`);
    } catch (e) {
      for (const td of this.el.querySelectorAll('td.ic-unit')) td.textContent = e.message;
      return;
    }
    if (this.current?.id !== ic.id) return;
    const by = new Map(p.checkpoints.map((c) => [c.camera_id, c]));
    for (const tr of this.el.querySelectorAll('tr.armed-checkpoint')) {
      const td = tr.querySelector('td.ic-unit');
      const c = by.get(tr.dataset.camera);
      if (!c?.unit) {
        td.className = 'ic-unit dim';
        td.textContent = 'no unit left';
        delete tr.dataset.unit;
        continue;
      }
      const early = c.margin_s !== null && c.margin_s !== undefined && c.margin_s > 0;
      td.className = `ic-unit ${early ? 'in-time' : 'late'}`;
      tr.dataset.unit = c.unit.unit.id;
      const margin = c.margin_s === null || c.margin_s === undefined ? '' : early ? ` · ${fmtDuration(c.margin_s)} early` : ` · ${fmtDuration(-c.margin_s)} late`;
      td.textContent = `${c.unit.unit.name} · ${fmtDuration(c.unit.eta_s)}${margin}`;
      td.title = `${c.unit.unit.name} (${c.unit.unit.kind}) reaches it ${fmtDuration(c.unit.eta_s)} from now by road${margin}`;
    }
    // Units move: the proposal is asked again while the interception is shown.
    if (this.visible) this.unitTimer = setTimeout(() => this.units(), 5000);
  }

  crossings() {
    const ic = this.current;
    if (!ic) return;
    const list = allAlerts()
      .filter((a) => a.kind === 'ring_crossing' && a.detail?.event?.interception_id === ic.id)
      .sort((a, b) => b.last_at_ms - a.last_at_ms);
    for (const a of list) this.map.markCrossed(a.detail.event.checkpoint);
    setHtml(
      this.el.querySelector('#ic-crossings'),
      html`<h3>Crossings (${list.length})</h3>${list.length ? '' : html`<p class="na">None yet.</p>`}
      ${list.map((a) => {
        const e = a.detail.event;
        return html`<div class="crossing" data-alert="${a.id}"><b>${e.plate_no ?? 'vehicle'}</b> at ${e.checkpoint_name ?? e.checkpoint}
          <div class="dim">${e.ring_name} · ${fmtTime(e.pass_time_ms)} · ${Math.round(e.seconds_since_incident)} s after the incident (ETA ${fmtDuration(e.eta_s)})</div></div>`;
      })}`,
    );
  }

  async list() {
    const box = this.el.querySelector('#ic-list');
    try {
      const rows = await getJson('/api/v1/interceptions');
      setHtml(
        box,
        html`<h3>Active (${rows.length})</h3>${rows.map(
          (r) => html`<div>#${r.id} ${r.plate ?? 'every vehicle'} <span class="dim">${fmtTime(r.created_at_ms)}</span>
            <button class="ghost" data-id="${r.id}" data-op="show">show</button> <button class="ghost" data-id="${r.id}" data-op="close">close</button></div>`,
        )}`,
      );
    } catch (e) {
      setHtml(box, html`<p class="error">${e.message}</p>`);
    }
  }
}
