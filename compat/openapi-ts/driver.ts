// The typed driver: it calls every operation of feedbackd through the
// client @hey-api/openapi-ts generated, with default settings, from the
// spec a running server serves, and checks each answer. client.test.mjs
// copies it next to the generated client/ folder, type-checks both with
// strict tsc, compiles them and calls run.
//
// It uses only what the generated client exports, as an application would:
// the SDK functions and types from ./client, the default client instance
// (configured with the server's URL and a key), and createClient for a
// second instance without a key.
import {
  createFeedback,
  createFeedbackToken,
  createWebhook,
  deleteFeedback,
  deleteWebhook,
  eraseFeedback,
  getFeedback,
  getFeedbackGraph,
  getFeedbackAiModelGraph,
  getFeedbackScoreGraph,
  getFeedbackScoreGraphSingular,
  getHealth,
  getMetadataGroups,
  getReadiness,
  getWebhook,
  getWeightedFeedbackGraph,
  listFeedback,
  listWebhookDeliveries,
  listWebhooks,
  redeliverWebhookEvent,
  rotateWebhookSecret,
  submitFeedbackWithToken,
  updateFeedback,
  updateFeedbackByPost,
  updateWebhook,
  type Feedback,
  type FeedbackResponse,
  type MetadataGroup,
} from './client';
import { client } from './client/client.gen';
import { createClient, createConfig } from './client/client';

// Result is what an SDK function resolves to (without throwOnError).
type Result<T, E> = { data?: T; error?: E; response?: Response };

// ok returns the data of an answer with the status wanted, or throws.
function ok<T, E>(what: string, r: Result<T, E>, status = 200): T {
  if (r.response?.status !== status || r.data === undefined) {
    throw new Error(`${what}: got ${r.response?.status} ${JSON.stringify(r.error)}, want ${status}`);
  }
  return r.data;
}

// failed returns the typed Error body of an answer that must fail with status.
function failed<T, E>(what: string, r: Result<T, E>, status: number): E {
  if (r.response?.status !== status || r.error === undefined) {
    throw new Error(`${what}: got ${r.response?.status} ${JSON.stringify(r.data)}, want ${status}`);
  }
  return r.error;
}

// answered checks only the status of an answer without a body (202, 204).
function answered<T, E>(what: string, r: Result<T, E>, status: number): void {
  if (r.response?.status !== status) {
    throw new Error(`${what}: got ${r.response?.status} ${JSON.stringify(r.error)}, want ${status}`);
  }
}

