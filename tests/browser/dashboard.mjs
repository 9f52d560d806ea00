// Browser test of the operator dashboard, driven by a Rust integration test.
//
// Run as `tests/npm/browser/node_modules/.bin/node tests/browser/dashboard.mjs`
// with TOOLMESH_URL, TOOLMESH_ADMIN_KEY, TOOLMESH_TOOLS_KEY, SCREENSHOT_DIR and
// CHROMIUM (default /usr/bin/chromium) in the environment.
//
// Protocol: one JSON object per line on stdout (`measure`, `ok`, `wait`,
// `done`); after each `{"wait": …}` one JSON line is read from stdin before
// going on. Logs go to stderr. On a failure: the reason on stderr, a
// `failure.png` screenshot, exit code 1.

import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, '..', 'npm', 'browser', 'package.json'));
const { chromium } = require('playwright-core');

const URL_BASE = (process.env.TOOLMESH_URL || '').replace(/\/+$/, '');
const ADMIN_KEY = process.env.TOOLMESH_ADMIN_KEY || '';
const TOOLS_KEY = process.env.TOOLMESH_TOOLS_KEY || '';
const SHOTS = process.env.SCREENSHOT_DIR || path.join(os.tmpdir(), 'toolmesh-dashboard-screenshots');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const ROUNDS = Math.max(1, Number(process.env.ROUNDS) || 1); // repeats of the timed steps (the benchmark's)
const WAIT = 10_000;          // per wait in the page
const LINE_WAIT = 120_000;    // for the Rust side to answer a `wait`
const CALL_TO_SCREEN_MAX_MS = 1000;
const WATCHDOG_MS = 300_000;

const log = (...a) => console.error('[dashboard]', ...a);
const out = (obj) => process.stdout.write(JSON.stringify(obj) + '\n');

