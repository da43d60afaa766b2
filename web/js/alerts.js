// Alerts: the live list (severity colours, counts), acknowledge / resolve, and the detail with
// the evidence (plate crop, context picture) and the cameras that see the place.

import { getJson, imageUrl, postJson } from './api.js';
import { allAlerts, cameras, getAlert, onAlerts, upsert } from './store.js';
import { esc, fmtAgo, fmtTime, html, raw, setHtml, sevRank, toast } from './util.js';

const KIND_NAMES = {
  watchlist_hit: 'watchlist hit',
  ring_crossing: 'ring crossing',
  alarm: 'anti-robbery alarm',
  ring_opened: 'ring open',
  camera_offline: 'camera offline',
  motion: 'motion',
  quality_fault: 'quality fault',
};

export class AlertsView {
  constructor(el) {
    this.el = el;
    this.selected = null;
    this.openOnly = true;
    this.kind = '';
    // The duty desk whose queue is shown ('' every alert); a desk's token has only its own.
    this.desk = '';
    this.deskIds = null;
    this.fresh = new Set();
    this.urls = [];
    this.detailFor = null;
    setHtml(
      el,
      html`<div class="toolbar">
        <h2>Alerts</h2>
        <label><input type="checkbox" id="al-open" checked> open only</label>
        <label>kind <select id="al-kind"><option value="">all</option>${Object.entries(KIND_NAMES).map(
          ([k, v]) => raw(`<option value="${k}">${esc(v)}</option>`),
        )}</select></label>
        <label id="al-desk-box" hidden>desk <select id="al-desk"></select></label>
        <span id="al-summary" class="dim"></span>
        <span class="dim">j/k move · a acknowledge · r resolve</span>
      </div>
      <div class="alerts-layout">
        <div class="panel alert-list"><table>
          <thead><tr><th>last</th><th>severity</th><th>kind</th><th>what</th><th class="num">×</th><th>status</th></tr></thead>
          <tbody id="al-rows"></tbody></table>
          <p id="al-empty" class="na" hidden>No alerts.</p>
        </div>
        <div class="panel alert-detail" id="al-detail"><p class="na">Select an alert (click, or j/k).</p></div>
      </div>`,
    );
    this.rows = el.querySelector('#al-rows');
    this.detail = el.querySelector('#al-detail');
    el.querySelector('#al-open').addEventListener('change', (e) => {
      this.openOnly = e.target.checked;
      this.render();
    });
    el.querySelector('#al-kind').addEventListener('change', (e) => {
      this.kind = e.target.value;
      this.render();
    });
    el.querySelector('#al-desk').addEventListener('change', (e) => {
      this.desk = e.target.value;
      this.deskIds = null;
      this.refreshDesk();
      this.render();
    });
    this.rows.addEventListener('click', (e) => {
      const tr = e.target.closest('tr[data-id]');
      if (tr) this.select(Number(tr.dataset.id));
    });
    onAlerts((a, change) => {
      if (change === 'raised') this.fresh.add(a.id);
      // A change may bring an alert to the desk shown (raised there, escalated to it).
      if (this.hasDesks) this.scheduleDesk();
      this.schedule();
      if (a.id === this.selected) this.scheduleDetail();
    });
  }

  show() {
    this.visible = true;
    this.loadDesks();
    this.render();
  }

  /** The duty desks with their queues; a desk's token is shown its own only. */
  async loadDesks() {
    let d;
    try {
      d = await getJson('/api/v1/desks');
    } catch {
      return;
    }
    const box = this.el.querySelector('#al-desk-box');
    const sel = this.el.querySelector('#al-desk');
    box.hidden = !d.desks.length;
    this.hasDesks = d.desks.length > 0;
    const label = (x) => `${x.name} (${x.new} new, ${x.new + x.acknowledged} open)`;
    if (d.scope) {
      const own = d.desks.find((x) => x.id === d.scope);
      setHtml(sel, html`<option value="">${own ? label(own) : d.scope}</option>`);
      sel.disabled = true;
      sel.title = 'this token belongs to this desk: its queue is all it is sent';
      this.desk = '';
      return;
    }
    const opts = [html`<option value="">every desk (${d.unrouted_new} new at no desk)</option>`].concat(
      d.desks.map((x) => html`<option value="${x.id}" ${raw(x.id === this.desk ? 'selected' : '')}>${label(x)}</option>`),
    );
    setHtml(sel, html`${opts}`);
  }

