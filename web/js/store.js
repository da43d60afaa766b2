// The alerts the dashboard knows, kept current by the live stream; views subscribe.

import { getJson } from './api.js';

const alerts = new Map();
const listeners = new Set();

export function allAlerts() {
  return [...alerts.values()];
}

export function getAlert(id) {
  return alerts.get(id);
}

export function onAlerts(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

function emit(changed, change) {
  for (const fn of listeners) {
    try {
      fn(changed, change);
    } catch (e) {
      console.error(e);
    }
  }
}

/** Puts a newer version of an alert into the store (older versions are ignored). */
export function upsert(a, change = 'loaded') {
  const old = alerts.get(a.id);
  if (old && old.updated_at_ms > a.updated_at_ms) return;
  alerts.set(a.id, a);
  emit(a, old ? change : change === 'loaded' ? 'loaded' : 'raised');
}

/** The newest alerts (first page) and every open one. */
export async function loadAlerts() {
  const [recent, open] = await Promise.all([
    getJson('/api/v1/alerts?limit=300'),
    getJson('/api/v1/alerts?status=new,acknowledged&limit=500'),
  ]);
  for (const a of [...recent.items, ...open.items]) upsert(a, 'loaded');
}

/** A change from the live stream. */
export function applyFeed(ev) {
  if (ev?.alert?.id === undefined) return;
  upsert(ev.alert, ev.change);
}

// The camera registry, cached for a while (names and positions change rarely).
let camCache = null;
let camAt = 0;
export async function cameras(force = false) {
  if (!force && camCache && Date.now() - camAt < 30_000) return camCache;
  const out = [];
  let cursor = null;
  do {
    const page = await getJson(`/api/v1/cameras?limit=1000${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
    out.push(...page.items);
    cursor = page.next_cursor;
  } while (cursor);
  camCache = new Map(out.map((c) => [c.id, c]));
  camAt = Date.now();
  return camCache;
}
