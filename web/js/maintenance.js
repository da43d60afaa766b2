// Maintenance: work orders (open, closed, overdue), the video-quality faults now, and the cluster
// (workers and their cameras, the alert writer, each consumer's lag).

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
      </div>
      <div class="panel below"><h3>Cluster</h3><div id="mt-cluster"></div></div>`,
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
      getJson('/api/v1/cluster')
        .then((c) => setHtml($('#mt-cluster'), clusterHtml(c)))
        .catch((e) => setHtml($('#mt-cluster'), failure(e, 'the cluster'))),
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

/** Workers with their cameras and load, the alert writer, and how far behind each consumer is. */
function clusterHtml(c) {
  const writer = c.alert_writer
    ? html`alerts written by <b id="mt-writer">${c.alert_writer.node}</b> (epoch ${c.alert_writer.epoch})${c.this_node.active ? ' — this node' : html`; this node (${c.this_node.node}) stands by`}`
    : html`<span class="overdue" id="mt-writer">no node writes alerts now</span>`;
  const workers = c.workers.length
    ? html`<table><thead><tr><th>worker</th><th>cameras</th><th>load</th><th>cores</th><th>CPU</th><th>heartbeat</th></tr></thead><tbody>${c.workers.map(
        (w) => html`<tr data-worker="${w.id}"><td>${w.id}<div class="dim">${w.profiles.join(', ')}</div></td><td>${w.cameras} / ${w.max_cameras}</td>
          <td>${(w.weight / 1000).toFixed(2)} cores</td><td>${w.cores}</td><td>${(w.cpu_share * 100).toFixed(0)} %</td><td>${fmtAgo(w.heartbeat_ms)}</td></tr>`,
      )}</tbody></table>`
    : html`<p class="na">No worker: this node runs every camera itself.</p>`;
  const unheld = c.workers.length && c.cameras_unheld
    ? html`<p class="overdue" id="mt-unheld">${c.cameras_unheld} cameras held by no worker</p>`
    : '';
  const consumers = html`<table><thead><tr><th>consumer</th><th>reads</th><th>position</th><th>behind</th></tr></thead><tbody>${c.consumers.map(
    (k) => html`<tr data-consumer="${k.consumer}" class="${k.behind > 1000 ? 'overdue' : ''}"><td>${k.consumer}</td><td>${k.reads.replace('_', ' ')}</td><td>${k.position}</td><td>${k.behind}</td></tr>`,
  )}</tbody></table>`;
  return html`<p>${writer}</p>${workers}${unheld}${logHtml(c)}<h4>Consumers</h4>${consumers}`;
}

/** Where the event log is carried: the registry alone, or NATS JetStream (relay and reads). */
function logHtml(c) {
  const js = c.jetstream;
  if (!js) return html`<p id="mt-log" data-log="registry">Event log: in the registry (no NATS on this node).</p>`;
  const head = c.consumers.filter((k) => k.reads === 'events').reduce((m, k) => Math.max(m, k.head), 0);
  const behind = Math.max(0, head - js.relayed_position);
  const relay = js.relay_running
    ? html`relayed by this node to position ${js.relayed_position} of ${head}${behind ? html`, <span class="overdue">${behind} behind</span>` : ''}`
    : html`relayed by the node that writes alerts`;
  const failures = js.relay_failures ? html`; <span class="overdue">${js.relay_failures} relay failures</span>` : '';
  const gaps = js.gaps ? html`; ${js.gaps} reads that did not follow (served from the registry)` : '';
  return html`<p id="mt-log" data-log="jetstream">Event log: NATS JetStream stream <b>${js.stream}</b>, ${relay}${failures}.
    Reads on this node: ${js.reads_jetstream} from JetStream, ${js.reads_registry} from the registry${gaps}; ${js.duplicates_skipped} duplicates skipped.</p>`;
}
