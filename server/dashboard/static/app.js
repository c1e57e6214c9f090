// feedbackd's dashboard: asks for an API key, then shows the workspace's
// feedback for a time range and a metadata filter, read from the analytics
// endpoints (which answer from rollups in milliseconds even over millions
// of rows) and one page of the feedback listing. It never reads more than
// one page of raw feedback. It also lists the workspace's webhooks with
// their recent failed deliveries.
//
// Sections load independently, so a slow grouping (which counts distinct
// trace ids over every matching row) never holds back the charts; a new
// filter aborts whatever is still loading for the old one.
import { get, ApiError } from './api.js';
import { isoLocal, presets, range, toInputValue } from './time.js';
import { volumeChart, weightedChart, scoreChart } from './charts.js';

const KEY_STORAGE = 'feedbackd.apiKey';
const GROUP_PAGE_SIZE = 10;
const LATEST_PAGE_SIZE = 10;
// The failed attempts shown per webhook: enough to see what goes wrong and
// since when.
const WEBHOOK_FAILURES = 5;

const $ = (id) => document.getElementById(id);
const integer = new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 });
const percent = new Intl.NumberFormat(undefined, { style: 'percent', maximumFractionDigits: 1 });
const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });
const dateTimeSeconds = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });

const state = {
  key: null,
  // The query every section reads, set by apply().
  query: null,
  groupPage: 0,
  // latestCursors[i] is the cursor of page i of the latest feedback.
  latestCursors: [null],
  latestPage: 0,
  loads: 0,
  // bucketSeconds is the size of the graphs' buckets on screen.
  bucketSeconds: 3600,
  controllers: { graphs: null, models: null, groups: null, latest: null, webhooks: null },
};

let charts = null;

// el builds an element with attributes/properties and children.
function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (name === 'dataset') Object.assign(node.dataset, value);
    else if (name in node && name !== 'list') node[name] = value;
    else node.setAttribute(name, value);
  }
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
}

function showError(message) {
  const box = $('error');
  box.textContent = message ?? '';
  box.hidden = !message;
}

// --- the key ---------------------------------------------------------------

function showLogin(message) {
  abortAll();
  $('dashboard').hidden = true;
  $('refresh').hidden = true;
  $('sign-out').hidden = true;
  $('updated').textContent = '';
  $('login').hidden = false;
  showError(message);
  $('key-input').focus();
}

function showDashboard() {
  $('login').hidden = true;
  $('dashboard').hidden = false;
  $('refresh').hidden = false;
  $('sign-out').hidden = false;
  showError(null);
  charts ??= {
    volume: volumeChart($('volume-chart')),
    weighted: weightedChart($('weighted-chart'), () => state.bucketSeconds / 2),
    scores: scoreChart($('scores-chart')),
  };
}

// forgetKey drops the key, for a refused key as for "Forget key".
function forgetKey(message) {
  state.key = null;
  sessionStorage.removeItem(KEY_STORAGE);
  showLogin(message);
}

$('key-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const key = $('key-input').value.trim();
  if (!key) return showError('Enter an API key.');
  $('key-input').value = '';
  state.key = key;
  sessionStorage.setItem(KEY_STORAGE, key);
  showDashboard();
  apply({ webhooks: true });
});

$('sign-out').addEventListener('click', () => forgetKey(null));
$('refresh').addEventListener('click', () => apply({ webhooks: true }));

// --- the filter --------------------------------------------------------------

function selectedPreset() {
  return document.querySelector('input[name="range"]:checked')?.value ?? '7d';
}

// parseMetadata reads the filter field: empty, or a JSON object. The
// server judges the values (and says what is wrong with them).
function parseMetadata(text) {
  text = text.trim();
  if (!text) return null;
  let value;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new Error(`The metadata filter is not valid JSON: ${err.message}`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new Error('The metadata filter must be a JSON object, such as {"_user": "user_123"}.');
  }
  return Object.keys(value).length ? value : null;
}

function setMetadata(obj) {
  $('metadata').value = obj && Object.keys(obj).length ? JSON.stringify(obj) : '';
}

function currentMetadata() {
  try {
    return parseMetadata($('metadata').value) ?? {};
  } catch {
    return {};
  }
}

function addPair(key, value) {
  const obj = currentMetadata();
  obj[key] = value;
  setMetadata(obj);
}