  scheduleDesk() {
    clearTimeout(this.deskTimer);
    this.deskTimer = setTimeout(() => this.refreshDesk(), 500);
  }

  /** The ids of the alerts that reached the chosen desk (the server decides, as for its operators). */
  async refreshDesk() {
    const desk = this.desk;
    if (!desk) return this.loadDesks();
    try {
      const q = `desk=${encodeURIComponent(desk)}`;
      const [recent, open] = await Promise.all([
        getJson(`/api/v1/alerts?${q}&limit=300`),
        getJson(`/api/v1/alerts?${q}&status=new,acknowledged&limit=500`),
      ]);
      if (desk !== this.desk) return;
      this.deskIds = new Set([...recent.items, ...open.items].map((a) => a.id));
      for (const a of [...recent.items, ...open.items]) upsert(a, 'loaded');
      this.loadDesks();
      this.schedule();
    } catch (e) {
      toast(`desk ${desk}: ${e.message}`);
    }
  }

  hide() {
    this.visible = false;
  }

  schedule() {
    if (this.pending) return;
    this.pending = requestAnimationFrame(() => {
      this.pending = null;
      this.render();
    });
  }

  scheduleDetail() {
    if (this.pendingDetail) return;
    this.pendingDetail = requestAnimationFrame(() => {
      this.pendingDetail = null;
      this.renderDetail(false);
    });
  }

  list() {
    return allAlerts()
      .filter((a) => (!this.openOnly || a.status !== 'resolved') && (!this.kind || a.kind === this.kind))
      .filter((a) => !this.desk || (this.deskIds?.has(a.id) ?? false))
      .sort((a, b) => {
        // Unacknowledged first, then by severity, then newest.
        const n = (a.status === 'new' ? 0 : 1) - (b.status === 'new' ? 0 : 1);
        return n || sevRank(a.severity) - sevRank(b.severity) || b.last_at_ms - a.last_at_ms || b.id - a.id;
      });
  }

  render() {
    const items = this.list();
    this.items = items;
    const rows = items.slice(0, 400).map((a) => {
      const cls = [`alert-row`, `sev-${a.severity}`, `status-${a.status}`];
      if (a.id === this.selected) cls.push('selected');
      if (this.fresh.has(a.id)) cls.push('fresh');
      return html`<tr class="${cls.join(' ')}" data-id="${a.id}" data-kind="${a.kind}" data-status="${a.status}">
        <td title="${fmtTime(a.last_at_ms)}">${fmtTime(a.last_at_ms)}</td>
        <td><span class="sev ${a.severity}">${a.severity}</span></td>
        <td>${KIND_NAMES[a.kind] ?? a.kind}</td>
        <td>${a.title}</td>
        <td class="num">${a.count}</td>
        <td><span class="pill ${a.status}">${a.status}</span></td></tr>`;
    });
    this.fresh.clear();
    this.rows.innerHTML = rows.map((r) => r.s).join('');
    this.el.querySelector('#al-empty').hidden = items.length > 0;
    const all = allAlerts();
    const open = all.filter((a) => a.status !== 'resolved');
    this.el.querySelector('#al-summary').textContent =
      `${open.filter((a) => a.status === 'new').length} new, ${open.length} open, ${all.length} loaded`;
  }

