// Times the dashboard in headless Chromium against a running feedbackd,
// for each preset range: how long until the figures and charts show, how
// long until every section (the metadata groups last) has loaded, and what
// each API call took. Not a test: a measurement for a server with real
// data (see the README's Dashboard section).
//
//   node timing.mjs http://127.0.0.1:8787 fbk_... [_prompt]
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const [base, key, groupKey = '_prompt'] = process.argv.slice(2);
if (!base || !key) {
  console.error('usage: node timing.mjs BASE_URL API_KEY [GROUP_KEY]');
  process.exit(2);
}
const browser = await chromium.launch({ executablePath: process.env.CHROMIUM_BIN ?? '/usr/bin/chromium' });
const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
page.setDefaultTimeout(120000);
await page.goto(base);
await page.fill('#key-input', key);

const busy = (ids) => page.waitForFunction((ids) => ids.every((id) => document.getElementById(id).getAttribute('aria-busy') === 'false'), ids);
const graphs = ['summary', 'volume-panel', 'weighted-panel', 'scores-panel'];

const loaded = (n) => page.waitForFunction((n) => Number(document.getElementById('dashboard').dataset.loads) > n
  && !document.querySelector('[aria-busy="true"]'), n);
await page.click('#key-form button[type="submit"]');
await loaded(0);
if (groupKey !== '_prompt') {
  await page.selectOption('#group-key', groupKey);
  await busy(['groups-panel']);
}

console.log('| range | figures and charts | whole page | feedback | groups by ' + groupKey + ' | API calls (ms) |');
console.log('|---|---:|---:|---:|---:|---|');
for (const preset of ['24h', '7d', '30d', '90d']) {
  await page.evaluate(() => performance.clearResourceTimings());
  const loads = await page.locator('#dashboard').evaluate((m) => Number(m.dataset.loads));
  const t0 = Date.now();
  await page.click(`label[for="range-${preset}"]`);
  await busy(graphs);
  const tGraphs = Date.now() - t0;
  await loaded(loads);
  const tAll = Date.now() - t0;
  const calls = await page.evaluate(() => performance.getEntriesByType('resource')
    .filter((e) => e.name.includes('/v1/'))
    .map((e) => `${new URL(e.name).pathname.replace('/v1/analytics/', '').replace('/v1/', '')} ${Math.round(e.duration)}`));
  const total = await page.locator('#total').textContent();
  const groups = await page.locator('#groups-total').textContent();
  console.log(`| ${preset} | ${tGraphs} ms | ${tAll} ms | ${total} | ${groups} | ${calls.join(', ')} |`);
}
// Like the test's, the picture goes to the repository's ignored bin/.
const picture = process.env.FEEDBACKD_SCREENSHOT ?? resolve(dirname(fileURLToPath(import.meta.url)), '../../bin/dashboard-timing.png');
await page.screenshot({ path: picture, fullPage: true });
console.log(`screenshot: ${picture}`);
await browser.close();