$('meta-add').addEventListener('click', () => {
  const key = $('meta-key').value.trim();
  if (!key) return showError('Enter a metadata key to add to the filter.');
  try {
    parseMetadata($('metadata').value);
  } catch (err) {
    return showError(err.message);
  }
  addPair(key, $('meta-value').value);
  $('meta-key').value = '';
  $('meta-value').value = '';
  apply();
});

function renderChips(metadata) {
  const chips = Object.entries(metadata ?? {}).map(([key, value]) => el('span', { className: 'chip' },
    el('b', {}, key), ' = ', typeof value === 'string' ? value : JSON.stringify(value),
    el('button', {
      type: 'button', className: 'chip-remove', title: `remove ${key}`, ariaLabel: `remove ${key} from the filter`,
      onclick: () => {
        const obj = currentMetadata();
        delete obj[key];
        setMetadata(obj);
        apply();
      },
    }, '×')));
  $('chips').replaceChildren(...chips);
}

for (const radio of document.querySelectorAll('input[name="range"]')) {
  radio.addEventListener('change', () => {
    const custom = selectedPreset() === 'custom';
    $('custom-range').hidden = !custom;
    if (custom) {
      // Start from the range on screen, to adjust rather than retype.
      if (state.query && !$('custom-from').value) {
        $('custom-from').value = toInputValue(state.query.from);
        $('custom-to').value = toInputValue(state.query.to);
      }
      $('custom-from').focus();
      return; // applied with the Apply button
    }
    apply();
  });
}
$('granularity').addEventListener('change', () => apply());
$('filters').addEventListener('submit', (event) => {
  event.preventDefault();
  apply();
});

// apply reads the filter form and reloads every section the filter
// applies to; with webhooks (a new key, Refresh) the webhooks too, which
// no range or filter changes.
function apply({ webhooks = false } = {}) {
  if (!state.key) return;
  let query;
  try {
    const preset = selectedPreset();
    const { from, to } = range(preset, $('custom-from').value, $('custom-to').value);
    query = { preset, from, to, metadata: parseMetadata($('metadata').value), granularity: $('granularity').value || null };
  } catch (err) {
    return showError(err.message);
  }
  showError(null);
  state.query = query;
  state.groupPage = 0;
  state.latestCursors = [null];
  state.latestPage = 0;
  renderChips(query.metadata);
  const label = query.preset === 'custom' ? 'Custom range' : presets[query.preset].label;
  $('range-label').textContent = `${label}: ${dateTime.format(query.from)} – ${dateTime.format(query.to)}`;
  const sections = [loadGraphs(), loadModels(), loadGroups(), loadLatest()];
  if (webhooks) sections.push(loadWebhooks());
  Promise.allSettled(sections).then(() => {
    if (state.query !== query || !state.key) return; // a newer apply() owns the page
    // Tests and people alike can tell a finished load from this count.
    $('dashboard').dataset.loads = String(++state.loads);
    $('updated').textContent = `Updated ${dateTimeSeconds.format(new Date())}`;
  });
}

// analyticsParams are the parameters all analytics calls share.
function analyticsParams() {
  const q = state.query;
  return {
    time_of_generation_min: isoLocal(q.from),
    time_of_generation_max: isoLocal(q.to),
    metadata: q.metadata ? JSON.stringify(q.metadata) : null,
  };
}

// --- loading ------------------------------------------------------------------

function abortAll() {
  for (const name of Object.keys(state.controllers)) {
    state.controllers[name]?.abort();
    state.controllers[name] = null;
  }
}

// section runs load for the named section's panels: marks them busy,
// aborts the section's previous load, and shows the failure in the panels
// (a refused key sends the user back to the key form).
async function section(name, panels, load) {
  state.controllers[name]?.abort();
  const controller = new AbortController();
  state.controllers[name] = controller;
  for (const panel of panels) {
    panel.setAttribute('aria-busy', 'true');
    panel.querySelector('.panel-error').hidden = true;
  }
  try {
    await load(controller.signal);
  } catch (err) {
    if (err.name === 'AbortError' || controller.signal.aborted) return;
    if (err instanceof ApiError && err.status === 401) return forgetKey(err.describe());
    const message = err instanceof ApiError ? err.describe() : `The dashboard failed: ${err.message}`;
    for (const panel of panels) {
      const box = panel.querySelector('.panel-error');
      box.textContent = message;
      box.hidden = false;
    }
  } finally {
    // Unless a newer load of this section has taken over, it is done.
    if (state.controllers[name] === controller || state.controllers[name] === null) {
      state.controllers[name] = null;
      for (const panel of panels) panel.setAttribute('aria-busy', 'false');
    }
  }
}

