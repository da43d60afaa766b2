// Maintenance: work orders (open, closed, overdue) and the video-quality faults now.

import { getJson, postJson } from './api.js';
import { cameras } from './store.js';
import { failure, fmtAgo, fmtTime, html, setHtml, toast } from './util.js';

const PRIORITY = { 1: 'ring checkpoint', 2: 'street', 3: 'compound' };

export class MaintenanceView {
  constructor(el) {
    this.el = el;
    this.state = 'open';
    setHtml(
      el,
      html`<div class="toolbar"><h2>Maintenance</h2>
        <label>work orders <select id="mt-state"><option value="open">open</option><option value="open,closed">open and closed</option>
          <option value="open,closed,verified">all</option></select></label>
        <span id="mt-summary" class="dim"></span></div>
      <div class="grid2">
        <div class="panel"><h3>Work orders</h3><div id="mt-orders"></div></div>
        <div class="panel"><h3>Quality faults now</h3><div id="mt-quality"></div></div>
      </div>`,
    );
    el.querySelector('#mt-state').addEventListener('change', (e) => {
      this.state = e.target.value;
      this.load();
    });
    el.querySelector('#mt-orders').addEventListener('submit', (e) => {
      e.preventDefault();
      const f = e.target;
      this.closeOrder(f.dataset.id, f.querySelector('[name=by]').value.trim(), f.querySelector('[name=note]').value.trim());
    });
  }

  show() {
    this.load();
    this.timer = setInterval(() => this.load(), 15_000);
  }

  hide() {
    clearInterval(this.timer);
  }

  async load() {
    const $ = (id) => this.el.querySelector(id);
    const names = await cameras().catch(() => new Map());
    await Promise.all([
      getJson(`/api/v1/maintenance/orders?state=${this.state}`)
        .then((orders) => {
          const open = orders.filter((o) => o.state === 'open');
          $('#mt-summary').textContent = `${open.length} open, ${open.filter((o) => o.overdue).length} overdue`;
          if (this.el.contains(document.activeElement) && document.activeElement.closest('#mt-orders form')) return;
          setHtml(
            $('#mt-orders'),
            orders.length
              ? html`<table><thead><tr><th>#</th><th>camera</th><th>cause</th><th>priority</th><th>crew</th><th>opened</th><th>due</th><th>state</th></tr></thead><tbody>
              ${orders
                .sort((a, b) => (a.state === 'open' ? 0 : 1) - (b.state === 'open' ? 0 : 1) || a.priority - b.priority || a.due_at_ms - b.due_at_ms)
                .map(
                  (o) => html`<tr class="${o.overdue && o.state === 'open' ? 'overdue' : ''}" data-order="${o.id}">
                    <td>${o.id}</td><td>${o.camera_name ?? o.camera_id}<div class="dim">${o.camera_id}</div></td>
                    <td>${o.cause}${o.reopen_count ? html` <span class="pill new">reopened ×${o.reopen_count}</span>` : ''}<div class="dim">${o.detail ?? ''}</div></td>
                    <td class="prio">P${o.priority} <span class="dim">${PRIORITY[o.priority] ?? ''}</span></td><td>${o.crew ?? '—'}</td>
                    <td>${fmtTime(o.opened_at_ms)}</td><td>${fmtTime(o.due_at_ms)}${o.overdue && o.state === 'open' ? ' (overdue)' : ''}</td>
                    <td>${o.state}${o.closed_by ? html`<div class="dim">by ${o.closed_by} ${fmtAgo(o.closed_at_ms)}</div>` : ''}
                      ${(o.notes ?? []).map((n) => html`<div class="dim">${fmtTime(n.at_ms)} ${n.author}: ${n.text}</div>`)}
                      ${o.state === 'open'
                        ? html`<form data-id="${o.id}"><input name="by" placeholder="crew / name" required size="8"> <input name="note" placeholder="what was done" required size="12"> <button>close</button></form>`
                        : ''}</td></tr>`,
                )}</tbody></table>`
              : html`<p class="na">No work orders.</p>`,
          );
        })
        .catch((e) => {
          $('#mt-summary').textContent = '';
          setHtml($('#mt-orders'), failure(e, 'work orders'));
        }),
      getJson('/api/v1/maintenance/quality')
        .then((q) => {
          const bad = q.filter((c) => c.faults.length);
          setHtml(
            $('#mt-quality'),
            bad.length
              ? html`<table><thead><tr><th>camera</th><th>faults</th><th>last sample</th></tr></thead><tbody>${bad.map(
                  (c) => html`<tr class="quality-fault" data-camera="${c.camera_id}"><td>${names.get(c.camera_id)?.name ?? c.camera_id}<div class="dim">${c.camera_id}</div></td>
                    <td>${c.faults.map((f) => html`<span class="fault">${f.replaceAll('_', ' ')}</span>`)}</td><td>${fmtAgo(c.last_sample_ms)}</td></tr>`,
                )}</tbody></table><p class="dim">${q.length} cameras sampled.</p>`
              : html`<p class="na">No quality fault among ${q.length} cameras sampled.</p>`,
          );
        })
        .catch((e) => setHtml($('#mt-quality'), failure(e, 'video quality'))),
    ]);
  }

  async closeOrder(id, by, note) {
    try {
      await postJson(`/api/v1/maintenance/orders/${id}/close`, { by, note });
      toast(`work order ${id} closed`);
      this.load();
    } catch (e) {
      toast(`work order ${id}: ${e.message}`);
    }
  }
}