  select(id) {
    this.selected = id;
    for (const tr of this.rows.querySelectorAll('tr.selected')) tr.classList.remove('selected');
    const tr = this.rows.querySelector(`tr[data-id="${id}"]`);
    tr?.classList.add('selected');
    tr?.scrollIntoView({ block: 'nearest' });
    this.renderDetail(true);
  }

  move(d) {
    const items = this.items ?? this.list();
    if (!items.length) return;
    const i = items.findIndex((a) => a.id === this.selected);
    const j = i < 0 ? 0 : Math.max(0, Math.min(items.length - 1, i + d));
    this.select(items[j].id);
  }

  key(e) {
    if (e.key === 'j' || e.key === 'ArrowDown') this.move(1);
    else if (e.key === 'k' || e.key === 'ArrowUp') this.move(-1);
    else if (e.key === 'a') this.act('acknowledge');
    else if (e.key === 'r') this.act('resolve');
    else if (e.key === 'o') {
      this.openOnly = !this.openOnly;
      this.el.querySelector('#al-open').checked = this.openOnly;
      this.render();
    } else return false;
    return true;
  }

  async act(op) {
    const a = getAlert(this.selected);
    if (!a) return;
    try {
      let row;
      if (op === 'acknowledge') {
        if (a.status !== 'new') return toast(`alert ${a.id} is already ${a.status}`);
        row = await postJson(`/api/v1/alerts/${a.id}/acknowledge`);
      } else {
        if (a.status === 'resolved') return toast(`alert ${a.id} is already resolved`);
        const note = window.prompt(`Resolve alert ${a.id}: what was done?`, '');
        if (note === null) return;
        row = await postJson(`/api/v1/alerts/${a.id}/resolve`, { note: note || 'resolved from the dashboard' });
      }
      upsert(row, op === 'acknowledge' ? 'acknowledged' : 'resolved');
      toast(`alert ${a.id} ${row.status}`);
    } catch (e) {
      toast(`alert ${a.id}: ${e.message}`);
    }
  }

  async renderDetail(full) {
    const a = getAlert(this.selected);
    if (!a) return;
    const sameAlert = this.detailFor === a.id;
    this.detailFor = a.id;
    const head = html`<h3><span class="sev ${a.severity}">${a.severity}</span> ${a.title}</h3>
      <div class="actions">
        <button id="ad-ack" ${raw(a.status === 'new' ? '' : 'disabled')}>Acknowledge (a)</button>
        <button id="ad-res" class="ghost" ${raw(a.status === 'resolved' ? 'disabled' : '')}>Resolve (r)</button>
      </div>
      <dl>
        <dt>alert</dt><dd>#${a.id} · ${KIND_NAMES[a.kind] ?? a.kind}</dd>
        <dt>status</dt><dd><span class="pill ${a.status}" id="ad-status">${a.status}</span>
          ${a.ack_by ? `acknowledged by ${a.ack_by} ${fmtAgo(a.ack_at_ms)}` : ''}
          ${a.resolved_by ? ` · resolved by ${a.resolved_by}: ${a.resolve_note ?? ''}` : ''}</dd>
        <dt>first / last</dt><dd>${fmtTime(a.first_at_ms)} / ${fmtTime(a.last_at_ms)} (${fmtAgo(a.last_at_ms)})</dd>
        <dt>occurrences</dt><dd>${a.count}${a.escalation_level ? ` · escalated ×${a.escalation_level}` : ''}</dd>
        ${a.grid_cell_id ? html`<dt>grid cell</dt><dd>${a.grid_cell_id}</dd>` : ''}
        ${a.ring_id ? html`<dt>ring</dt><dd>${a.ring_id}</dd>` : ''}
        ${facts(a)}
      </dl>`;
    let box = this.detail.querySelector('#ad-head');
    if (!full && sameAlert && box) {
      setHtml(box, head);
      this.wireActions();
      return;
    }
    for (const u of this.urls) URL.revokeObjectURL(u);
    this.urls = [];
    setHtml(
      this.detail,
      html`<div id="ad-head">${head}</div>
      <div id="ad-evidence" class="evidence"></div>
      <h4>Units to send</h4><div id="ad-units" class="units"><p class="dim">…</p></div>
      <h4>Cameras that see the place</h4><div id="ad-seeing" class="seeing"><p class="dim">…</p></div>
      <h4>Trail</h4><div id="ad-audit" class="audit"></div>`,
    );
    this.wireActions();
    const id = a.id;
    const still = () => this.detailFor === id;
    this.evidence(a, still);
    this.units(a, still);
    this.seeing(a, still);
    getJson(`/api/v1/alerts/${id}`)
      .then((d) => {
        if (!still()) return;
        setHtml(
          this.detail.querySelector('#ad-audit'),
          html`${d.audit.map((x) => html`<div>${fmtTime(x.at_ms)} · ${x.actor} · ${x.action}${x.action === 'dispatched' ? `: ${(x.detail?.units ?? []).map((u) => u.id).join(', ')}` : ''}</div>`)}`,
        );
      })
      .catch(() => {});
  }