function setFigure(id, value, text) {
  const out = $(id);
  out.dataset.value = value === null ? '' : String(value);
  out.textContent = text;
}

// bucketSeconds is the bucket size the server picks for a query, as
// openapi.yaml says: the granularity asked for, else an hour up to 2 days,
// a day up to 90 days, a week beyond.
function bucketSeconds(q) {
  const sizes = { hour: 3600, day: 86400, week: 7 * 86400 };
  if (q.granularity) return sizes[q.granularity];
  const span = q.to - q.from;
  if (span <= 2 * 86400e3) return sizes.hour;
  return span <= 90 * 86400e3 ? sizes.day : sizes.week;
}

function loadGraphs() {
  const panels = [$('summary'), $('volume-panel'), $('weighted-panel'), $('scores-panel')];
  return section('graphs', panels, async (signal) => {
    const params = analyticsParams();
    const timed = { ...params, granularity: state.query.granularity };
    const [volume, weighted, scores] = await Promise.all([
      get(state.key, '/analytics/graphs/feedbacks', timed, signal),
      get(state.key, '/analytics/graphs/feedbacks/weighted', timed, signal),
      get(state.key, '/analytics/graphs/feedbacks/scores', params, signal),
    ]);
    const total = volume.summary.total;
    const byScore = new Map(scores.data_points.map((p) => [p.score, p.total]));
    let positive = 0;
    let negative = 0;
    for (const [score, n] of byScore) {
      if (score > 0) positive += n;
      if (score < 0) negative += n;
    }
    setFigure('total', total, integer.format(total));
    setFigure('avg', total ? weighted.summary.avg : null, total ? weighted.summary.avg.toFixed(2) : '-');
    setFigure('positive', total ? positive : null, total ? `${percent.format(positive / total)} (${integer.format(positive)})` : '-');
    setFigure('negative', total ? negative : null, total ? `${percent.format(negative / total)} (${integer.format(negative)})` : '-');

    // Buckets: the two graphs share their timestamps. An empty bucket's
    // average is drawn as a gap: the API's 0 there means "no feedback".
    const xs = volume.data_points.map((p) => Date.parse(p.timestamp) / 1000);
    const counts = volume.data_points.map((p) => p.total);
    const avgs = weighted.data_points.map((p, i) => (counts[i] ? p.avg : null));
    // Buckets are whole hours, days or weeks in a fixed offset: all the same size.
    const size = xs.length > 1 ? xs[1] - xs[0] : bucketSeconds(state.query);
    state.bucketSeconds = size;
    // The x axis spans whole buckets; a bar fills its bucket from its start.
    const xRange = [xs[0], xs[xs.length - 1] + size];
    // Zero-height bars would still draw a line: no feedback, no bar.
    charts.volume.set([xs, counts.map((n) => n || null)], { empty: total === 0, xRange });
    charts.weighted.set([xs.map((x) => x + size / 2), avgs], { empty: total === 0, xRange });
    $('buckets-table').tBodies[0].replaceChildren(...volume.data_points.map((p, i) => el('tr', {
      dataset: { timestamp: p.timestamp, total: String(p.total), avg: avgs[i] === null ? '' : String(avgs[i]) },
    }, el('td', {}, dateTime.format(new Date(p.timestamp))),
    el('td', { className: 'num' }, integer.format(p.total)),
    el('td', { className: 'num' }, avgs[i] === null ? '-' : avgs[i].toFixed(2)))));

    const scoreXs = [];
    const neg = [];
    const zero = [];
    const pos = [];
    for (let s = -10; s <= 10; s++) {
      const n = byScore.get(s) ?? 0;
      scoreXs.push(s);
      neg.push(s < 0 && n ? n : null);
      zero.push(s === 0 && n ? n : null);
      pos.push(s > 0 && n ? n : null);
    }
    charts.scores.set([scoreXs, neg, zero, pos], { empty: total === 0 });
    $('scores-table').tBodies[0].replaceChildren(...scoreXs.map((s) => {
      const n = byScore.get(s) ?? 0;
      return el('tr', { dataset: { score: String(s), total: String(n) } },
        el('td', { className: 'num' }, String(s)),
        el('td', { className: 'num' }, integer.format(n)),
        el('td', { className: 'num' }, total ? percent.format(n / total) : '-'));
    }));
  });
}

