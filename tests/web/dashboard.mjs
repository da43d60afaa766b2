// The dashboard in headless Chromium against a running demo city (started by tests/dashboard.rs).
// Environment: TW_BASE (http://127.0.0.1:PORT), TW_TOKEN (an admin token), TW_SHOTS (folder for
// the screenshots), CHROMIUM (default /usr/bin/chromium). Exits non-zero on the first failure.
// Every wait is on a condition with a deadline; nothing sleeps to synchronise.

import { chromium } from 'playwright-core';
import fs from 'node:fs';
import path from 'node:path';

const base = need('TW_BASE');
const token = need('TW_TOKEN');
const shots = need('TW_SHOTS');
fs.mkdirSync(shots, { recursive: true });

function need(name) {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
}

const api = async (p) => {
  const r = await fetch(base + p, { headers: { Authorization: `Bearer ${token}` } });
  if (!r.ok) throw new Error(`${p}: ${r.status} ${await r.text()}`);
  return r.json();
};

const post = async (p, body) => {
  const r = await fetch(base + p, {
    method: 'POST',
    headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  });
  if (!r.ok) throw new Error(`${p}: ${r.status} ${await r.text()}`);
  return r.json();
};

const step = (msg) => console.log(`[${new Date().toISOString().slice(11, 19)}] ${msg}`);

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const errors = [];
try {
  const page = await browser.newPage({ viewport: { width: 1920, height: 1080 } });
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('dialog', (d) => d.accept('checked by the browser test'));
  const shot = async (name) => {
    await page.screenshot({ path: path.join(shots, `${name}.png`) });
    step(`screenshot ${name}.png`);
  };

  // --- sign in ---------------------------------------------------------------------------------
  await page.goto(base + '/');
  await page.waitForSelector('#login-token', { state: 'visible', timeout: 15_000 });
  await page.fill('#login-token', 'tw_not_a_token');
  await page.click('#login-form button');
  await page.waitForFunction(() => document.getElementById('login-error').textContent.includes('unknown'), null, { timeout: 10_000 });
  await page.fill('#login-token', token);
  await page.click('#login-form button');
  await page.waitForSelector('#app:not([hidden])', { timeout: 10_000 });
  await page.waitForSelector('#stream-state[data-state=live]', { timeout: 15_000 });
  const stored = await page.evaluate(() => Object.values(sessionStorage));
  if (!stored.includes(token)) throw new Error('the token is not kept in sessionStorage');
  step('signed in; live stream connected');

  // --- Alerts: a watchlist hit from the running demo arrives live --------------------------------
  // Remember the page (a reload would lose this) and when each alert row first showed.
  await page.evaluate(() => {
    window.__sameDocument = true;
    window.__seen = {};
    const note = () => {
      for (const tr of document.querySelectorAll('#al-rows tr[data-id]')) window.__seen[tr.dataset.id] ??= Date.now();
    };
    note();
    new MutationObserver(note).observe(document.getElementById('al-rows'), { childList: true, subtree: true });
  });
  const before = new Set(
    (await api('/api/v1/alerts?kind=watchlist_hit&limit=500')).items.map((a) => String(a.id)),
  );
  step(`waiting for a new watchlist hit (${before.size} already raised)`);
  const hitId = await (
    await page.waitForFunction(
      (old) => {
        const tr = [...document.querySelectorAll('#al-rows tr[data-kind=watchlist_hit]')].find((t) => !old.includes(t.dataset.id));
        return tr ? tr.dataset.id : null;
      },
      [...before],
      { timeout: 180_000, polling: 200 },
    )
  ).jsonValue();
  const seenAt = await page.evaluate((id) => window.__seen[id], hitId);
  const hit = (await api(`/api/v1/alerts/${hitId}`)).alert;
  const latency = seenAt - hit.created_at_ms;
  step(`watchlist hit #${hitId} (${hit.title}) shown ${latency} ms after it was raised`);
  if (!(latency < 10_000)) throw new Error(`the hit took ${latency} ms to show`);
  if (!(await page.evaluate(() => window.__sameDocument === true))) throw new Error('the page reloaded');

  // Select it and acknowledge with the keyboard.
  await page.click(`#al-rows tr[data-id="${hitId}"]`);
  await page.waitForSelector('#ad-ack:not([disabled])', { timeout: 5_000 });
  await page.keyboard.press('a');
  await page.waitForSelector(`#al-rows tr[data-id="${hitId}"][data-status=acknowledged]`, { timeout: 10_000 });
  await page.waitForFunction(() => document.getElementById('ad-status')?.textContent === 'acknowledged', null, { timeout: 5_000 });
  const acked = (await api(`/api/v1/alerts/${hitId}`)).alert;
  if (acked.status !== 'acknowledged' || acked.ack_by !== 'demo-admin') throw new Error(`after a: ${JSON.stringify(acked)}`);
  step('acknowledged with the a key');
  // The evidence: the plate crop and the context picture, decoded.
  await page.waitForFunction(
    () => ['img.plate', 'img.context'].every((s) => document.querySelector(`#ad-evidence ${s}`)?.naturalWidth > 0),
    null,
    { timeout: 15_000 },
  );
  await page.waitForFunction(() => document.querySelectorAll('#ad-seeing figure').length > 0, null, { timeout: 10_000 });
  step('plate crop, context picture and the cameras that see the place are shown');
  await shot('alerts');

  // --- Cameras: a snapshot of a streaming camera --------------------------------------------------
  await page.evaluate(() => (location.hash = 'cameras'));
  await page.waitForFunction(
    () => [...document.querySelectorAll('.tile[data-state=streaming] .shot img')].some((i) => !i.hidden && i.naturalWidth > 0),
    null,
    { timeout: 30_000 },
  );
  // Then every streaming camera's picture (they load four at a time).
  await page.waitForFunction(
    () => [...document.querySelectorAll('.tile[data-state=streaming] .shot img')].every((i) => !i.hidden && i.naturalWidth > 0),
    null,
    { timeout: 60_000 },
  );
  const tiles = await page.locator('.tile').count();
  const streaming = await page.locator('.tile[data-state=streaming]').count();
  step(`camera wall: ${tiles} tiles, the snapshots of all ${streaming} streaming cameras decoded`);
  await shot('cameras');

  // --- Map: every camera and ring --------------------------------------------------------------
  const camLayer = await api('/api/v1/geo/layers/cameras');
  const wantCams = camLayer.features.filter((f) => f.geometry.type === 'Point').length;
  const wantRings = (await api('/api/v1/geo/layers/rings')).features.length;
  await page.evaluate(() => (location.hash = 'map'));
  await page.waitForFunction(
    ([c, r]) => document.querySelectorAll('#mv-box svg .cam').length === c && document.querySelectorAll('#mv-box svg .ring').length === r,
    [wantCams, wantRings],
    { timeout: 20_000 },
  );
  const fov = await page.locator('#mv-box svg .fov').count();
  const roads = await page.locator('#mv-box svg .road').count();
  const cells = await page.locator('#mv-box svg .cell').count();
  if (!(fov > 0 && roads > 0 && cells > 0)) throw new Error(`map: ${fov} fields of view, ${roads} roads, ${cells} cells`);
  step(`map: ${wantCams} cameras, ${wantRings} rings, ${fov} fields of view, ${roads} roads, ${cells} cells`);
  // The demo's patrols drive and walk its roads, reporting every 5 s: every unit with a position is on the map.
  const placed = (await api('/api/v1/units')).filter((u) => u.position).length;
  await page.waitForFunction((n) => n > 0 && document.querySelectorAll('#mv-box svg .unit').length >= n, placed, { timeout: 20_000 });
  step(`map: ${placed} patrol units shown`);
  await shot('map');

  // --- Dispatch: the demo's alarm, its units by time by road, one sent, its status on the map -----
  let alarmId;
  for (const end = Date.now() + 120_000; !alarmId; ) {
    alarmId = (await api('/api/v1/alerts?kind=alarm&status=new,acknowledged&limit=1')).items[0]?.id;
    if (!alarmId && Date.now() > end) throw new Error('no open alarm from the demo within 2 minutes');
    if (!alarmId) await new Promise((r) => setTimeout(r, 250));
  }
  await page.evaluate(() => (location.hash = 'alerts'));
  await page.click(`#al-rows tr[data-id="${alarmId}"]`);
  await page.waitForFunction(() => document.querySelectorAll('#ad-units tr[data-unit]').length > 0, null, { timeout: 15_000 });
  const listed = await page.$$eval('#ad-units tr[data-unit]', (trs) => trs.map((t) => [t.dataset.unit, t.querySelector('.eta').textContent]));
  const plan = await api(`/api/v1/alerts/${alarmId}/dispatch?k=6`);
  const planned = new Set(plan.units.map((u) => u.unit.id));
  if (!listed.every(([id, eta]) => /^\d+:\d\d$/.test(eta) && (planned.has(id) || plan.units.length === 6))) {
    throw new Error(`dispatch panel ${JSON.stringify(listed)} against the API's ${JSON.stringify([...planned])}`);
  }
  const [sendId, sendEta] = listed[0];
  await page.click(`#ad-units button.send[data-unit="${sendId}"]`);
  for (const end = Date.now() + 10_000; ; ) {
    const u = (await api('/api/v1/units')).find((x) => x.id === sendId);
    if (u.status === 'dispatched' && u.alert_id === alarmId) break;
    if (Date.now() > end) throw new Error(`unit ${sendId} not dispatched from the panel: ${JSON.stringify(u)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  const trail = (await api(`/api/v1/alerts/${alarmId}`)).audit.map((x) => x.action);
  if (!trail.includes('dispatched')) throw new Error(`alarm ${alarmId}'s trail has no dispatch: ${trail}`);
  step(`dispatch: alarm #${alarmId}, ${listed.length} units listed with ETAs, ${sendId} (ETA ${sendEta}) sent`);
  await shot('dispatch');
  await page.evaluate(() => (location.hash = 'map'));
  await page.waitForSelector(`#mv-box svg .unit[data-unit="${sendId}"][data-status=dispatched]`, { timeout: 15_000 });
  step(`map: ${sendId} shown dispatched`);
  // A click on the unit shows its track: the line holds its positions of the last hour.
  const trackLen = (await api(`/api/v1/units/${sendId}/track?limit=5000`)).length;
  await page.click(`#mv-box svg .unit[data-unit="${sendId}"]`);
  await page.waitForFunction(
    ([id, n]) => Number(document.querySelector(`#mv-box svg polyline.track[data-unit="${id}"]`)?.dataset.points ?? 0) >= n,
    [sendId, Math.max(trackLen, 2)],
    { timeout: 10_000 },
  );
  step(`map: ${sendId}'s track shown (${trackLen}+ positions)`);

  // --- Duty desks: the alarm in the queue of a desk it reached, not in another's -----------------
  const desks = (await api('/api/v1/desks')).desks;
  let mine;
  let other;
  for (const d of desks) {
    const held = (await api(`/api/v1/alerts?desk=${d.id}&status=new,acknowledged&limit=500`)).items.some((a) => a.id === alarmId);
    if (held) mine ??= d;
    else other ??= d;
  }
  if (!mine || !other) throw new Error(`alarm ${alarmId}: no desk holds it, or every desk does: ${JSON.stringify(desks)}`);
  await page.evaluate(() => (location.hash = 'alerts'));
  await page.waitForSelector(`#al-desk option[value="${mine.id}"]`, { state: 'attached', timeout: 10_000 });
  await page.selectOption('#al-desk', mine.id);
  await page.waitForSelector(`#al-rows tr[data-id="${alarmId}"]`, { timeout: 10_000 });
  await page.selectOption('#al-desk', other.id);
  await page.waitForSelector(`#al-rows tr[data-id="${alarmId}"]`, { state: 'detached', timeout: 10_000 });
  step(`desks: alarm #${alarmId} in the queue of ${mine.name}, not of ${other.name}`);
  await page.selectOption('#al-desk', mine.id);
  await page.waitForSelector(`#al-rows tr[data-id="${alarmId}"]`, { timeout: 10_000 });
  await shot('desk');
  await page.selectOption('#al-desk', '');

  // --- Planning, Maintenance ---------------------------------------------------------------------
  await page.evaluate(() => (location.hash = 'planning'));
  await page.waitForFunction(() => document.querySelectorAll('#pl-cells tr[data-cell]').length > 0 && document.querySelector('#pl-kpis .kpi'), null, { timeout: 20_000 });
  await page.waitForFunction(() => document.querySelector('#pl-repl').textContent.trim().length > 0, null, { timeout: 20_000 });
  // Placement proposals from the panel: the rows are the API's answer for the same request.
  await page.fill('#pp-budget', '5');
  await page.click('#pp-go');
  await page.waitForFunction(() => document.querySelectorAll('#pp-out tr[data-proposal]').length > 0, null, { timeout: 60_000 });
  const shown = await page.locator('#pp-out tr[data-proposal]').count();
  const want = await post('/api/v1/planning/proposals', { budget: 5, level: 'observe', states: 'all' });
  if (shown !== want.proposals.length || shown === 0 || shown > 5) throw new Error(`proposals: ${shown} rows shown, the API proposes ${want.proposals.length}`);
  step(`planning: ${shown} proposals shown, +${Math.round(want.added_m)} m of road`);
  await shot('planning');
  // A crew's work order (opened through the API as a patrol would), shown and closed in the view.
  const firstCam = (await api('/api/v1/cameras?limit=1')).items[0].id;
  const order = await post('/api/v1/maintenance/orders', { camera_id: firstCam, cause: 'vandalism', detail: 'housing cracked (browser test)' });
  await page.evaluate(() => (location.hash = 'maintenance'));
  await page.waitForFunction(
    () => document.querySelector('#mt-orders').textContent.trim() && document.querySelector('#mt-quality').textContent.trim(),
    null,
    { timeout: 20_000 },
  );
  const row = page.locator(`#mt-orders tr[data-order="${order.id}"]`);
  await row.waitFor({ timeout: 20_000 });
  step(`maintenance: order ${order.id} (${order.cause}, P${order.priority}, crew ${order.crew ?? '-'}) listed`);
  // The cluster panel: on the embedded default this node writes alerts, runs every camera, and
  // lists each consumer with its position.
  await page.waitForFunction(() => document.querySelector('#mt-cluster #mt-writer'), null, { timeout: 20_000 });
  const writer = await page.locator('#mt-writer').textContent();
  if (writer !== 'embedded') throw new Error(`cluster panel: the alert writer shown is ${writer}, expected embedded`);
  const consumers = await page.locator('#mt-cluster tr[data-consumer]').count();
  if (!(await page.locator('#mt-cluster tr[data-consumer="alerts.urgent"]').count())) {
    throw new Error(`cluster panel: no alerts.urgent consumer among ${consumers}`);
  }
  const log = await page.locator('#mt-log').getAttribute('data-log');
  if (log !== 'registry') throw new Error(`cluster panel: the event log is shown on ${log}, expected the registry (no NATS)`);
  step(`maintenance: cluster panel (alert writer ${writer}, ${consumers} consumers, event log in the ${log})`);
  await shot('maintenance');
  await row.locator('input[name=by]').fill('crew test');
  await row.locator('input[name=note]').fill('housing replaced');
  await row.locator('button').click();
  const deadline = Date.now() + 10_000;
  for (;;) {
    const o = await api(`/api/v1/maintenance/orders/${order.id}`);
    if (o.state === 'closed' && o.closed_by === 'crew test') break;
    if (Date.now() > deadline) throw new Error(`order ${order.id} not closed from the view: ${JSON.stringify(o)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  step(`maintenance: order ${order.id} closed from the view`);

  // --- Interception: start one by clicking inside the inner ring -------------------------------------
  await page.evaluate(() => (location.hash = 'interception'));
  const ring = page.locator('#ic-box svg .ring[data-id=inner]');
  await ring.waitFor({ timeout: 20_000 });
  const box = await ring.boundingBox();
  await page.mouse.click(box.x + box.width / 2, box.y + box.height / 2);
  await page.waitForSelector('#ic-start:not([disabled])', { timeout: 5_000 });
  await page.click('#ic-start');
  await page.waitForSelector('#ic-title', { timeout: 10_000 });
  const icId = await page.getAttribute('#ic-title', 'data-id');
  const ic = await api(`/api/v1/interceptions/${icId}`);
  const armed = ic.plan.reduce((n, r) => n + r.checkpoints.length, 0);
  const rows = await page.locator('#ic-plan .armed-checkpoint').count();
  const marks = await page.locator('#ic-box svg [data-armed]').count();
  if (!(armed > 0 && rows === armed && marks === armed)) throw new Error(`interception ${icId}: ${armed} armed, ${rows} rows, ${marks} marks`);
  step(`interception #${icId}: ${armed} checkpoints armed in ${ic.plan.length} rings, shown with their ETAs`);
  // The units proposed to the checkpoints, as the API proposes them.
  await page.waitForFunction(() => [...document.querySelectorAll('#ic-plan td.ic-unit')].every((td) => td.textContent !== '…'), null, { timeout: 15_000 });
  // The demo's units move between two reads: the same number proposed, each a different
  // available unit, to a different checkpoint.
  const cover = await api(`/api/v1/interceptions/${icId}/units`);
  const proposed = cover.checkpoints.filter((c) => c.unit).map((c) => c.unit.unit.id);
  const shownUnits = await page.$$eval('#ic-plan tr.armed-checkpoint[data-unit]', (trs) => trs.map((t) => t.dataset.unit));
  const available = new Set((await api('/api/v1/units')).filter((u) => u.status === 'available').map((u) => u.id));
  if (!proposed.length || shownUnits.length !== proposed.length || new Set(shownUnits).size !== shownUnits.length || !shownUnits.every((u) => available.has(u))) {
    throw new Error(`interception units: shown ${JSON.stringify(shownUnits)}, proposed ${JSON.stringify(proposed)}`);
  }
  step(`interception: ${proposed.length} units proposed to checkpoints, shown as the API proposes`);
  // Vehicles keep passing the demo's traffic checkpoints: a crossing arrives live.
  await page.waitForSelector('#ic-crossings .crossing', { timeout: 90_000 });
  step('a ring crossing arrived live');
  await shot('interception');

  // --- Laptop layout -------------------------------------------------------------------------------
  await page.setViewportSize({ width: 1366, height: 768 });
  await page.evaluate(() => (location.hash = 'alerts'));
  await page.waitForSelector('#al-rows tr[data-id]', { timeout: 10_000 });
  await shot('alerts-laptop');

  if (errors.length) throw new Error(`errors in the page: ${errors.join('; ')}`);
  step('all checks passed');
} finally {
  await browser.close();
}