  wireActions() {
    this.detail.querySelector('#ad-ack')?.addEventListener('click', () => this.act('acknowledge'));
    this.detail.querySelector('#ad-res')?.addEventListener('click', () => this.act('resolve'));
  }

  async evidence(a, still) {
    const ev = a.detail?.event ?? {};
    const passage = ev.passage_id;
    const box = this.detail.querySelector('#ad-evidence');
    if (passage === undefined || passage === null) return;
    const pics = [
      ['plate', `/api/v1/passages/${passage}/plate.jpg`, `plate crop: ${ev.plate_no ?? ''}`],
      ['context', `/api/v1/passages/${passage}/context.jpg`, 'context picture at the checkpoint'],
    ];
    for (const [cls, url, caption] of pics) {
      try {
        const u = await imageUrl(url);
        if (!still()) {
          URL.revokeObjectURL(u);
          return;
        }
        this.urls.push(u);
        box.insertAdjacentHTML('beforeend', html`<figure><img class="${cls}" src="${u}" alt="${caption}"><figcaption>${caption}</figcaption></figure>`.s);
      } catch (e) {
        box.insertAdjacentHTML('beforeend', html`<figure><figcaption>${caption}: ${e.message}</figcaption></figure>`.s);
      }
    }
  }

  /** The dispatch panel: available units by their time by road to the place, each with Send. */
  async units(a, still) {
    const box = this.detail.querySelector('#ad-units');
    let plan;
    try {
      plan = await getJson(`/api/v1/alerts/${a.id}/dispatch?k=6`);
    } catch (e) {
      if (still()) setHtml(box, html`<p class="na">${e.message}</p>`);
      return;
    }
    if (!still()) return;
    const mins = (s) => `${Math.floor(s / 60)}:${String(Math.round(s % 60)).padStart(2, '0')}`;
    const rows = plan.units.map(
      (u) => html`<tr data-unit="${u.unit.id}"><td><b>${u.unit.name}</b> <span class="dim">${u.unit.id} · ${u.unit.kind}</span></td>
        <td class="num eta">${mins(u.eta_s)}</td>
        <td><button class="send" data-unit="${u.unit.id}" ${raw(a.status === 'resolved' ? 'disabled' : '')}>Send</button></td></tr>`,
    );
    const left = plan.left_out.length
      ? html`<p class="dim" title="${plan.left_out.map((l) => `${l.id}: ${l.why}`).join('\n')}">${plan.left_out.length} more available, not ranked (hover for why)</p>`
      : '';
    setHtml(
      box,
      plan.units.length
        ? html`<table class="units"><thead><tr><th>unit</th><th class="num">ETA</th><th></th></tr></thead><tbody>${rows}</tbody></table>${left}`
        : html`<p class="na">No available unit can be ranked.</p>${left}`,
    );
    for (const b of box.querySelectorAll('button.send')) {
      b.addEventListener('click', async () => {
        b.disabled = true;
        try {
          const r = await postJson(`/api/v1/alerts/${a.id}/dispatch`, { units: [b.dataset.unit] });
          upsert(r.alert, 'dispatched');
          toast(`${r.units.map((u) => u.name).join(', ')} sent to alert ${a.id}`);
          if (still()) this.renderDetail(true);
        } catch (e) {
          b.disabled = false;
          toast(`dispatch: ${e.message}`);
        }
      });
    }
  }