// loadModels shows Portkey's ai-models graph: one row per model, most
// feedback first as the server orders them. Its own section, because with
// a metadata filter the server reads the rows in range rather than rollups.
function loadModels() {
  return section('models', [$('models-panel')], async (signal) => {
    const res = await get(state.key, '/analytics/graphs/feedbacks/ai-models', analyticsParams(), signal);
    const points = res.data_points;
    // The summary counts only feedback that names a model, so it is not the
    // range's total: say what it counts.
    $('models-total').dataset.value = String(res.summary.total);
    $('models-total').textContent = `${integer.format(points.length)} ${points.length === 1 ? 'model' : 'models'}, `
      + `${integer.format(res.summary.total)} feedback`;
    const rows = points.map((p) => el('tr', {
      dataset: { model: p.ai_model, total: String(p.total), avg: String(p.avg_weighted_feedback) },
    }, el('td', {}, p.ai_model),
    el('td', { className: 'num' }, integer.format(p.total)),
    el('td', { className: 'num' }, p.avg_weighted_feedback.toFixed(2))));
    if (!rows.length) {
      rows.push(el('tr', {}, el('td', { colSpan: 3, className: 'muted' },
        'No feedback in this range names a model (by default metadata ai_model or model).')));
    }
    $('models-table').tBodies[0].replaceChildren(...rows);
  });
}

function groupKey() {
  const choice = $('group-key').value;
  return choice === 'other' ? $('group-key-other').value.trim() : choice;
}

function loadGroups() {
  return section('groups', [$('groups-panel')], async (signal) => {
    const key = groupKey();
    $('groups-key-head').textContent = key || 'value';
    if (!key) {
      $('groups-table').tBodies[0].replaceChildren();
      $('groups-total').textContent = 'Type a metadata key to group by.';
      return;
    }
    const page = state.groupPage;
    const res = await get(state.key, `/analytics/groups/metadata/${encodeURIComponent(key)}`,
      { ...analyticsParams(), current_page: page, page_size: GROUP_PAGE_SIZE }, signal);
    const pages = Math.max(1, Math.ceil(res.total / GROUP_PAGE_SIZE));
    $('groups-total').dataset.value = String(res.total);
    $('groups-total').textContent = `${integer.format(res.total)} ${res.total === 1 ? 'value' : 'values'}`;
    $('groups-page').textContent = `page ${page + 1} of ${pages}`;
    $('groups-prev').disabled = page === 0;
    $('groups-next').disabled = page + 1 >= pages;
    const rows = res.data.map((g) => el('tr', {
      dataset: { value: g.metadata_value, requests: String(g.requests), avg: String(g.avg_weighted_feedback) },
    }, el('td', {}, el('button', {
      type: 'button', className: 'link', title: `filter by ${key} = ${g.metadata_value}`,
      onclick: () => {
        addPair(key, g.metadata_value);
        apply();
      },
    }, g.metadata_value)),
    el('td', { className: 'num' }, integer.format(g.requests)),
    el('td', { className: 'num' }, g.avg_weighted_feedback.toFixed(2)),
    el('td', {}, dateTime.format(new Date(g.last_seen)))));
    if (!rows.length) rows.push(el('tr', {}, el('td', { colSpan: 4, className: 'muted' }, `No feedback with ${key} in this range.`)));
    $('groups-table').tBodies[0].replaceChildren(...rows);
  });
}

$('group-key').addEventListener('change', () => {
  const other = $('group-key').value === 'other';
  $('group-key-other').hidden = !other;
  if (other) {
    $('group-key-other').focus();
    if (!$('group-key-other').value.trim()) return;
  }
  state.groupPage = 0;
  loadGroups();
});
$('group-key-other').addEventListener('change', () => {
  state.groupPage = 0;
  loadGroups();
});
$('groups-prev').addEventListener('click', () => {
  state.groupPage = Math.max(0, state.groupPage - 1);
  loadGroups();
});
$('groups-next').addEventListener('click', () => {
  state.groupPage += 1;
  loadGroups();
});

