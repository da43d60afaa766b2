// Planning: coverage per grid cell at a DORI level, entrance-rule violations, ring leaks, the
// cameras worth replacing, and placement proposals (where the next cameras should go).

import { getJson, postJson, request } from './api.js';
import { LEVELS } from './map.js';
import { bar, failure, html, pct, setHtml } from './util.js';

export class PlanningView {
  constructor(el) {
    this.el = el;
    this.level = 'observe';
    this.states = 'online';
    setHtml(
      el,
      html`<div class="toolbar"><h2>Planning</h2>
        <label>DORI level <select id="pl-level">${LEVELS.map((l) => html`<option ${l === 'observe' ? 'selected' : ''}>${l}</option>`)}</select></label>
        <label>cameras <select id="pl-states"><option value="online">online now</option><option value="all">all in service (plan)</option></select></label>
      </div>
      <div class="kpis" id="pl-kpis"></div>
      <div class="grid2">
        <div class="panel wide"><h3>Coverage per grid cell</h3><div id="pl-cells"></div></div>
        <div class="panel"><h3>Entrance violations</h3><div id="pl-entrances"></div></div>
        <div class="panel"><h3>Ring leaks</h3><div id="pl-rings"></div></div>
        <div class="panel"><h3>Replacement candidates</h3><div id="pl-repl"></div></div>
        <div class="panel wide" id="pl-proposals"><h3>Proposals</h3>
          <div class="toolbar">
            <label>budget <input id="pp-budget" type="number" min="1" max="5000" value="10" style="width:6em"></label>
            <label>level <select id="pp-level">${LEVELS.map((l) => html`<option ${l === 'observe' ? 'selected' : ''}>${l}</option>`)}</select></label>
            <button id="pp-go">propose</button>
            <span id="pp-links"></span>
          </div>
          <div id="pp-out"><p class="na">Proposes positions, bearings and lenses for new cameras that add the most road coverage (ring leaks and entrance-rule gaps first), planning over every camera in service.</p></div>
        </div>
      </div>`,
    );
    el.querySelector('#pl-level').addEventListener('change', (e) => {
      this.level = e.target.value;
      this.load();
    });
    el.querySelector('#pl-states').addEventListener('change', (e) => {
      this.states = e.target.value;
      this.load();
    });
    el.querySelector('#pp-go').addEventListener('click', () => this.propose());
  }

  /** The proposal request the panel's inputs describe. */
  proposalBody() {
    const $ = (id) => this.el.querySelector(id);
    return { budget: Number($('#pp-budget').value), level: $('#pp-level').value, states: 'all' };
  }

  async propose() {
    const $ = (id) => this.el.querySelector(id);
    const body = this.proposalBody();
    setHtml($('#pp-out'), html`<p class="na">computing ${body.budget} proposals…</p>`);
    setHtml($('#pp-links'), '');
    try {
      const r = await postJson('/api/v1/planning/proposals', body);
      const ringsClosed = (r.rings ?? []).reduce((n, x) => n + (x.leaks_before - x.leaks_after), 0);
      const ent = r.entrances;
      setHtml(
        $('#pp-out'),
        html`<div class="kpis">
          <div class="kpi"><b>${pct(r.before.covered_pct)} → ${pct(r.after.covered_pct)}</b><span>road covered at ${r.query.level}</span></div>
          <div class="kpi"><b>+${(r.added_m / 1000).toFixed(2)} km</b><span>road added</span></div>
          <div class="kpi"><b>${ringsClosed}</b><span>ring leaks closed</span></div>
          <div class="kpi"><b>${ent ? `${ent.compliant_before} → ${ent.compliant_after}` : '—'}</b><span>entrances compliant</span></div>
          <div class="kpi"><b>${r.cells.length}</b><span>cells improved</span></div>
        </div>
        <table class="proposals"><thead><tr><th class="num">rank</th><th>position</th><th class="num">bearing</th><th>camera</th><th class="num">added</th><th>roads</th></tr></thead><tbody>
        ${r.proposals.map(
          (p) => html`<tr data-proposal="${p.id}"><td class="num">${p.rank}</td><td>${p.lat.toFixed(6)}, ${p.lon.toFixed(6)}</td>
            <td class="num">${Math.round(p.bearing_deg)}°</td><td>${p.camera_type}${p.kind === 'checkpoint' ? ' (checkpoint)' : ''}</td>
            <td class="num">${Math.round(p.added_m)} m</td><td>${p.roads.join(', ')}${p.closes_leaks.length ? html` <span class="dim">closes ${p.closes_leaks.join(', ')}</span>` : ''}</td></tr>`,
        )}</tbody></table>`,
      );
      const links = $('#pp-links');
      setHtml(links, html`<button data-format="geojson">GeoJSON</button> <button data-format="csv">CSV</button>`);
      links.querySelectorAll('button').forEach((b) => b.addEventListener('click', () => this.download(b.dataset.format, body)));
    } catch (e) {
      setHtml($('#pp-out'), failure(e, 'proposals'));
    }
  }

