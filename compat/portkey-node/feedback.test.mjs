// Portkey's official Node SDK (npm portkey-ai, pinned in package.json)
// against a real feedbackd on loopback. Every call goes through the SDK
// exactly as an application would make it, pointed at feedbackd by its
// base URL alone; after each call the test reads what was stored back over
// HTTP and checks every field. The analytics graphs are read through the
// SDK too, as a Portkey user reads them.
//
// FEEDBACKD_BIN names the feedbackd binary (make builds bin/feedbackd).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { resolve } from 'node:path';
import { Portkey } from 'portkey-ai';
import { startFeedbackd } from '../feedbackd.mjs';

const bin = process.env.FEEDBACKD_BIN ?? resolve('../../bin/feedbackd');
const key = 'fbk_portkey_node_compat_' + 'x'.repeat(20);
let stop, base, portkey;

before(async () => {
  ({ base, stop } = await startFeedbackd(bin, key));
  // The only change from a Portkey setup: the base URL.
  portkey = new Portkey({ apiKey: key, baseURL: `${base}/v1` });
});

after(() => stop?.());

// stored reads a feedback back with feedbackd's own read API.
async function stored(id) {
  const res = await fetch(`${base}/v1/feedback/${id}`, { headers: { 'x-portkey-api-key': key } });
  assert.equal(res.status, 200, `GET /v1/feedback/${id}`);
  return res.json();
}