function metadataCell(metadata) {
  const entries = Object.entries(metadata ?? {});
  if (!entries.length) return el('td', { className: 'muted' }, '—');
  return el('td', { className: 'meta' }, ...entries.map(([k, v]) => {
    const text = typeof v === 'string' ? v : JSON.stringify(v);
    const short = text.length > 60 ? `${text.slice(0, 57)}…` : text;
    return el('span', { className: 'kv', title: `${k}: ${text}` }, el('b', {}, k), ' ', short);
  }));
}

function valueClass(v) {
  if (v > 0) return 'score positive';
  if (v < 0) return 'score negative';
  return 'score neutral';
}

function loadLatest() {
  return section('latest', [$('latest-panel')], async (signal) => {
    const q = state.query;
    const page = state.latestPage;
    // A preset ends now, so the newest feedback of all is the newest of
    // the range: ask without time bounds and stop at the range's start.
    // With bounds the store reads every row of the range to sort it
    // (seconds for a million rows); without, it reads one page by id.
    const endsNow = q.preset !== 'custom';
    const res = await get(state.key, '/feedback', {
      limit: LATEST_PAGE_SIZE,
      cursor: state.latestCursors[page],
      metadata: q.metadata ? JSON.stringify(q.metadata) : null,
      created_after: endsNow ? null : q.from.toISOString(),
      // The listing's end is exclusive, the analytics' inclusive.
      created_before: endsNow ? null : new Date(q.to.getTime() + 1).toISOString(),
    }, signal);
    let items = res.data;
    let more = res.has_more;
    if (endsNow) {
      items = res.data.filter((f) => {
        const t = Date.parse(f.created_at);
        return t >= q.from.getTime() && t <= q.to.getTime();
      });
      // Past the range's start, nothing older belongs to it.
      const oldest = res.data.at(-1);
      if (oldest && Date.parse(oldest.created_at) < q.from.getTime()) more = false;
    }
    state.latestCursors[page + 1] = more ? res.next_cursor : undefined;
    $('latest-newer').disabled = page === 0;
    $('latest-older').disabled = !more;
    $('latest-page').textContent = `page ${page + 1}`;
    const rows = items.map((f) => el('tr', { dataset: { id: f.id, value: String(f.value), weight: String(f.weight) } },
      el('td', { title: f.created_at }, dateTimeSeconds.format(new Date(f.created_at))),
      el('td', { className: 'trace', title: `trace ${f.trace_id}, feedback ${f.id}` }, f.trace_id),
      el('td', { className: 'num' }, el('span', { className: valueClass(f.value) }, String(f.value))),
      el('td', { className: 'num' }, String(f.weight)),
      metadataCell(f.metadata)));
    if (!rows.length) rows.push(el('tr', {}, el('td', { colSpan: 5, className: 'muted' }, 'No feedback in this range.')));
    $('latest-table').tBodies[0].replaceChildren(...rows);
  });
}

$('latest-older').addEventListener('click', () => {
  if (!state.latestCursors[state.latestPage + 1]) return;
  state.latestPage += 1;
  loadLatest();
});
$('latest-newer').addEventListener('click', () => {
  state.latestPage = Math.max(0, state.latestPage - 1);
  loadLatest();
});

// --- webhooks ----------------------------------------------------------------

const outcomes = { retrying: 'retrying', gave_up: 'gave up', gone: 'gone' };

