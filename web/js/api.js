// Talking to the tianwang API: every request carries `Authorization: Bearer <token>`; the token
// lives in sessionStorage only (gone when the tab closes) and is never put into a URL, so it can
// end up in no log, history or Referer. The live streams (alerts, units) are read with fetch()
// streaming, which can send the header (EventSource cannot).

const KEY = 'tianwang.token';

export function token() {
  return sessionStorage.getItem(KEY);
}

export function setToken(t) {
  if (t) sessionStorage.setItem(KEY, t);
  else sessionStorage.removeItem(KEY);
}

export class ApiError extends Error {
  constructor(status, kind, message) {
    super(message);
    this.status = status;
    this.kind = kind;
  }
}

function headers(extra = {}) {
  return { Authorization: `Bearer ${token() ?? ''}`, ...extra };
}

export async function request(path, { method = 'GET', body, signal } = {}) {
  const h = headers(body === undefined ? {} : { 'Content-Type': 'application/json' });
  const r = await fetch(path, {
    method,
    headers: h,
    body: body === undefined ? undefined : JSON.stringify(body),
    signal,
    cache: 'no-store',
  });
  if (r.status === 401) window.dispatchEvent(new CustomEvent('tw-unauthorized'));
  if (!r.ok) {
    let kind = 'http';
    let message = `${r.status} ${r.statusText}`;
    try {
      const e = await r.json();
      kind = e?.error?.kind ?? kind;
      message = e?.error?.message ?? message;
    } catch {
      /* not JSON */
    }
    throw new ApiError(r.status, kind, message);
  }
  return r;
}

export async function getJson(path, opts) {
  return (await request(path, opts)).json();
}

export async function postJson(path, body = {}) {
  return (await request(path, { method: 'POST', body })).json();
}

/** An image fetched with the header, as an object URL (revoke it when replaced). */
export async function imageUrl(path, signal) {
  const r = await request(path, { signal });
  return URL.createObjectURL(await r.blob());
}

/** Checks a token without storing it. */
export async function checkToken(t) {
  const r = await fetch('/api/v1/alerts?limit=1', { headers: { Authorization: `Bearer ${t}` }, cache: 'no-store' });
  if (r.status === 401) return 'unknown or revoked token';
  if (r.status === 429) return 'too many failed attempts from this address; wait a minute';
  if (!r.ok && r.status !== 403) return `the server answered ${r.status}`;
  return null;
}

const sleep = (ms) => new Promise((res) => setTimeout(res, ms));

/**
 * Follows `/api/v1/alerts/stream` (Server-Sent Events) with fetch streaming. After a dropped
 * connection it reconnects with `Last-Event-ID`, so the server replays every change missed.
 * `onEvent(payload)` gets `{seq, change, at_ms, alert}`; `onState('live'|'reconnecting')`.
 */
export function alertStream({ onEvent, onState }) {
  return eventStream('/api/v1/alerts/stream', { resume: true, onEvent, onState });
}

/**
 * Follows `/api/v1/units/stream`: `onEvent(change)` gets `{full, units, gone, at_ms}` (a
 * `full` change holds every unit; the first after each connection is one). A role that may not
 * read units gets `onState('forbidden')` and the stream stops.
 */
export function unitStream({ onEvent, onState = () => {} }) {
  return eventStream('/api/v1/units/stream', { resume: false, onEvent, onState });
}

function eventStream(path, { resume, onEvent, onState }) {
  let last = null;
  let stopped = false;
  let ctrl = null;
  const run = async () => {
    let delay = 500;
    while (!stopped) {
      ctrl = new AbortController();
      try {
        const h = headers({ Accept: 'text/event-stream' });
        if (resume && last !== null) h['Last-Event-ID'] = String(last);
        const r = await fetch(path, { headers: h, signal: ctrl.signal, cache: 'no-store' });
        if (r.status === 401) {
          window.dispatchEvent(new CustomEvent('tw-unauthorized'));
          return;
        }
        if (r.status === 403 && !resume) {
          onState('forbidden');
          return;
        }
        if (!r.ok) throw new Error(`stream: ${r.status}`);
        onState('live');
        delay = 500;
        const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
        let buf = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buf += value;
          buf = buf.replace(/\r\n/g, '\n');
          let i;
          while ((i = buf.indexOf('\n\n')) >= 0) {
            const block = buf.slice(0, i);
            buf = buf.slice(i + 2);
            const ev = parseEvent(block);
            if (ev.id !== null && /^\d+$/.test(ev.id)) last = Number(ev.id);
            if (ev.data !== null) {
              try {
                onEvent(JSON.parse(ev.data));
              } catch (e) {
                console.error(`${path}: bad event`, e);
              }
            }
          }
        }
      } catch (e) {
        if (stopped) return;
        console.warn(`${path} dropped`, e?.message ?? e);
      }
      if (stopped) return;
      onState('reconnecting');
      await sleep(delay);
      delay = Math.min(delay * 2, 10_000);
    }
  };
  run();
  return {
    stop() {
      stopped = true;
      ctrl?.abort();
    },
  };
}

function parseEvent(block) {
  let id = null;
  const data = [];
  for (const line of block.split('\n')) {
    if (!line || line.startsWith(':')) continue;
    const c = line.indexOf(':');
    const field = c < 0 ? line : line.slice(0, c);
    let v = c < 0 ? '' : line.slice(c + 1);
    if (v.startsWith(' ')) v = v.slice(1);
    if (field === 'id') id = v;
    else if (field === 'data') data.push(v);
  }
  return { id, data: data.length ? data.join('\n') : null };
}