// ---- stdin: one JSON line per `wait`
const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
const lineQueue = [];
const lineWaiters = [];
let stdinClosed = false;
rl.on('line', (l) => {
  if (!l.trim()) return;
  const w = lineWaiters.shift();
  if (w) w.resolve(l); else lineQueue.push(l);
});
rl.on('close', () => {
  stdinClosed = true;
  for (const w of lineWaiters.splice(0)) w.reject(new Error('stdin closed while waiting for the Rust side'));
});
function readLine() {
  if (lineQueue.length) return Promise.resolve(lineQueue.shift());
  if (stdinClosed) return Promise.reject(new Error('stdin closed while waiting for the Rust side'));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no answer on stdin within ${LINE_WAIT} ms`)), LINE_WAIT);
    lineWaiters.push({
      resolve: (l) => { clearTimeout(timer); resolve(l); },
      reject: (e) => { clearTimeout(timer); reject(e); },
    });
  });
}
async function waitFor(what, extra) {
  out({ wait: what, ...(extra || {}) });
  const line = await readLine();
  let v;
  try { v = JSON.parse(line); } catch (e) { throw new Error(`the answer to wait ${what} is not JSON: ${line}`); }
  log(`wait ${what} answered:`, line);
  return v;
}

class Fail extends Error {}
const check = (cond, msg) => { if (!cond) throw new Fail(msg); };

let context = null;
let page = null;
let userDataDir = null;
const pageErrors = [];

async function shot(name) {
  const file = path.join(SHOTS, name);
  await page.screenshot({ path: file, fullPage: true });
  log('screenshot', file);
}

// Waits until the view's section is shown and its data has been read.
async function showView(view) {
  await page.click(`a[data-view="${view}"]`);
  await page.waitForFunction((v) => {
    const sec = document.querySelector(`section[data-view="${v}"]`);
    return !!sec && !sec.hidden && sec.offsetParent !== null
      && sec.hasAttribute('data-loaded') && !sec.hasAttribute('data-loading')
      && !/loading/i.test(sec.innerText);
  }, view, { timeout: WAIT, polling: 20 });
  const others = await page.$$eval('section[data-view]:not([hidden])', (els) => els.map((e) => e.dataset.view));
  check(others.length === 1 && others[0] === view, `view ${view}: visible sections are ${JSON.stringify(others)}`);
  const err = await page.$eval(`section[data-view="${view}"]`, (s) => (s.getAttribute('data-error') === 'true' ? s.innerText : null));
  if (err) log(`view ${view} shows an error:`, err);
}

// Waits until `fn` (run in the page, returning Date.now() once its condition
// holds, else false) is true; answers that page-side time (the same clock as
// this process's Date.now(): both run on this machine).
async function seenAt(fn, arg) {
  const handle = await page.waitForFunction(fn, arg, { timeout: WAIT, polling: 5 });
  return Number(await handle.jsonValue());
}

async function tryWrongKey(key, expectStatus, label) {
  await page.fill('#login-key', key);
  const [resp] = await Promise.all([
    page.waitForResponse((r) => r.url().endsWith('/api/login') && r.request().method() === 'POST', { timeout: WAIT }),
    page.click('#login-submit'),
  ]);
  check(resp.status() === expectStatus, `${label}: POST /api/login answered ${resp.status()}, expected ${expectStatus}`);
  await page.waitForFunction(() => {
    const e = document.querySelector('#login-error');
    return !!e && !e.hidden && e.offsetParent !== null && e.textContent.trim().length > 0;
  }, null, { timeout: WAIT, polling: 10 });
  const appShown = await page.$eval('#app', (a) => !a.hidden && a.offsetParent !== null);
  check(!appShown, `${label}: the app is shown after a refused sign-in`);
  log(`${label}: refused with`, JSON.stringify(await page.textContent('#login-error')));
}

async function main() {
  check(URL_BASE, 'TOOLMESH_URL is not set');
  check(ADMIN_KEY, 'TOOLMESH_ADMIN_KEY is not set');
  check(TOOLS_KEY, 'TOOLMESH_TOOLS_KEY is not set');
  fs.mkdirSync(SHOTS, { recursive: true });
  userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'toolmesh-chromium-'));

  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
    viewport: { width: 1400, height: 900 },
    timeout: 60_000,
  });
  context.setDefaultTimeout(WAIT);
  page = context.pages()[0] || await context.newPage();
  page.on('pageerror', (e) => { pageErrors.push(String(e && e.stack || e)); log('page error:', e); });
  page.on('console', (m) => { if (m.type() === 'error') log('console:', m.text()); });

  // 1. the sign-in page
  let t = Date.now();
  await page.goto(URL_BASE + '/', { waitUntil: 'commit' });
  let seen = await seenAt(() => {
    const f = document.querySelector('#login-form');
    return !!f && f.offsetParent !== null && getComputedStyle(f).visibility !== 'hidden' ? Date.now() : false;
  });
  out({ measure: 'login_page_ms', value: seen - t });

  // 2. keys that must be refused
  await tryWrongKey('wrong-key', 401, 'wrong key');
  await tryWrongKey(TOOLS_KEY, 403, 'key without admin scope');
  out({ ok: 'wrong_keys_refused' });

  // 3. sign in, reload, cookie flags
  await page.fill('#login-key', ADMIN_KEY);
  // Timed from the click as the page sees it (not from when Playwright starts acting).
  await page.evaluate(() => {
    window.__signInClickAt = 0;
    document.querySelector('#login-submit').addEventListener('click', () => { window.__signInClickAt = Date.now(); },
      { once: true, capture: true });
  });
  t = Date.now();
  await page.click('#login-submit');
  seen = await seenAt(() => {
    const app = document.querySelector('#app');
    const tile = document.querySelector('#tile-calls');
    return !!app && !app.hidden && app.offsetParent !== null && !!tile && tile.textContent.trim().length > 0
      ? Date.now() : false;
  });
  const clickAt = Number(await page.evaluate(() => window.__signInClickAt)) || t;
  out({ measure: 'sign_in_to_overview_ms', value: seen - clickAt });
  const who = (await page.textContent('#signed-in-as') || '').trim();
  check(who.length > 0, '#signed-in-as is empty after signing in');
  log('signed in as', JSON.stringify(who));

  for (let round = 0; round < ROUNDS; round++) {
    t = Date.now();
    await page.reload({ waitUntil: 'commit' });
    seen = await seenAt(() => {
      const tile = document.querySelector('#tile-calls');
      return !!tile && tile.textContent.trim().length > 0 && !!document.querySelector('#recent-calls') ? Date.now() : false;
    });
    out({ measure: 'initial_load_ms', value: seen - t });
  }

  const cookies = await context.cookies(URL_BASE);
  const session = cookies.find((c) => c.name === 'toolmesh_session') || (cookies.length === 1 ? cookies[0] : null);
  check(session, `no session cookie (cookies: ${cookies.map((c) => c.name).join(', ') || 'none'})`);
  check(session.httpOnly === true, `the session cookie is not HttpOnly`);
  check(session.sameSite === 'Strict', `the session cookie is SameSite=${session.sameSite}, not Strict`);
  out({ ok: 'cookie_flags' });
  await page.waitForTimeout(1500); // a few overview events for the charts
  await shot('overview.png');

  // 4. a real MCP call shows up in the recent calls (ROUNDS times)
  for (let round = 0; round < ROUNDS; round++) {
    const afterSeq = await page.$$eval('#recent-calls tbody tr',
      (rows) => rows.reduce((m, r) => Math.max(m, Number(r.getAttribute('data-seq')) || 0), 0));
    const answer = await waitFor('call', { after_seq: afterSeq });
    const calledAt = Number(answer && answer.called_at_ms);
    check(Number.isFinite(calledAt) && calledAt > 0, `bad called_at_ms in ${JSON.stringify(answer)}`);
    seen = await seenAt((n) => {
      for (const tr of document.querySelectorAll('#recent-calls tbody tr')) {
        if (Number(tr.getAttribute('data-seq')) > n && tr.getAttribute('data-tool') === 'hello__greet') return Date.now();
      }
      return false;
    }, afterSeq);
    const callToScreen = Math.max(0, seen - calledAt);
    out({ measure: 'call_to_screen_ms', value: callToScreen });
    check(callToScreen <= CALL_TO_SCREEN_MAX_MS, `the call reached the screen after ${callToScreen} ms (limit ${CALL_TO_SCREEN_MAX_MS} ms)`);
  }

  // 5. tool runner
  await page.click('a[data-view="runner"]');
  await page.locator('section[data-view="runner"]').waitFor({ state: 'visible' });
  await page.locator('#runner-tool option[value="hello__greet"]').waitFor({ state: 'attached' });
  await page.selectOption('#runner-tool', 'hello__greet');
  await page.fill('#runner-form [name="name"]', 'Dashboard');
  await page.click('#runner-run');
  await page.waitForFunction(() => {
    const r = document.querySelector('#runner-result');
    return !!r && r.textContent.includes('Hello, Dashboard!');
  }, null, { timeout: WAIT, polling: 10 });
  const usage = (await page.textContent('#runner-usage') || '').trim();
  check(usage.length > 0, '#runner-usage is empty after a run');
  const isErr = await page.getAttribute('#runner-result', 'data-error');
  check(isErr !== 'true', '#runner-result is marked as an error for a successful call');
  out({ ok: 'runner' });
  await shot('runner.png');

  // 6. plugin lifecycle
  await showView('plugins');
  const hello = '[data-plugin="hello"]';
  await page.locator(hello).waitFor({ state: 'visible' });
  await shot('plugins.png');
  const reason = page.locator(`${hello} input[data-reason]`);
  if (await reason.count()) await reason.fill('browser test');
  await page.click(`${hello} button[data-action="disable"]`);
  await page.waitForSelector(`${hello}[data-state="disabled"]`, { timeout: WAIT });
  await waitFor('disabled');
  await page.click(`${hello} button[data-action="enable"]`);
  await page.waitForSelector(`${hello}[data-state="enabled"]`, { timeout: WAIT });
  await waitFor('enabled');
  out({ ok: 'lifecycle' });

  // 7. an action without the CSRF header is refused
  const csrfStatus = await page.evaluate(async () => {
    const r = await fetch('/api/plugins/hello/pause', {
      method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{}',
    });
    return r.status;
  });
  check(csrfStatus === 403, `POST without X-CSRF-Token answered ${csrfStatus}, expected 403`);
  out({ ok: 'csrf_refused' });

  // 8. every other view
  for (const view of ['history', 'mesh', 'permissions', 'budgets', 'discovery', 'events', 'alerts', 'config']) {
    await showView(view);
    await page.waitForTimeout(100);
    await shot(`${view}.png`);
  }

  check(pageErrors.length === 0, `uncaught errors in the page: ${pageErrors.join(' | ')}`);
  out({ done: true });
}

async function finish(code) {
  try { if (context) await context.close(); } catch (_) { /* closing anyway */ }
  try { if (userDataDir) fs.rmSync(userDataDir, { recursive: true, force: true }); } catch (_) { /* a temp dir */ }
  process.exit(code);
}

const watchdog = setTimeout(async () => {
  log(`FAILED: the test did not finish within ${WATCHDOG_MS} ms`);
  try { if (page) await page.screenshot({ path: path.join(SHOTS, 'failure.png'), fullPage: true }); } catch (_) { /* */ }
  finish(1);
}, WATCHDOG_MS);

main().then(() => { clearTimeout(watchdog); return finish(0); }, async (e) => {
  clearTimeout(watchdog);
  log('FAILED:', e instanceof Fail ? e.message : (e && e.stack) || String(e));
  try {
    if (page) {
      fs.mkdirSync(SHOTS, { recursive: true });
      await page.screenshot({ path: path.join(SHOTS, 'failure.png'), fullPage: true });
      log('screenshot', path.join(SHOTS, 'failure.png'));
    }
  } catch (err) { log('could not save failure.png:', String(err)); }
  await finish(1);
});