// failuresTable shows a webhook's newest failed attempts (the API's
// outcome=failed), and whether its newest attempt of all was delivered,
// which tells a recovered receiver from one that still fails.
function failuresTable(failures, more, newest) {
  if (!newest) return el('p', { className: 'muted failures-note' }, 'No delivery attempts yet.');
  if (!failures.length) return el('p', { className: 'muted failures-note' }, 'No failed attempts.');
  const note = `${more ? 'The newest ' : ''}${integer.format(failures.length)} failed ${failures.length === 1 ? 'attempt' : 'attempts'}`
    + (newest.outcome === 'delivered' ? '; the newest attempt was delivered:' : ':');
  const time = (at) => (at ? el('td', { title: at }, dateTimeSeconds.format(new Date(at))) : el('td', { className: 'muted' }, '—'));
  return el('div', {},
    el('p', { className: 'failures-note' }, note),
    el('table', { className: 'data failures' },
      el('thead', {}, el('tr', {}, ...['Attempted', 'Event', 'Outcome', 'Status', 'Error', 'Next attempt']
        .map((h) => el('th', { className: h === 'Status' ? 'num' : '' }, h)))),
      el('tbody', {}, ...failures.map((a) => el('tr', {
        dataset: { eventId: a.event_id, outcome: a.outcome, statusCode: a.status_code === undefined ? '' : String(a.status_code) },
      }, time(a.attempted_at),
      el('td', { title: `event ${a.event_id}` }, `${a.type} #${a.attempt}`),
      el('td', {}, el('span', { className: `outcome ${a.outcome}` }, outcomes[a.outcome] ?? a.outcome)),
      el('td', { className: 'num' }, a.status_code === undefined ? '—' : String(a.status_code)),
      el('td', { className: 'error-text' }, a.error ?? '—'),
      time(a.next_attempt_at))))));
}

// webhookCard shows one webhook: where it delivers, what, its state (and
// why it is disabled), and its recent failures. The API never lists a
// webhook's secret, and the page shows only these members.
function webhookCard(w) {
  const filter = Object.keys(w.filter ?? {}).length ? JSON.stringify(w.filter) : null;
  return el('article', { className: 'webhook', dataset: { id: w.id, status: w.status } },
    el('div', { className: 'webhook-head' },
      el('span', { className: 'url' }, w.url),
      el('span', { className: `status ${w.status}` }, w.status),
      w.status_reason ? el('span', { className: 'reason' }, w.status_reason) : null,
      el('span', { className: 'spacer' }),
      el('span', { className: 'muted created', title: w.created_at }, `created ${dateTime.format(new Date(w.created_at))}`)),
    el('div', { className: 'meta events' },
      ...w.events.map((e) => el('span', { className: 'kv' }, e)),
      filter ? el('span', { className: 'kv', title: 'only feedback that matches' }, el('b', {}, 'filter'), ' ', filter) : null,
      w.description ? el('span', { className: 'muted' }, w.description) : null),
    failuresTable(w.failures, w.more, w.newest));
}

// loadWebhooks lists the workspace's webhooks, oldest first as the API
// does, each with its newest failed attempts and its newest attempt.
function loadWebhooks() {
  return section('webhooks', [$('webhooks-panel')], async (signal) => {
    const list = await get(state.key, '/webhooks', {}, signal);
    const hooks = await Promise.all(list.data.map(async (w) => {
      try {
        const path = `/webhooks/${encodeURIComponent(w.id)}/deliveries`;
        const [failed, newest] = await Promise.all([
          get(state.key, path, { outcome: 'failed', limit: WEBHOOK_FAILURES }, signal),
          get(state.key, path, { limit: 1 }, signal)]);
        return { ...w, failures: failed.data, more: failed.has_more, newest: newest.data[0] };
      } catch (err) {
        // Deleted since the list was read: gone from the panel too.
        if (err instanceof ApiError && err.status === 404) return null;
        throw err;
      }
    }));
    const shown = hooks.filter((w) => w !== null);
    $('webhooks-total').dataset.value = String(shown.length);
    $('webhooks-total').textContent = shown.length ? `${integer.format(shown.length)} ${shown.length === 1 ? 'webhook' : 'webhooks'}` : '';
    $('webhooks-empty').hidden = shown.length > 0;
    $('webhooks-hint').hidden = shown.length === 0;
    $('webhooks-list').replaceChildren(...shown.map(webhookCard));
  });
}

// The empty state's example request names this server, and a placeholder
// for the key: the page never writes the key anywhere.
$('webhooks-curl').textContent = `curl ${location.origin}/v1/webhooks -H "x-portkey-api-key: $FEEDBACKD_API_KEY" \\
  -H 'Content-Type: application/json' \\
  -d '{"url": "https://example.com/feedbackd", "events": ["feedback.created", "feedback.updated", "feedback.deleted"]}'`;

// --- start -------------------------------------------------------------------

state.key = sessionStorage.getItem(KEY_STORAGE);
if (state.key) {
  showDashboard();
  apply({ webhooks: true });
} else {
  showLogin(null);
}
