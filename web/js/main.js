// The dashboard shell: sign-in, navigation, the live alert stream, header counts, shortcuts.

import { alertStream, checkToken, setToken, token } from './api.js';
import { allAlerts, applyFeed, loadAlerts, onAlerts } from './store.js';
import { SEVERITIES, esc, toast } from './util.js';
import { AlertsView } from './alerts.js';
import { CamerasView } from './cameras.js';
import { MapView } from './mapview.js';
import { PlanningView } from './planning.js';
import { MaintenanceView } from './maintenance.js';
import { InterceptionView } from './interception.js';

const VIEWS = ['alerts', 'cameras', 'map', 'planning', 'maintenance', 'interception'];
const views = {};
let current = null;
let stream = null;

const $ = (id) => document.getElementById(id);

function showLogin(msg = '') {
  stream?.stop();
  stream = null;
  $('app').hidden = true;
  $('login').hidden = false;
  $('login-error').textContent = msg;
  $('login-token').focus();
}

async function start() {
  $('login').hidden = true;
  $('app').hidden = false;
  if (!Object.keys(views).length) {
    views.alerts = new AlertsView($('view-alerts'));
    views.cameras = new CamerasView($('view-cameras'));
    views.map = new MapView($('view-map'));
    views.planning = new PlanningView($('view-planning'));
    views.maintenance = new MaintenanceView($('view-maintenance'));
    views.interception = new InterceptionView($('view-interception'));
  }
  // Stream first (its position is the live edge when it answers), then the stored alerts: a
  // change in between arrives on the stream, and the store keeps the newest version of each.
  const state = $('stream-state');
  let loaded = false;
  stream = alertStream({
    onEvent: applyFeed,
    onState: (s) => {
      state.dataset.state = s;
      state.textContent = s === 'live' ? 'live' : 'reconnecting…';
      if (s === 'live' && !loaded) {
        loaded = true;
        loadAlerts().catch((e) => toast(`alerts: ${e.message}`));
      }
    },
  });
  route();
}

function route() {
  const name = VIEWS.includes(location.hash.slice(1)) ? location.hash.slice(1) : 'alerts';
  if (current === name) return;
  if (current) views[current].hide?.();
  for (const v of VIEWS) $(`view-${v}`).hidden = v !== name;
  for (const a of document.querySelectorAll('#nav a')) a.classList.toggle('active', a.dataset.view === name);
  current = name;
  document.body.dataset.view = name;
  views[name].show();
}

function counts() {
  const open = allAlerts().filter((a) => a.status !== 'resolved');
  const n = Object.fromEntries(SEVERITIES.map((s) => [s, 0]));
  for (const a of open) n[a.severity] = (n[a.severity] ?? 0) + 1;
  $('sev-counts').innerHTML = SEVERITIES.map(
    (s) => `<span class="sev ${s} ${n[s] ? '' : 'zero'}" data-sev="${s}" title="${s}: open alerts">${esc(n[s])}</span>`,
  ).join('');
  const unack = open.filter((a) => a.status === 'new').length;
  $('nav-alert-count').textContent = unack ? String(unack) : '';
  document.title = `${unack ? `(${unack}) ` : ''}天网 tianwang — monitoring room`;
}

function keys(e) {
  if (e.target.closest('input, textarea, select') || e.ctrlKey || e.metaKey || e.altKey) return;
  if ($('help').open) return;
  if (e.key >= '1' && e.key <= String(VIEWS.length)) {
    location.hash = VIEWS[Number(e.key) - 1];
    return;
  }
  if (e.key === '?') {
    $('help').showModal();
    return;
  }
  if (current && views[current].key?.(e)) e.preventDefault();
}

function init() {
  $('login-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const t = $('login-token').value.trim();
    if (!t) return;
    const err = await checkToken(t).catch((x) => `cannot reach the server: ${x.message}`);
    if (err) {
      $('login-error').textContent = err;
      return;
    }
    setToken(t);
    $('login-token').value = '';
    start();
  });
  $('logout').addEventListener('click', () => {
    setToken(null);
    location.reload();
  });
  $('help-btn').addEventListener('click', () => $('help').showModal());
  window.addEventListener('tw-unauthorized', () => {
    setToken(null);
    showLogin('The token was refused (unknown, revoked or expired). Sign in again.');
  });
  window.addEventListener('hashchange', route);
  document.addEventListener('keydown', keys);
  onAlerts(counts);
  const tick = () => ($('clock').textContent = new Date().toLocaleTimeString([], { hour12: false }));
  tick();
  setInterval(tick, 1000);
  if (token()) start();
  else showLogin();
}

init();