  async seeing(a, still) {
    const box = this.detail.querySelector('#ad-seeing');
    let where = null;
    if (a.detail?.lon !== undefined && a.detail?.lon !== null) where = [a.detail.lon, a.detail.lat];
    let list = Array.isArray(a.detail?.seeing) ? a.detail.seeing : null;
    try {
      if (!where && a.cameras?.length) {
        const c = (await cameras()).get(a.cameras[0]);
        if (c) where = [c.position.lon, c.position.lat];
      }
      if (!list && where) list = await getJson(`/api/v1/geo/seeing?lon=${where[0]}&lat=${where[1]}&states=all`);
    } catch (e) {
      if (still()) setHtml(box, html`<p class="na">${e.message}</p>`);
      return;
    }
    if (!still()) return;
    const ids = new Set((list ?? []).map((s) => s.camera_id));
    const extra = (a.cameras ?? []).filter((c) => !ids.has(c)).map((c) => ({ camera_id: c, name: c, level: 'on the alert' }));
    const all = [...(list ?? []), ...extra].slice(0, 8);
    if (!all.length) {
      setHtml(box, html`<p class="na">No camera sees this place.</p>`);
      return;
    }
    setHtml(
      box,
      html`${all.map(
        (s) => html`<figure data-camera="${s.camera_id}"><img alt=""><figcaption><b>${s.name ?? s.camera_id}</b><br>
          <span class="dim">${s.level}${s.distance_m !== undefined ? ` · ${Math.round(s.distance_m)} m` : ''}${s.status ? ` · ${s.status}` : ''}</span></figcaption></figure>`,
      )}`,
    );
    for (const fig of box.querySelectorAll('figure[data-camera]')) {
      imageUrl(`/api/v1/cameras/${encodeURIComponent(fig.dataset.camera)}/snapshot.jpg`)
        .then((u) => {
          if (!still()) return URL.revokeObjectURL(u);
          this.urls.push(u);
          fig.querySelector('img').src = u;
        })
        .catch(() => {});
    }
  }
}

/** The facts of an alert's detail worth a line each. */
function facts(a) {
  const d = a.detail ?? {};
  const ev = d.event ?? {};
  const rows = [];
  const add = (k, v) => v !== undefined && v !== null && v !== '' && rows.push(html`<dt>${k}</dt><dd>${v}</dd>`);
  if (a.kind === 'watchlist_hit' || a.kind === 'ring_crossing') {
    add('plate', ev.plate_no);
    add('colour', ev.plate_color);
    add('checkpoint', ev.checkpoint_name ?? ev.camera_id ?? ev.checkpoint);
    add('watchlist', ev.reason ? `${ev.reason} (${ev.priority ?? ''}, ${ev.match_kind ?? ''})` : undefined);
    add('direction', ev.direction);
    if (ev.seconds_since_incident !== undefined) add('after incident', `${Math.round(ev.seconds_since_incident)} s (ETA ${Math.round(ev.eta_s ?? 0)} s)`);
  } else if (a.kind === 'alarm') {
    add('alarm point', d.name ?? d.alarm_id);
    if (d.lon !== null && d.lon !== undefined) add('where', `${d.lon.toFixed(5)}, ${d.lat.toFixed(5)}`);
  } else if (a.kind === 'quality_fault') {
    add('check', ev.check);
  } else if (a.kind === 'motion') {
    add('zone', d.zone ?? ev.zone);
  }
  if (a.cameras?.length) add('cameras', a.cameras.join(', '));
  return rows;
}
