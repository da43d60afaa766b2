// Planning: coverage per grid cell at a DORI level, entrance-rule violations, ring leaks, and
// the cameras worth replacing.

import { getJson } from './api.js';
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
