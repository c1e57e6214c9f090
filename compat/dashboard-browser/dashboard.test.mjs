// feedbackd's dashboard in a real browser: headless Chromium (Debian's
// chromium package, driven by playwright-core pinned in package.json)
// against the real server binary on loopback, with feedback seeded through
// the API so that every figure the page shows is known exactly, and
// webhooks delivering to receivers on loopback so that their failures are
// real ones.
//
// FEEDBACKD_BIN names the feedbackd binary (make builds bin/feedbackd);
// CHROMIUM_BIN the browser (default /usr/bin/chromium);
// FEEDBACKD_SCREENSHOT where the screenshot goes (default
// bin/dashboard.png at the top of the repository, which git ignores).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { startFeedbackd } from '../feedbackd.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, '../..');
const bin = process.env.FEEDBACKD_BIN ?? join(repo, 'bin/feedbackd');
const executablePath = process.env.CHROMIUM_BIN ?? '/usr/bin/chromium';
const screenshot = process.env.FEEDBACKD_SCREENSHOT ?? join(repo, 'bin/dashboard.png');
const key = 'fbk_dashboard_browser_' + 'k'.repeat(24);
// A zone with a half-hour offset and no daylight saving: the page must
// send it, and the server must bucket and answer in it.
const timezoneId = 'Asia/Kolkata';
const offset = '+05:30';

// The seeded feedback. Totals, by construction:
//   20 feedback, sum of value x weight 25, weighted average 1.25
//   scores -10:1 -4:1 0:1 1:13 2:1 5:1 10:2 (17 positive, 2 negative)
//   _prompt: batch 12 traces (avg 0.5), support-v2 4 (15.5/5 = 3.1), onboarding 3 (3.5/3)
//   _user: alice 2 traces (8/3), bob 2 (6.25), carol 2 (-1.25), dave 1 (1), u01..u12 1 each (0.5)
//   models (metadata ai_model, else model): gpt-4o 3 feedback (13.5/3 = 4.5),
//     claude-sonnet-4 2 (-6.5/2), gpt-4o-mini 1 (2); the other 14 name none
const base8 = [
  { trace_id: 't1', value: 10, weight: 1, metadata: { _prompt: 'support-v2', _user: 'alice', _environment: 'production', ai_model: 'gpt-4o' } },
  // ai_model wins over model.
  { trace_id: 't2', value: 5, weight: 0.5, metadata: { _prompt: 'support-v2', _user: 'bob', _environment: 'production', ai_model: 'gpt-4o', model: 'claude-sonnet-4' } },
  { trace_id: 't3', value: -4, weight: 1, metadata: { _prompt: 'onboarding', _user: 'alice', _environment: 'staging', model: 'claude-sonnet-4' } },
  { trace_id: 't4', value: -10, weight: 0.25, metadata: { _prompt: 'onboarding', _user: 'carol', _environment: 'production', ai_model: 'claude-sonnet-4' } },
  { trace_id: 't5', value: 0, weight: 1, metadata: { _prompt: 'support-v2', _user: 'carol', _environment: 'production', region: 'eu' } },
  { trace_id: 't1', value: 2, weight: 1, metadata: { _prompt: 'support-v2', _user: 'alice', _environment: 'production', ai_model: 'gpt-4o-mini' } },
  { trace_id: 't6', value: 10, weight: 1, metadata: { _prompt: 'onboarding', _user: 'bob', _environment: 'staging' } },
];
const batch = Array.from({ length: 12 }, (_, i) => ({
  trace_id: `b${i + 1}`, value: 1, weight: 0.5,
  metadata: { _prompt: 'batch', _user: `u${String(i + 1).padStart(2, '0')}`, _environment: 'test' },
}));
// The newest, posted alone and last: the first row of "Latest feedback".
const newest = { trace_id: 't7', value: 1, weight: 1, metadata: { _prompt: 'support-v2', _user: 'dave', _environment: 'production', ai_model: 'gpt-4o' } };

const servers = [];
let browser, base;
// Everything the browser logs that looks like a failure, over all tests.
const problems = [];

async function startServer(...flags) {
  const server = await startFeedbackd(bin, key, ...flags);
  servers.push(server);
  return server.base;
}

async function post(body) {
  await call(base, 'POST', '/feedback', body);
}