function assertStored(got, want) {
  assert.equal(got.trace_id, want.trace_id);
  assert.equal(got.value, want.value);
  assert.equal(got.weight, want.weight);
  assert.deepEqual(got.metadata, want.metadata);
  assert.match(got.id, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.ok(!Number.isNaN(Date.parse(got.created_at)), 'created_at is a date');
  assert.ok(!Number.isNaN(Date.parse(got.updated_at)), 'updated_at is a date');
}

function assertSuccess(res, n) {
  assert.equal(res.status, 'success');
  assert.equal(typeof res.message, 'string');
  assert.equal(res.feedback_ids.length, n);
  return res.feedback_ids;
}

test('create with camelCase traceID, as Portkey documents', async () => {
  const [id] = assertSuccess(await portkey.feedback.create({ traceID: 'node-camel', value: 5 }), 1);
  assertStored(await stored(id), { trace_id: 'node-camel', value: 5, weight: 1, metadata: {} });
});

test('create with snake_case trace_id, weight and metadata', async () => {
  const metadata = { _user: 'user_123', _organisation: 'org_9', _prompt: 'support-v2', _environment: 'production', nested: { tags: ['a', 'b'], n: 1.5, ok: true } };
  const res = await portkey.feedback.create({ trace_id: 'node-snake', value: -10, weight: 0.25, metadata });
  const [id] = assertSuccess(res, 1);
  assertStored(await stored(id), { trace_id: 'node-snake', value: -10, weight: 0.25, metadata });
});

test('create with weight 0 and boundary values', async () => {
  for (const value of [-10, 0, 10]) {
    const [id] = assertSuccess(await portkey.feedback.create({ traceID: `node-bound-${value}`, value, weight: 0 }), 1);
    assertStored(await stored(id), { trace_id: `node-bound-${value}`, value, weight: 0, metadata: {} });
  }
});

test('create with an array records every item, in order, atomically', async () => {
  // The SDK sends an array as {"0": {...}, "1": {...}} with the items' keys
  // as the caller wrote them; feedbackd's spec accepts that shape.
  const items = [
    { traceID: 'node-bulk-0', value: 1 },
    { trace_id: 'node-bulk-1', value: -1, weight: 0.5, metadata: { _user: 'u1' } },
    { traceID: 'node-bulk-2', value: 10, metadata: { k: 'v' } },
  ];
  const ids = assertSuccess(await portkey.feedback.create(items), 3);
  assertStored(await stored(ids[0]), { trace_id: 'node-bulk-0', value: 1, weight: 1, metadata: {} });
  assertStored(await stored(ids[1]), { trace_id: 'node-bulk-1', value: -1, weight: 0.5, metadata: { _user: 'u1' } });
  assertStored(await stored(ids[2]), { trace_id: 'node-bulk-2', value: 10, weight: 1, metadata: { k: 'v' } });

  // One invalid item: the SDK gets a 400 and nothing is stored.
  await assert.rejects(
    portkey.feedback.create([{ traceID: 'node-bulk-bad', value: 1 }, { traceID: 'node-bulk-bad', value: 11 }]),
    (err) => err.status === 400,
  );
  const res = await fetch(`${base}/v1/feedback?trace_id=node-bulk-bad`, { headers: { 'x-portkey-api-key': key } });
  assert.deepEqual((await res.json()).data, []);
});

test('update through feedbackID changes what was sent and keeps the rest', async () => {
  const [id] = assertSuccess(await portkey.feedback.create({ traceID: 'node-update', value: 3, weight: 0.5, metadata: { _user: 'u' } }), 1);
  const before = await stored(id);

  // The SDK sends PUT /feedback/{id} with feedback_id also in the body.
  assert.deepEqual(assertSuccess(await portkey.feedback.update({ feedbackID: id, value: -4 }), 1), [id]);
  let got = await stored(id);
  assertStored(got, { trace_id: 'node-update', value: -4, weight: 0.5, metadata: { _user: 'u' } });
  assert.equal(got.created_at, before.created_at);
  assert.ok(Date.parse(got.updated_at) >= Date.parse(before.updated_at));

  assertSuccess(await portkey.feedback.update({ feedbackID: id, value: 7, weight: 1, metadata: { reason: 'fixed' } }), 1);
  got = await stored(id);
  assertStored(got, { trace_id: 'node-update', value: 7, weight: 1, metadata: { reason: 'fixed' } });
});

test('per-call Portkey options become x-portkey-* headers that are accepted and ignored', async () => {
  const res = await portkey.feedback.create(
    { traceID: 'node-headers', value: 2 },
    { traceID: 'some-request-trace', metadata: { _user: 'from-header' }, debug: false, cacheForceRefresh: true },
  );
  const [id] = assertSuccess(res, 1);
  assertStored(await stored(id), { trace_id: 'node-headers', value: 2, weight: 1, metadata: {} });
});

test('errors reach the SDK with their HTTP status', async () => {
  await assert.rejects(portkey.feedback.create({ traceID: 'x', value: 11 }), (err) => err.status === 400);
  await assert.rejects(portkey.feedback.create({ traceID: 'x', value: 1.5 }), (err) => err.status === 400);
  await assert.rejects(portkey.feedback.create({ value: 1 }), (err) => err.status === 400);
  await assert.rejects(portkey.feedback.update({ feedbackID: '0192f5a4-8c1e-7b3a-9d2f-5e6a7b8c9d0e', value: 1 }), (err) => err.status === 404);
  const stranger = new Portkey({ apiKey: 'fbk_not_a_key', baseURL: `${base}/v1` });
  await assert.rejects(stranger.feedback.create({ traceID: 'x', value: 1 }), (err) => err.status === 401);
});

// range is the last hour and the next, as the analytics calls take it.
function range() {
  const now = Date.now();
  return {
    time_of_generation_min: new Date(now - 3600e3).toISOString(),
    time_of_generation_max: new Date(now + 3600e3).toISOString(),
  };
}

// The models of the analytics tests below, recorded once through the SDK.
// A feedback's model is metadata ai_model, else model; its provider
// ai_provider. By construction: gpt-4o 2 feedback ((8 + 4 x 0.5) / 2 = 5),
// claude-sonnet-4 1 (-6); the other tests' feedback names no model.
let modelsRecorded = null;
function recordModels() {
  modelsRecorded ??= portkey.feedback.create([
    { traceID: 'node-models-1', value: 8, metadata: { ai_model: 'gpt-4o', ai_provider: 'openai' } },
    { traceID: 'node-models-2', value: 4, weight: 0.5, metadata: { ai_model: 'gpt-4o', model: 'claude-sonnet-4', ai_provider: 'azure' } },
    { traceID: 'node-models-3', value: -6, metadata: { model: 'claude-sonnet-4', ai_provider: 'anthropic' } },
  ]).then((res) => assertSuccess(res, 3));
  return modelsRecorded;
}

// points drops what the SDK adds to an answer (getHeaders).
const points = (graph) => graph.data_points.map((p) => ({ ...p }));

test('analytics.graphs.feedback_ai_models answers feedback per model, most first', async () => {
  await recordModels();
  const graph = await portkey.analytics.graphs.feedback_ai_models(range());
  assert.equal(graph.object, 'analytics-graph');
  assert.deepEqual(points(graph), [
    { ai_model: 'gpt-4o', total: 2, avg_weighted_feedback: 5 },
    { ai_model: 'claude-sonnet-4', total: 1, avg_weighted_feedback: -6 },
  ]);
  assert.equal(graph.summary.total, 3, 'the summary counts the feedback that names a model');
});

test('ai_org_model passed through the SDK filters the other graphs by provider__model', async () => {
  await recordModels();
  // openai__gpt-4o: gpt-4o from openai, not from azure; anthropic__claude-sonnet-4: the third.
  const ai_org_model = 'openai__gpt-4o,anthropic__claude-sonnet-4';
  const volume = await portkey.analytics.graphs.feedbacks({ ...range(), ai_org_model });
  assert.equal(volume.summary.total, 2);
  assert.equal(volume.data_points.reduce((n, p) => n + p.total, 0), 2, 'the buckets add up to the summary');
  const weighted = await portkey.analytics.graphs.feedbacks_weighted({ ...range(), ai_org_model });
  assert.equal(weighted.summary.avg, (8 - 6) / 2);
  const models = await portkey.analytics.graphs.feedback_ai_models({ ...range(), ai_org_model: 'openai__gpt-4o' });
  assert.deepEqual(points(models), [{ ai_model: 'gpt-4o', total: 1, avg_weighted_feedback: 8 }]);
});

test('analytics.graphs.feedbacks_score, at the path this SDK requests (/score), counts per score', async () => {
  await recordModels();
  const ai_org_model = 'openai__gpt-4o,anthropic__claude-sonnet-4';
  const scores = await portkey.analytics.graphs.feedbacks_score({ ...range(), ai_org_model });
  assert.equal(scores.summary.total, 2);
  assert.deepEqual(scores.data_points.map((p) => ({ ...p })), [{ score: -6, total: 1 }, { score: 8, total: 1 }]);
});