function same(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a), kb = Object.keys(b);
  return ka.length === kb.length &&
    ka.every((k) => same((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}

function equal(what: string, got: unknown, want: unknown): void {
  if (!same(got, want)) {
    throw new Error(`${what}: got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`);
  }
}

const uuidV7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

function ids(what: string, r: FeedbackResponse, n: number): string[] {
  equal(`${what} status`, r.status, 'success');
  equal(`${what} ids`, r.feedback_ids.length, n);
  for (const id of r.feedback_ids) {
    if (!uuidV7.test(id)) throw new Error(`${what}: id ${id} is not a UUIDv7`);
  }
  return r.feedback_ids;
}

function stored(what: string, f: Feedback, want: Pick<Feedback, 'trace_id' | 'value' | 'weight' | 'metadata'>): void {
  equal(what, { trace_id: f.trace_id, value: f.value, weight: f.weight, metadata: f.metadata }, want);
  for (const t of [f.created_at, f.updated_at]) {
    if (Number.isNaN(Date.parse(t))) throw new Error(`${what}: ${t} is not a time`);
  }
}

// Hook is the suite's webhook receiver on loopback: its URL, and how
// many deliveries it has had.
export type Hook = { url: string; received: () => number };

// waitUntil polls cond every 100 ms, failing after a minute (a hang
// guard, no figure of feedbackd's).
async function waitUntil(what: string, cond: () => Promise<boolean> | boolean): Promise<void> {
  for (const deadline = Date.now() + 60_000; !(await cond());) {
    if (Date.now() > deadline) throw new Error(`${what}: not within a minute`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

// run drives the server at base (http://127.0.0.1:PORT) with key, its
// webhooks delivering to hook, and returns each call the client made, as
// "METHOD /path/{template}" with the status it got.
export async function run(base: string, key: string, hook: Hook): Promise<string[]> {
  const calls: string[] = [];
  client.setConfig({ baseUrl: `${base}/v1`, auth: () => key });
  const keyless = createClient(createConfig({ baseUrl: `${base}/v1` }));
  for (const c of [client, keyless]) {
    c.interceptors.response.use((res, _req, opts) => {
      calls.push(`${opts.method} ${opts.url} ${res.status}`);
      return res;
    });
  }

  // The probes, without a key, where the spec (and so the client) has them.
  equal('getHealth', ok('getHealth', await getHealth({ client: keyless })), { status: 'ok' });
  equal('getReadiness', ok('getReadiness', await getReadiness({ client: keyless })), { status: 'ok' });

  // Record one, then two at once; a retry with the same Idempotency-Key
  // gets the first answer and stores nothing new.
  const [first] = ids('createFeedback', ok('createFeedback', await createFeedback({
    body: { trace_id: 'ts-1', value: 5, weight: 0.5, metadata: { _user: 'u1', nested: { n: 1.5, tags: ['a'] } } },
  })), 1);
  const bulk = { body: [
    { trace_id: 'ts-2', value: -3, metadata: { _user: 'u2', ai_model: 'gpt-4o' } },
    { trace_id: 'ts-3', value: 10, weight: 0, metadata: { _user: 'u1' } },
  ], headers: { 'Idempotency-Key': 'ts-bulk-1' } };
  const [second, third] = ids('createFeedback bulk', ok('createFeedback bulk', await createFeedback(bulk)), 2);
  equal('createFeedback retried', ok('createFeedback retried', await createFeedback(bulk)).feedback_ids, [second, third]);
  const invalid = failed('createFeedback value 11', await createFeedback({ body: { trace_id: 'ts-bad', value: 11 } }), 400);
  equal('createFeedback value 11 status', invalid.status, 'failure');

  stored('getFeedback', ok('getFeedback', await getFeedback({ path: { id: first } })),
    { trace_id: 'ts-1', value: 5, weight: 0.5, metadata: { _user: 'u1', nested: { n: 1.5, tags: ['a'] } } });

  // Newest first; a filter by trace ids and a page of 2, then the rest.
  const page = ok('listFeedback', await listFeedback({ query: { trace_id: 'ts-1,ts-2,ts-3,ts-bad', limit: 2 } }));
  equal('listFeedback page 1', page.data.map((f) => f.id), [third, second]);
  equal('listFeedback has_more', page.has_more, true);
  if (page.next_cursor === null) throw new Error('listFeedback: no next_cursor');
  const rest = ok('listFeedback page 2', await listFeedback({ query: { trace_id: 'ts-1,ts-2,ts-3', limit: 2, cursor: page.next_cursor } }));
  equal('listFeedback page 2', rest.data.map((f) => f.id), [first]);
  equal('listFeedback page 2 has_more', rest.has_more, false);
  failed('listFeedback without a key', await listFeedback({ client: keyless }), 401);

  // Updates change what is sent and keep the rest.
  equal('updateFeedback', ids('updateFeedback', ok('updateFeedback', await updateFeedback({ path: { id: first }, body: { value: 4 } })), 1), [first]);
  stored('after updateFeedback', ok('getFeedback', await getFeedback({ path: { id: first } })),
    { trace_id: 'ts-1', value: 4, weight: 0.5, metadata: { _user: 'u1', nested: { n: 1.5, tags: ['a'] } } });
  equal('updateFeedbackByPost', ids('updateFeedbackByPost', ok('updateFeedbackByPost', await updateFeedbackByPost({ path: { id: second }, body: { value: -2, weight: 1 } })), 1), [second]);
  stored('after updateFeedbackByPost', ok('getFeedback', await getFeedback({ path: { id: second } })),
    { trace_id: 'ts-2', value: -2, weight: 1, metadata: { _user: 'u2', ai_model: 'gpt-4o' } });

  // A token, then feedback through it with no key at all.
  const token = ok('createFeedbackToken', await createFeedbackToken({ body: { trace_id: 'ts-4', expires_in: 600, metadata: { _user: 'u3' } } }));
  if (!token.token.startsWith('fbt_') || token.url !== `${base}/v1/feedback/tokens/${token.token}`) {
    throw new Error(`createFeedbackToken: got ${JSON.stringify(token)}`);
  }
  const left = Date.parse(token.expires_at) - Date.now();
  if (!(left > 500_000 && left <= 600_000)) throw new Error(`createFeedbackToken: expires_at ${token.expires_at}`);
  const [fourth] = ids('submitFeedbackWithToken', ok('submitFeedbackWithToken', await submitFeedbackWithToken({
    client: keyless, path: { token: token.token }, body: { value: 7 },
  })), 1);
  stored('after submitFeedbackWithToken', ok('getFeedback', await getFeedback({ path: { id: fourth } })),
    { trace_id: 'ts-4', value: 7, weight: 1, metadata: { _user: 'u3' } });
  failed('submitFeedbackWithToken with a bad token', await submitFeedbackWithToken({
    client: keyless, path: { token: 'fbt_not-a-token' }, body: { value: 1 },
  }), 401);

  // Analytics over the last and next hour: values 4 (weight 0.5), -2 (1),
  // 10 (0) and 7 (1).
  const range = {
    time_of_generation_min: new Date(Date.now() - 3600_000).toISOString(),
    time_of_generation_max: new Date(Date.now() + 3600_000).toISOString(),
  };
  const graph = ok('getFeedbackGraph', await getFeedbackGraph({ query: { ...range, granularity: 'hour' } }));
  equal('getFeedbackGraph', [graph.object, graph.summary.total, graph.data_points.reduce((n, p) => n + p.total, 0)], ['analytics-graph', 4, 4]);
  const scores = ok('getFeedbackScoreGraph', await getFeedbackScoreGraph({ query: range }));
  equal('getFeedbackScoreGraph', [...scores.data_points].sort((a, b) => a.score - b.score), [
    { score: -2, total: 1 }, { score: 4, total: 1 }, { score: 7, total: 1 }, { score: 10, total: 1 },
  ]);
  equal('getFeedbackScoreGraph total', scores.summary.total, 4);
  const singular = ok('getFeedbackScoreGraphSingular', await getFeedbackScoreGraphSingular({ query: range }));
  equal('getFeedbackScoreGraphSingular', singular, scores);
  // Only ts-2 names a model (metadata ai_model).
  const models = ok('getFeedbackAIModelGraph', await getFeedbackAiModelGraph({ query: range }));
  equal('getFeedbackAIModelGraph', [models.summary.total, models.data_points], [1, [{ ai_model: 'gpt-4o', total: 1, avg_weighted_feedback: -2 }]]);
  const none = ok('getFeedbackAIModelGraph by openai__claude', await getFeedbackAiModelGraph({ query: { ...range, ai_org_model: 'openai__claude' } }));
  equal('getFeedbackAIModelGraph by openai__claude', none.data_points, []);
  const weighted = ok('getWeightedFeedbackGraph', await getWeightedFeedbackGraph({ query: range }));
  equal('getWeightedFeedbackGraph avg', weighted.summary.avg, (4 * 0.5 - 2 + 10 * 0 + 7) / 4);
  const groups = ok('getMetadataGroups', await getMetadataGroups({ path: { metadataKey: '_user' }, query: range }));
  const byUser = (g: MetadataGroup) => [g.metadata_value, g.requests, g.requests_with_feedback, g.avg_weighted_feedback];
  // Most requests first; the spec leaves the order of ties open.
  equal('getMetadataGroups first', groups.data[0] && byUser(groups.data[0]), ['u1', 2, 2, 1]);
  const sorted = [...groups.data].sort((a, b) => a.metadata_value.localeCompare(b.metadata_value));
  equal('getMetadataGroups', [groups.total, sorted.map(byUser)], [3, [['u1', 2, 2, 1], ['u2', 1, 1, -2], ['u3', 1, 1, 7]]]);

  // Delete; it is gone after.
  equal('deleteFeedback', ids('deleteFeedback', ok('deleteFeedback', await deleteFeedback({ path: { id: third } })), 1), [third]);
  const gone = failed('getFeedback after deleteFeedback', await getFeedback({ path: { id: third } }), 404);
  equal('getFeedback after deleteFeedback', gone.status, 'failure');

  // Erase a user's feedback: counted by a dry run, then gone.
  const user = { metadata: { _user: 'u2' } };
  equal('eraseFeedback dry run', ok('eraseFeedback dry run', await eraseFeedback({ body: { ...user, dry_run: true } })), { erased: 1, dry_run: true });
  equal('eraseFeedback', ok('eraseFeedback', await eraseFeedback({ body: user })), { erased: 1, dry_run: false });
  failed('getFeedback after eraseFeedback', await getFeedback({ path: { id: second } }), 404);
  failed('eraseFeedback without a filter', await eraseFeedback({ body: {} }), 400);

  // A webhook to the suite's receiver: an event delivered, listed among
  // the deliveries and redelivered; then pause, rotation and delete.
  const hooked = ok('createWebhook', await createWebhook({
    body: { url: hook.url, events: ['feedback.created'], filter: { value_min: 1 }, description: 'compat' },
  }), 201);
  if (!hooked.secret.startsWith('whsec_') || !uuidV7.test(hooked.id)) throw new Error(`createWebhook: got ${JSON.stringify(hooked)}`);
  failed('createWebhook to a private address', await createWebhook({ body: { url: 'https://10.0.0.1/hook', events: ['feedback.created'] } }), 400);
  equal('listWebhooks', ok('listWebhooks', await listWebhooks()).data.map((w) => [w.id, w.status, w.filter]), [[hooked.id, 'active', { value_min: 1 }]]);
  equal('getWebhook', ok('getWebhook', await getWebhook({ path: { webhookId: hooked.id } })).description, 'compat');
  const [event] = ids('createFeedback for the webhook', ok('createFeedback for the webhook', await createFeedback({ body: { trace_id: 'ts-hook', value: 3 } })), 1);
  let listed = ok('listWebhookDeliveries', await listWebhookDeliveries({ path: { webhookId: hooked.id } }));
  await waitUntil('a delivery listed', async () => {
    listed = ok('listWebhookDeliveries', await listWebhookDeliveries({ path: { webhookId: hooked.id }, query: { limit: 10 } }));
    return listed.data.length > 0;
  });
  const [attempt] = listed.data;
  equal('the delivery', [listed.data.length, attempt?.type, attempt?.outcome, attempt?.status_code, attempt?.attempt], [1, 'feedback.created', 'delivered', 204, 1]);
  equal('deliveries received', hook.received(), 1);
  answered('redeliverWebhookEvent', await redeliverWebhookEvent({ path: { webhookId: hooked.id, eventId: attempt!.event_id } }), 202);
  await waitUntil('the redelivery received', () => hook.received() === 2);
  equal('updateWebhook', ok('updateWebhook', await updateWebhook({ path: { webhookId: hooked.id }, body: { paused: true } })).status, 'paused');
  const rotated = ok('rotateWebhookSecret', await rotateWebhookSecret({ path: { webhookId: hooked.id } }));
  if (rotated.secret === hooked.secret || Number.isNaN(Date.parse(rotated.previous_secret_expires_at))) {
    throw new Error(`rotateWebhookSecret: got ${JSON.stringify(rotated)}`);
  }
  answered('deleteWebhook', await deleteWebhook({ path: { webhookId: hooked.id } }), 204);
  failed('getWebhook after deleteWebhook', await getWebhook({ path: { webhookId: hooked.id } }), 404);
  void event;
  return calls;
}