  /** The same proposals as a file (the request needs the token, so not a plain link). */
  async download(format, body) {
    try {
      const r = await request(`/api/v1/planning/proposals?format=${format}`, { method: 'POST', body });
      const url = URL.createObjectURL(await r.blob());
      const a = document.createElement('a');
      a.href = url;
      a.download = `proposals.${format === 'csv' ? 'csv' : 'geojson'}`;
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10_000);
    } catch (e) {
      setHtml(this.el.querySelector('#pp-out'), failure(e, 'download'));
    }
  }

  show() {
    this.load();
  }

  hide() {}

  async load() {
    const q = `level=${this.level}&states=${this.states}`;
    const $ = (id) => this.el.querySelector(id);
    await Promise.all([
      getJson(`/api/v1/coverage/summary?${q}`)
        .then((s) =>
          setHtml(
            $('#pl-kpis'),
            html`<div class="kpi"><b>${pct(s.overall.covered_pct)}</b><span>road covered at ${s.query.level}</span></div>
            <div class="kpi"><b>${(s.overall.uncovered_m / 1000).toFixed(2)} km</b><span>road not covered</span></div>
            <div class="kpi"><b>${s.cameras}</b><span>cameras counted</span></div>
            <div class="kpi"><b>${s.cells}</b><span>grid cells</span></div>
            <div class="kpi"><b>${s.entrances}</b><span>entrances</span></div>`,
          ),
        )
        .catch((e) => setHtml($('#pl-kpis'), failure(e, 'coverage'))),
      getJson(`/api/v1/coverage/cells?${q}`)
        .then((cells) =>
          setHtml(
            $('#pl-cells'),
            html`<table><thead><tr><th>cell</th><th>level</th><th class="num">road</th><th>covered</th><th class="num">cameras</th><th class="num">entrances ok</th></tr></thead><tbody>
            ${cells.map(
              (c) => html`<tr data-cell="${c.id}"><td>${c.name}<div class="dim">${c.id}</div></td><td>${c.level}</td>
                <td class="num">${c.has_outline ? `${Math.round(c.roads.total_m)} m` : 'no outline'}</td>
                <td>${c.has_outline ? html`${bar(c.roads.covered_pct)} ${pct(c.roads.covered_pct)}` : '—'}</td>
                <td class="num">${c.cameras.total}</td><td class="num">${c.entrances ? `${c.entrances_compliant}/${c.entrances}` : '—'}</td></tr>`,
            )}</tbody></table>`,
          ),
        )
        .catch((e) => setHtml($('#pl-cells'), failure(e, 'coverage per cell'))),
      getJson('/api/v1/coverage/entrances?violations_only=true')
        .then((list) =>
          setHtml(
            $('#pl-entrances'),
            list.length
              ? html`<table><thead><tr><th>entrance</th><th>problems</th><th>cameras</th></tr></thead><tbody>${list.map(
                  (e) => html`<tr class="violation"><td>${e.name}<div class="dim">${e.road ?? ''}</div></td><td>${e.problems.join('; ')}</td>
                    <td>${e.cameras.map((c) => html`<div class="${c.qualifies ? '' : 'dim'}">${c.id} (${c.resolution}, ${c.status})</div>`)}</td></tr>`,
                )}</tbody></table>`
              : html`<p class="na">Every entrance has two HD cameras covering 50 m each way.</p>`,
          ),
        )
        .catch((e) => setHtml($('#pl-entrances'), failure(e, 'entrances'))),
      getJson('/api/v1/rings')
        .then((rings) => {
          const leaks = rings.flatMap((r) => r.leaks.map((l) => ({ ...l, ring: r.name })));
          setHtml(
            $('#pl-rings'),
            html`${rings.map((r) => html`<div><b>${r.name}</b>: ${r.open ? 'open' : 'closed'}, ${r.members.length} checkpoints, ${r.down.length} down, ${r.crossings} road crossings</div>`)}
            ${leaks.length
              ? html`<table><thead><tr><th>ring</th><th>road</th><th>closed by</th></tr></thead><tbody>${leaks.map(
                  (l) => html`<tr class="leak-row"><td>${l.ring}</td><td>${l.road_name ?? l.road_id} <span class="dim">${l.class}</span></td>
                    <td>${l.guarded_when_up_by.length ? l.guarded_when_up_by.join(', ') : 'no checkpoint: a gap in the design'}</td></tr>`,
                )}</tbody></table>`
              : html`<p class="na">No road leaks through a ring.</p>`}`,
          );
        })
        .catch((e) => setHtml($('#pl-rings'), failure(e, 'rings'))),
      getJson('/api/v1/maintenance/replacements')
        .then((list) =>
          setHtml(
            $('#pl-repl'),
            list.length
              ? html`<table><thead><tr><th>camera</th><th>resolution</th><th class="num">coverage lost</th></tr></thead><tbody>${list.map(
                  (r) => html`<tr><td>${r.name}<div class="dim">${r.camera_id}</div></td><td>${r.width_px}×${r.height_px}</td><td class="num">${Math.round(r.lost_m)} m</td></tr>`,
                )}</tbody></table>`
              : html`<p class="na">No obsolete camera to replace.</p>`,
          ),
        )
        .catch((e) => setHtml($('#pl-repl'), failure(e, 'replacement candidates'))),
    ]);
  }
}
