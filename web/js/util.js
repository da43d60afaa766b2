// Small helpers shared by the views.

/** Escapes text for HTML. */
export function esc(v) {
  return String(v ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
}

/** `html\`…${x}…\`` escapes every interpolated value unless it is wrapped with raw(). */
export function html(strings, ...vals) {
  let out = strings[0];
  vals.forEach((v, i) => {
    out += (v instanceof Raw ? v.s : Array.isArray(v) ? v.map((x) => (x instanceof Raw ? x.s : esc(x))).join('') : esc(v)) + strings[i + 1];
  });
  return new Raw(out);
}

class Raw {
  constructor(s) {
    this.s = s;
  }
  toString() {
    return this.s;
  }
}

export const raw = (s) => new Raw(s);

export function setHtml(el, r) {
  el.innerHTML = r instanceof Raw ? r.s : esc(r);
}

export function fmtTime(ms) {
  if (ms === null || ms === undefined) return '';
  const d = new Date(ms);
  const same = new Date().toDateString() === d.toDateString();
  const t = d.toLocaleTimeString([], { hour12: false });
  return same ? t : `${d.toLocaleDateString()} ${t}`;
}

export function fmtAgo(ms) {
  if (!ms) return '';
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86400)} d ago`;
}

export function fmtDuration(s) {
  if (s === null || s === undefined) return '—';
  if (s < 60) return `${Math.round(s)} s`;
  return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
}

export function pct(v) {
  return v === null || v === undefined ? '—' : `${v.toFixed(1)} %`;
}

export function bar(v) {
  const p = Math.max(0, Math.min(100, v ?? 0));
  const cls = p < 40 ? 'low' : p < 75 ? 'mid' : '';
  return raw(`<div class="bar ${cls}" title="${p.toFixed(1)} %"><i style="width:${p}%"></i></div>`);
}

let toastTimer = null;
export function toast(msg) {
  const t = document.getElementById('toast');
  t.textContent = msg;
  t.classList.add('show');
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => t.classList.remove('show'), 3000);
}

/** Shows an API failure in `el`: "not available" for 404/503, the role for 403. */
export function failure(e, what) {
  if (e?.status === 404) return html`<p class="na">${what}: not available on this server.</p>`;
  if (e?.status === 403) return html`<p class="na">${what}: ${e.message}</p>`;
  if (e?.status === 503) return html`<p class="na">${what}: not available (${e.message}).</p>`;
  return html`<p class="error">${what}: ${e?.message ?? e}</p>`;
}

/** Runs `fn` over `items` with at most `n` at a time. */
export async function pool(items, n, fn) {
  const queue = [...items];
  const workers = Array.from({ length: Math.min(n, queue.length) }, async () => {
    while (queue.length) await fn(queue.shift());
  });
  await Promise.all(workers);
}

export const SEVERITIES = ['critical', 'major', 'warning', 'info'];
export const sevRank = (s) => {
  const i = SEVERITIES.indexOf(s);
  return i < 0 ? 9 : i;
};