// call makes an API call to the server at url with the key, asserts it
// succeeded, and returns its JSON body (null for none).
async function call(url, method, path, body) {
  const res = await fetch(`${url}/v1${path}`, {
    method,
    headers: { 'x-portkey-api-key': key, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  assert.ok(res.ok, `${method} ${path}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

// eventually polls check until it returns a truthy value, for at most a
// minute: deliveries happen when the server's dispatcher gets to them.
async function eventually(what, check) {
  const deadline = Date.now() + 60000;
  for (;;) {
    const got = await check();
    if (got) return got;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((ok) => setTimeout(ok, 100));
  }
}

before(async () => {
  base = await startServer();
  await post(base8);
  await post(batch);
  await post(newest);
  browser = await chromium.launch({ executablePath, headless: true });
});

after(async () => {
  await browser?.close();
  for (const { stop } of servers) stop();
});

// open starts a fresh browser context (empty sessionStorage) on the
// dashboard and records every request the page makes.
async function open(url = base) {
  const context = await browser.newContext({ timezoneId, locale: 'en-US', viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  page.setDefaultTimeout(120000);
  const requests = [];
  page.on('request', (r) => requests.push({ url: r.url(), headers: r.headers() }));
  page.on('console', (m) => {
    if (m.type() === 'error' && !/status of 4\d\d/.test(m.text())) problems.push(`console: ${m.text()}`);
  });
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
  const res = await page.goto(url);
  assert.equal(res.status(), 200);
  return { context, page, requests };
}

// loads is how many full loads the dashboard has finished.
const loads = (page) => page.locator('#dashboard').evaluate((m) => Number(m.dataset.loads));

// settle waits until a full load after `after` loads has finished and no
// section is still loading.
async function settle(page, after) {
  await page.waitForFunction((n) => Number(document.getElementById('dashboard').dataset.loads) > n
    && !document.querySelector('[aria-busy="true"]'), after);
}

// idle waits until no section is loading (for actions that reload one).
async function idle(page) {
  await page.waitForFunction(() => !document.querySelector('[aria-busy="true"]'));
}

async function signIn(page, secret = key) {
  await page.fill('#key-input', secret);
  await page.click('#key-form button[type="submit"]');
}

const figure = (page, id) => page.locator(`#${id}`).evaluate((o) => (o.dataset.value === '' ? null : Number(o.dataset.value)));

async function scores(page) {
  return page.locator('#scores-table tbody tr').evaluateAll((rows) => Object.fromEntries(
    rows.filter((r) => r.dataset.total !== '0').map((r) => [r.dataset.score, Number(r.dataset.total)])));
}

async function groups(page) {
  return page.locator('#groups-table tbody tr[data-value]').evaluateAll((rows) => rows.map((r) => ({
    value: r.dataset.value, requests: Number(r.dataset.requests), avg: Number(r.dataset.avg),
  })));
}

// models reads the "By AI model" table: [model, feedback, average] per row.
async function models(page) {
  return page.locator('#models-table tbody tr[data-model]').evaluateAll((rows) => rows.map((r) => [
    r.dataset.model, Number(r.dataset.total), Number(r.dataset.avg),
  ]));
}

function near(got, want, what) {
  assert.ok(Math.abs(got - want) < 1e-9, `${what}: got ${got}, want ${want}`);
}

// inked counts the pixels of a chart's canvas drawn in the given hue:
// 'blue' (volume bars, the weighted line), 'green' or 'red' (score bars).
// Axes and grid are grey and do not count.
async function inked(page, chartId, hue) {
  return page.locator(`#${chartId} canvas`).evaluate((canvas, hue) => {
    const { data } = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height);
    let n = 0;
    for (let i = 0; i < data.length; i += 4) {
      const [r, g, b, a] = [data[i], data[i + 1], data[i + 2], data[i + 3]];
      if (a < 40) continue;
      if (hue === 'blue' && b > r + 80 && b > g + 80) n++;
      if (hue === 'green' && g > r + 80 && g > b + 50) n++;
      if (hue === 'red' && r > g + 100 && r > b + 100) n++;
    }
    return n;
  }, hue);
}

async function chooseRange(page, value) {
  const n = await loads(page);
  await page.click(`label[for="range-${value}"]`);
  await settle(page, n);
}

async function setFilter(page, json) {
  const n = await loads(page);
  await page.fill('#metadata', json);
  await page.click('#apply');
  await settle(page, n);
}

test('/ is the dashboard with a strict Content-Security-Policy', async () => {
  const res = await fetch(base + '/');
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type'), /^text\/html/);
  const csp = res.headers.get('content-security-policy');
  assert.match(csp, /default-src 'self'/);
  assert.match(csp, /script-src 'self'(;|$)/);
  assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval|http/);
  const html = await res.text();
  assert.doesNotMatch(html, /<script(?![^>]*\ssrc=)[^>]*>/, 'no inline script');
  assert.doesNotMatch(html, /\sstyle=|<style/, 'no inline style');
});

test('the vendored uPlot is exactly the pinned npm package', () => {
  const vendored = join(repo, 'server/dashboard/static/vendor/uplot');
  const pkg = join(here, 'node_modules/uplot');
  for (const [copy, orig] of [['uPlot.esm.js', 'dist/uPlot.esm.js'], ['uPlot.min.css', 'dist/uPlot.min.css'], ['LICENSE', 'LICENSE']]) {
    assert.ok(readFileSync(join(vendored, copy)).equals(readFileSync(join(pkg, orig))),
      `${copy} differs from the npm package: run make dashboard-vendor`);
  }
  const { version } = JSON.parse(readFileSync(join(pkg, 'package.json'), 'utf8'));
  assert.match(readFileSync(join(vendored, 'VERSION'), 'utf8'), new RegExp(`^uplot ${version.replaceAll('.', '\\.')} `));
});

test('with the key, the dashboard shows exactly the seeded feedback', async () => {
  const { context, page, requests } = await open();
  await assert.doesNotReject(page.locator('#login').waitFor({ state: 'visible' }));
  assert.equal(await page.locator('#dashboard').isVisible(), false);
  await signIn(page);
  await settle(page, 0);

  // The key: in sessionStorage and in the header of each API call, never in a URL.
  assert.equal(await page.evaluate(() => sessionStorage.getItem('feedbackd.apiKey')), key);
  assert.ok(!page.url().includes(key), 'the key is not in the page URL');
  const api = requests.filter((r) => new URL(r.url).pathname.startsWith('/v1/'));
  assert.ok(api.length >= 5, `API calls made: ${api.length}`);
  for (const r of requests) assert.ok(!r.url.includes(key) && !r.url.includes('k'.repeat(24)), `key in ${r.url}`);
  for (const r of api) assert.equal(r.headers['x-portkey-api-key'], key, r.url);
  assert.equal(await page.locator('#key-input').inputValue(), '', 'the key field is emptied');

  // Ranges go out in the browser's zone, and buckets come back in it.
  const graph = api.find((r) => new URL(r.url).pathname === '/v1/analytics/graphs/feedbacks');
  const params = new URL(graph.url).searchParams;
  assert.ok(params.get('time_of_generation_min').endsWith(offset), params.get('time_of_generation_min'));
  assert.ok(params.get('time_of_generation_max').endsWith(offset), params.get('time_of_generation_max'));
  assert.equal(params.get('metadata'), null);
  // The latest feedback of a range that ends now is read from the newest
  // down, without time bounds (which would make the store sort the range).
  const listing = new URL(api.find((r) => new URL(r.url).pathname === '/v1/feedback').url).searchParams;
  assert.equal(listing.get('limit'), '10');
  assert.equal(listing.get('created_after'), null);
  assert.equal(listing.get('created_before'), null);

  // Summary figures.
  assert.equal(await figure(page, 'total'), 20);
  near(await figure(page, 'avg'), 1.25, 'weighted average');
  assert.equal(await figure(page, 'positive'), 17);
  assert.equal(await figure(page, 'negative'), 2);
  assert.equal(await page.locator('#total').textContent(), '20');
  assert.equal(await page.locator('#avg').textContent(), '1.25');

  // Score distribution: all 21 scores listed, the seeded counts on them.
  assert.equal(await page.locator('#scores-table tbody tr').count(), 21);
  assert.deepEqual(await scores(page), { '-10': 1, '-4': 1, 0: 1, 1: 13, 2: 1, 5: 1, 10: 2 });

  // Buckets: a week by day (8 days touched), adding up to the totals, in the zone.
  const buckets = await page.locator('#buckets-table tbody tr').evaluateAll((rows) => rows.map((r) => ({
    timestamp: r.dataset.timestamp, total: Number(r.dataset.total), avg: r.dataset.avg === '' ? null : Number(r.dataset.avg),
  })));
  assert.ok(buckets.length === 8, `day buckets in 7 days: ${buckets.length}`);
  assert.equal(buckets.reduce((s, b) => s + b.total, 0), 20);
  near(buckets.reduce((s, b) => s + (b.avg ?? 0) * b.total, 0), 25, 'sum of value x weight over buckets');
  for (const b of buckets) {
    assert.ok(b.timestamp.endsWith(`T00:00:00${offset}`), `bucket starts at local midnight: ${b.timestamp}`);
    if (b.total === 0) assert.equal(b.avg, null, 'an empty bucket has no average');
  }

  // The charts are drawn: a canvas each, with the series' colours on it.
  for (const id of ['volume-chart', 'weighted-chart', 'scores-chart']) {
    const box = await page.locator(`#${id} canvas`).boundingBox();
    assert.ok(box && box.width > 200 && box.height > 100, `${id} canvas size ${JSON.stringify(box)}`);
    assert.equal(await page.locator(`#${id}`).evaluate((e) => e.classList.contains('empty')), false);
  }
  assert.ok(await inked(page, 'volume-chart', 'blue') > 50, 'volume bars drawn');
  assert.ok(await inked(page, 'weighted-chart', 'blue') > 10, 'weighted average drawn');
  assert.ok(await inked(page, 'scores-chart', 'green') > 200, 'positive score bars drawn');
  assert.ok(await inked(page, 'scores-chart', 'red') > 20, 'negative score bars drawn');

  // Grouped by _prompt (the default): most requests first.
  assert.equal(await page.locator('#groups-total').getAttribute('data-value'), '3');
  const prompts = await groups(page);
  assert.deepEqual(prompts.map((g) => [g.value, g.requests]), [['batch', 12], ['support-v2', 4], ['onboarding', 3]]);
  near(prompts[0].avg, 0.5, 'batch average');
  near(prompts[1].avg, 3.1, 'support-v2 average');
  near(prompts[2].avg, 3.5 / 3, 'onboarding average');

  // By AI model: most feedback first, each with its average; the summary
  // counts only the feedback that names a model.
  assert.deepEqual(await models(page), [['gpt-4o', 3, 4.5], ['claude-sonnet-4', 2, -3.25], ['gpt-4o-mini', 1, 2]]);
  assert.equal(await page.locator('#models-total').getAttribute('data-value'), '6');
  assert.equal(await page.locator('#models-total').textContent(), '3 models, 6 feedback');
  assert.deepEqual(await page.locator('#models-table tbody tr:first-child td').allTextContents(), ['gpt-4o', '3', '4.50']);
  const modelsCall = new URL(api.find((r) => new URL(r.url).pathname === '/v1/analytics/graphs/feedbacks/ai-models').url).searchParams;
  assert.equal(modelsCall.get('time_of_generation_min'), params.get('time_of_generation_min'));
  assert.equal(modelsCall.get('time_of_generation_max'), params.get('time_of_generation_max'));

  // Grouped by _user: 16 values on two pages of 10.
  await page.selectOption('#group-key', '_user');
  await idle(page);
  assert.equal(await page.locator('#groups-total').getAttribute('data-value'), '16');
  assert.equal(await page.locator('#groups-key-head').textContent(), '_user');
  const page1 = await groups(page);
  assert.equal(page1.length, 10);
  assert.deepEqual(page1.slice(0, 3).map((g) => g.value).sort(), ['alice', 'bob', 'carol']);
  const byUser = Object.fromEntries(page1.map((g) => [g.value, g]));
  near(byUser.alice.avg, 8 / 3, 'alice');
  near(byUser.bob.avg, 6.25, 'bob');
  near(byUser.carol.avg, -1.25, 'carol');
  assert.equal(await page.locator('#groups-prev').isDisabled(), true);
  await page.click('#groups-next');
  await idle(page);
  const page2 = await groups(page);
  assert.equal(page2.length, 6);
  assert.ok(page2.every((g) => g.requests === 1));
  assert.equal(new Set([...page1, ...page2].map((g) => g.value)).size, 16);
  assert.equal(await page.locator('#groups-next').isDisabled(), true);
  assert.equal(await page.locator('#groups-page').textContent(), 'page 2 of 2');

  // Latest feedback: newest first, one page of 10 at a time, with metadata.
  const latest = page.locator('#latest-table tbody tr');
  assert.equal(await latest.count(), 10);
  const first = latest.first();
  assert.equal(await first.locator('td.trace').textContent(), 't7');
  assert.equal(await first.getAttribute('data-value'), '1');
  assert.match(await first.locator('td.meta').textContent(), /_user dave/);
  assert.match(await first.locator('td.meta').textContent(), /_prompt support-v2/);
  await page.click('#latest-older');
  await idle(page);
  assert.equal(await latest.count(), 10);
  assert.equal(await page.locator('#latest-older').isDisabled(), true);
  await page.click('#latest-newer');
  await idle(page);
  assert.equal(await first.locator('td.trace').textContent(), 't7');

  // Back to _prompt for the picture.
  await page.selectOption('#group-key', '_prompt');
  await idle(page);
  await page.locator('#weighted-panel details').evaluate((d) => { d.open = false; });
  mkdirSync(dirname(screenshot), { recursive: true });
  await page.screenshot({ path: screenshot, fullPage: true });
  console.log(`dashboard screenshot: ${screenshot}`);
  await context.close();
});

test('the time range and the metadata filter change every number', async () => {
  const { context, page, requests } = await open();
  await signIn(page);
  await settle(page, 0);

  // Presets: the seeded feedback is minutes old, so every preset holds all of it.
  for (const preset of ['24h', '30d', '90d']) {
    await chooseRange(page, preset);
    assert.equal(await figure(page, 'total'), 20, preset);
  }
  await chooseRange(page, '24h');
  assert.ok((await page.locator('#buckets-table tbody tr').count()) >= 24, 'hour buckets for 24 h');

  // A custom range without feedback: zeros, and charts that say so.
  await page.click('label[for="range-custom"]');
  await page.fill('#custom-from', '2020-01-01T00:00');
  await page.fill('#custom-to', '2020-01-31T23:59');
  let n = await loads(page);
  await page.click('#apply');
  await settle(page, n);
  const last = requests.filter((r) => new URL(r.url).pathname === '/v1/analytics/graphs/feedbacks').at(-1);
  const p = new URL(last.url).searchParams;
  assert.equal(p.get('time_of_generation_min'), `2020-01-01T00:00:00.000${offset}`);
  assert.equal(p.get('time_of_generation_max'), `2020-01-31T23:59:59.999${offset}`);
  // A range in the past bounds the listing (in UTC; its end is exclusive).
  const listing = new URL(requests.filter((r) => new URL(r.url).pathname === '/v1/feedback').at(-1).url).searchParams;
  assert.equal(listing.get('created_after'), '2019-12-31T18:30:00.000Z');
  assert.equal(listing.get('created_before'), '2020-01-31T18:30:00.000Z');
  assert.equal(await figure(page, 'total'), 0);
  assert.equal(await figure(page, 'avg'), null);
  assert.equal(await page.locator('#buckets-table tbody tr').count(), 31);
  assert.equal(await page.locator('#volume-chart').evaluate((e) => e.classList.contains('empty')), true);
  assert.equal(await inked(page, 'volume-chart', 'blue'), 0, 'no bars without feedback');
  assert.equal(await page.locator('#groups-total').getAttribute('data-value'), '0');
  assert.deepEqual(await models(page), []);
  assert.equal(await page.locator('#models-total').getAttribute('data-value'), '0');
  assert.equal(await page.locator('#models-table tbody').textContent(),
    'No feedback in this range names a model (by default metadata ai_model or model).');
  assert.match(await page.locator('#latest-table tbody').textContent(), /No feedback in this range/);
  await chooseRange(page, '7d');
  assert.equal(await figure(page, 'total'), 20);

  // A JSON filter.
  await setFilter(page, '{"_prompt": "support-v2"}');
  assert.equal(await figure(page, 'total'), 5);
  near(await figure(page, 'avg'), 3.1, 'support-v2 weighted average');
  assert.equal(await figure(page, 'positive'), 4);
  assert.equal(await figure(page, 'negative'), 0);
  assert.deepEqual(await scores(page), { 0: 1, 1: 1, 2: 1, 5: 1, 10: 1 });
  assert.deepEqual((await groups(page)).map((g) => [g.value, g.requests]), [['support-v2', 4]]);
  assert.deepEqual(await models(page), [['gpt-4o', 3, 4.5], ['gpt-4o-mini', 1, 2]]);
  const modelsCall = requests.filter((r) => new URL(r.url).pathname === '/v1/analytics/graphs/feedbacks/ai-models').at(-1);
  assert.equal(new URL(modelsCall.url).searchParams.get('metadata'), '{"_prompt":"support-v2"}');
  assert.equal(await page.locator('#latest-table tbody tr').count(), 5);
  const sent = requests.filter((r) => new URL(r.url).pathname.startsWith('/v1/')).at(-1);
  assert.equal(new URL(sent.url).searchParams.get('metadata'), '{"_prompt":"support-v2"}');
  assert.match(await page.locator('#chips').textContent(), /_prompt = support-v2/);

  // Key/value inputs add a pair to the filter.
  await page.fill('#metadata', '');
  await page.fill('#meta-key', '_user');
  await page.fill('#meta-value', 'alice');
  n = await loads(page);
  await page.click('#meta-add');
  await settle(page, n);
  assert.equal(await page.locator('#metadata').inputValue(), '{"_user":"alice"}');
  assert.equal(await figure(page, 'total'), 3);
  near(await figure(page, 'avg'), 8 / 3, 'alice weighted average');
  assert.deepEqual(await scores(page), { '-4': 1, 2: 1, 10: 1 });
  // A tie in feedback is ordered by name; t3 names its model in metadata model.
  assert.deepEqual(await models(page), [['claude-sonnet-4', 1, -4], ['gpt-4o', 1, 10], ['gpt-4o-mini', 1, 2]]);

  // A group's value drills down: _environment = staging, with _user = alice.
  await page.selectOption('#group-key', '_environment');
  await idle(page);
  const envs = (await groups(page)).map((g) => [g.value, g.requests]).sort();
  assert.deepEqual(envs, [['production', 1], ['staging', 1]]);
  n = await loads(page);
  await page.locator('#groups-table button', { hasText: 'staging' }).click();
  await settle(page, n);
  assert.deepEqual(JSON.parse(await page.locator('#metadata').inputValue()), { _user: 'alice', _environment: 'staging' });
  assert.equal(await figure(page, 'total'), 1);
  near(await figure(page, 'avg'), -4, 'alice on staging');
  assert.deepEqual(await models(page), [['claude-sonnet-4', 1, -4]]);

  // Removing the chips clears the filter.
  for (const k of ['_environment', '_user']) {
    n = await loads(page);
    await page.click(`#chips button[title="remove ${k}"]`);
    await settle(page, n);
  }
  assert.equal(await page.locator('#metadata').inputValue(), '');
  assert.equal(await figure(page, 'total'), 20);
  assert.equal(await page.locator('#models-total').getAttribute('data-value'), '6');
  await context.close();
});

test('a wrong key shows the refusal and is not kept', async () => {
  const { context, page, requests } = await open();
  await signIn(page, 'fbk_not_a_key_of_this_server');
  await page.locator('#error').waitFor({ state: 'visible' });
  assert.match(await page.locator('#error').textContent(), /API key was refused \(401\)/);
  assert.equal(await page.locator('#login').isVisible(), true);
  assert.equal(await page.locator('#dashboard').isVisible(), false);
  assert.equal(await page.evaluate(() => sessionStorage.getItem('feedbackd.apiKey')), null);
  assert.ok(requests.every((r) => !r.url.includes('fbk_not_a_key')));

  // The right key then works, and "Forget key" forgets it.
  await signIn(page);
  await settle(page, 0);
  assert.equal(await page.locator('#error').isVisible(), false);
  assert.equal(await figure(page, 'total'), 20);
  await page.click('#sign-out');
  assert.equal(await page.evaluate(() => sessionStorage.getItem('feedbackd.apiKey')), null);
  assert.equal(await page.locator('#login').isVisible(), true);
  await context.close();
});

test('a reload keeps the key for the tab, a new tab asks again', async () => {
  const { context, page } = await open();
  await signIn(page);
  await settle(page, 0);
  await page.reload();
  await settle(page, 0);
  assert.equal(await figure(page, 'total'), 20);
  const other = await context.newPage();
  await other.goto(base);
  await other.locator('#login').waitFor({ state: 'visible' });
  await context.close();
});

test('bad filters are explained: in the page, and from the server (400)', async () => {
  const { context, page } = await open();
  await signIn(page);
  await settle(page, 0);

  await page.fill('#metadata', '{"_user": ');
  await page.click('#apply');
  await page.locator('#error').waitFor({ state: 'visible' });
  assert.match(await page.locator('#error').textContent(), /not valid JSON/);
  assert.equal(await figure(page, 'total'), 20, 'nothing reloaded');

  // Nested values are refused by the server, which names the problem.
  const n = await loads(page);
  await page.fill('#metadata', '{"a": {"b": 1}}');
  await page.click('#apply');
  await settle(page, n);
  assert.equal(await page.locator('#error').isVisible(), false);
  const errors = page.locator('#summary .panel-error');
  assert.equal(await errors.isVisible(), true);
  assert.match(await errors.textContent(), /Request rejected \(400\)/);
  assert.match(await page.locator('#groups-panel .panel-error').textContent(), /\(400\)/);
  assert.match(await page.locator('#models-panel .panel-error').textContent(), /\(400\)/);
  assert.match(await page.locator('#latest-panel .panel-error').textContent(), /\(400\)/);
  assert.equal(await page.evaluate(() => sessionStorage.getItem('feedbackd.apiKey')), key, 'a 400 keeps the key');
  await context.close();
});

test('a rate-limited server (429) is explained with its Retry-After', async () => {
  const limited = await startServer('--rate-limit', '1');
  const { context, page } = await open(limited);
  await signIn(page);
  await settle(page, 0);
  const messages = await page.locator('.panel-error:not([hidden])').allTextContents();
  assert.ok(messages.length > 0, 'some section was refused');
  for (const m of messages) assert.match(m, /Too many requests \(429\).*Retry in \d+ s/);
  assert.equal(await page.evaluate(() => sessionStorage.getItem('feedbackd.apiKey')), key, 'a 429 keeps the key');
  await context.close();
});

// webhooks reads the webhooks panel: per webhook its id, status, the
// texts shown, and its failed attempts as listed.
async function webhooks(page) {
  return page.locator('#webhooks-list article.webhook').evaluateAll((cards) => cards.map((c) => ({
    id: c.dataset.id,
    status: c.dataset.status,
    url: c.querySelector('.url').textContent,
    badge: c.querySelector('.status').textContent,
    reason: c.querySelector('.reason')?.textContent ?? null,
    events: [...c.querySelectorAll('.events .kv')].map((e) => e.textContent),
    created: c.querySelector('.created').getAttribute('title'),
    note: c.querySelector('.failures-note').textContent,
    failures: [...c.querySelectorAll('table.failures tbody tr')].map((r) => ({
      eventId: r.dataset.eventId,
      outcome: r.dataset.outcome,
      statusCode: r.dataset.statusCode,
      cells: [...r.cells].map((td) => td.textContent),
    })),
  })));
}

test('a workspace without webhooks is told how to create one', async () => {
  const { context, page, requests } = await open();
  await signIn(page);
  await settle(page, 0);
  assert.equal(await page.locator('#webhooks-empty').isVisible(), true);
  assert.match(await page.locator('#webhooks-empty').textContent(), /No webhooks yet/);
  const curl = await page.locator('#webhooks-curl').textContent();
  assert.ok(curl.startsWith(`curl ${base}/v1/webhooks -H "x-portkey-api-key: $FEEDBACKD_API_KEY" \\\n`), curl);
  assert.ok(!curl.includes(key), 'the hint does not show the key');
  assert.match(await page.locator('#webhooks-empty').textContent(), /feedbackd webhooks create --workspace NAME --url https:/);
  assert.equal(await page.locator('#webhooks-list article').count(), 0);
  assert.equal(await page.locator('#webhooks-total').getAttribute('data-value'), '0');
  assert.equal(await page.locator('#webhooks-panel .panel-error').isVisible(), false);
  const paths = requests.map((r) => new URL(r.url).pathname).filter((p) => p.startsWith('/v1/webhooks'));
  assert.deepEqual(paths, ['/v1/webhooks'], 'no deliveries read without webhooks');
  await context.close();
});

test('the webhooks panel lists each webhook with its state and recent failed deliveries', async () => {
  // One receiver on loopback: /flaky fails its first delivery (500) and
  // takes the retry; /gone answers 410, which disables its webhook.
  const received = [];
  const receiver = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      received.push({ path: req.url, id: req.headers['webhook-id'] });
      if (req.url === '/gone') res.writeHead(410);
      else if (req.url === '/flaky' && received.filter((r) => r.path === '/flaky').length === 1) res.writeHead(500);
      else res.writeHead(204);
      res.end();
    });
  });
  await new Promise((ok) => receiver.listen(0, '127.0.0.1', ok));
  const to = (path) => `http://127.0.0.1:${receiver.address().port}${path}`;
  const wbase = await startServer('--webhooks-allow-loopback');
  try {
    const flaky = await call(wbase, 'POST', '/webhooks', {
      url: to('/flaky'), events: ['feedback.created', 'feedback.updated'], filter: { value_max: -5 }, description: 'page on-call',
    });
    const gone = await call(wbase, 'POST', '/webhooks', { url: to('/gone'), events: ['feedback.created'] });
    const paused = await call(wbase, 'POST', '/webhooks', { url: to('/paused'), events: ['feedback.created'] });
    await call(wbase, 'PATCH', `/webhooks/${paused.id}`, { paused: true });
    const secrets = [flaky.secret, gone.secret, paused.secret];
    for (const secret of secrets) assert.match(secret, /^whsec_/);
    await call(wbase, 'POST', '/feedback', { trace_id: 'w1', value: -10 });
    // /gone fails six times: each 410 disables its webhook, which is
    // resumed and given another event (one the flaky webhook's filter
    // leaves out).
    const disabled = async () => (await call(wbase, 'GET', `/webhooks/${gone.id}`)).status === 'disabled';
    for (let i = 2; i <= 6; i++) {
      await eventually(`the 410 of /gone to event ${i - 1}`, disabled);
      await call(wbase, 'PATCH', `/webhooks/${gone.id}`, { paused: false });
      await call(wbase, 'POST', '/feedback', { trace_id: `g${i}`, value: 1 });
    }

    // The flaky webhook's event: failed once, delivered by the retry
    // (about 5 s later); the gone one's: each refused for good.
    const attempts = await eventually('the retry to /flaky and the sixth 410 of /gone', async () => {
      const f = (await call(wbase, 'GET', `/webhooks/${flaky.id}/deliveries`)).data;
      const g = (await call(wbase, 'GET', `/webhooks/${gone.id}/deliveries`)).data;
      return f.some((a) => a.outcome === 'delivered') && g.length === 6 ? { f, g } : null;
    });
    assert.deepEqual(attempts.f.map((a) => [a.attempt, a.outcome]), [[2, 'delivered'], [1, 'retrying']]);
    assert.deepEqual(attempts.g.map((a) => [a.attempt, a.outcome, a.status_code]), Array(6).fill([1, 'gone', 410]));
    const flakyIds = received.filter((r) => r.path === '/flaky').map((r) => r.id);
    assert.deepEqual(flakyIds, [attempts.f[1].event_id, attempts.f[1].event_id], 'the retry carries the same webhook-id');
    const goneNow = await call(wbase, 'GET', `/webhooks/${gone.id}`);
    assert.equal(goneNow.status, 'disabled');

    const { context, page, requests } = await open(wbase);
    await signIn(page);
    await settle(page, 0);
    assert.equal(await page.locator('#webhooks-panel .panel-error').isVisible(), false);
    assert.equal(await page.locator('#webhooks-empty').isVisible(), false);
    assert.equal(await page.locator('#webhooks-total').textContent(), '3 webhooks');
    const [f, g, p] = await webhooks(page);
    assert.deepEqual([f, g, p].map((w) => w?.id), [flaky.id, gone.id, paused.id], 'oldest first');

    // Active, with its one failure: the delivered retry is not listed.
    assert.equal(f.url, to('/flaky'));
    assert.deepEqual([f.status, f.badge, f.reason], ['active', 'active', null]);
    assert.deepEqual(f.events, ['feedback.created', 'feedback.updated', 'filter {"value_max":-5}']);
    assert.equal(f.created, flaky.created_at);
    assert.equal(f.note, '1 failed attempt; the newest attempt was delivered:');
    assert.equal(f.failures.length, 1);
    const failed = attempts.f[1];
    assert.deepEqual([f.failures[0].eventId, f.failures[0].outcome, f.failures[0].statusCode], [failed.event_id, 'retrying', '500']);
    const [at, event, outcome, status, error, next] = f.failures[0].cells;
    assert.match(at, /\d{1,2}:\d{2}:\d{2}/);
    assert.equal(event, 'feedback.created #1');
    assert.equal(outcome, 'retrying');
    assert.equal(status, '500');
    assert.equal(error, failed.error);
    assert.match(next, /\d{1,2}:\d{2}:\d{2}/, 'a retrying attempt says when the next is due');
    assert.match(await page.locator(`article[data-id="${flaky.id}"]`).textContent(), /page on-call/);

    // Disabled by the 410, with the server's reason; nothing is due next.
    // Of its six failures, the newest five are listed.
    assert.deepEqual([g.status, g.badge, g.reason], ['disabled', 'disabled', goneNow.status_reason]);
    assert.ok(g.reason, 'a disabled webhook says why');
    assert.equal(g.note, 'The newest 5 failed attempts:');
    assert.deepEqual(g.failures.map((a) => a.eventId), attempts.g.slice(0, 5).map((a) => a.event_id));
    assert.deepEqual(g.failures.map((a) => [a.outcome, a.statusCode, a.cells[2], a.cells[5]]), Array(5).fill(['gone', '410', 'gone', '—']));

    // Paused: its event waits; nothing was attempted.
    assert.deepEqual([p.status, p.badge, p.failures.length, p.note], ['paused', 'paused', 0, 'No delivery attempts yet.']);

    // The page never shows a secret, and only reads.
    const html = await page.content();
    for (const secret of secrets) assert.ok(!html.includes(secret), 'a webhook secret is on the page');
    assert.ok(!html.includes('whsec_'), 'no secret of any webhook is on the page');
    const api = requests.filter((r) => new URL(r.url).pathname.startsWith('/v1/'));
    for (const r of api) assert.equal(r.headers['x-portkey-api-key'], key, r.url);
    const calls = await page.evaluate(() => performance.getEntriesByType('resource').map((e) => e.name));
    assert.ok(calls.every((u) => !u.includes('rotate-secret')), 'the dashboard never rotates a secret');

    await page.locator('#webhooks-panel').screenshot({ path: join(dirname(screenshot), 'dashboard-webhooks.png') });

    // A filter leaves the webhooks alone; Refresh reloads them.
    const webhookCalls = () => requests.filter((r) => new URL(r.url).pathname === '/v1/webhooks').length;
    const before = webhookCalls();
    await setFilter(page, '{"_prompt": "support-v2"}');
    assert.equal(webhookCalls(), before, 'a filter does not reload the webhooks');
    await call(wbase, 'DELETE', `/webhooks/${gone.id}`);
    const n = await loads(page);
    await page.click('#refresh');
    await settle(page, n);
    assert.equal(webhookCalls(), before + 1);
    assert.deepEqual((await webhooks(page)).map((w) => w.id), [flaky.id, paused.id]);
    await context.close();
  } finally {
    receiver.close();
  }
});

test('a server gone away is explained in every panel, the webhooks too', async () => {
  const server = await startFeedbackd(bin, key);
  servers.push(server);
  const { context, page } = await open(server.base);
  await signIn(page);
  await settle(page, 0);
  // From here the browser logs each refused connection, as it should.
  page.removeAllListeners('console');
  server.stop();
  await eventually('the server to stop', () => fetch(server.base + '/healthz').then(() => false, () => true));
  const n = await loads(page);
  await page.click('#refresh');
  await settle(page, n);
  for (const panel of ['summary', 'models-panel', 'latest-panel', 'webhooks-panel']) {
    assert.match(await page.locator(`#${panel} .panel-error`).textContent(), /^Could not reach feedbackd: /, panel);
  }
  assert.equal(await page.evaluate(() => sessionStorage.getItem('feedbackd.apiKey')), key, 'no answer keeps the key');
  await context.close();
});

test('the browser reported no errors and no Content-Security-Policy violations', () => {
  assert.deepEqual(problems, []);
});
