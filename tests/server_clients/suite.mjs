// The tests themselves (openai_client_test.mjs checks the dependencies first, then imports this).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import OpenAI from 'openai';

import { Capture } from './capture.mjs';
import { KNOWN_GAPS } from './known_gaps.mjs';
import { loadValidators } from './schema.mjs';
import { makeTinyModel, startServe, writeKeyFile } from './serve.mjs';
import { checkTypes } from './types_check.mjs';

// Features of the server's contract that the binary may not have yet. A test named here is
// reported as TODO (its failure does not fail the suite); delete the entry once the feature lands.
const PENDING = new Set([]);
// A test of a contract feature: TODO while `name` is in PENDING, and a note once it passes anyway.
function feature(name, title, fn) {
  const todo = PENDING.has(name) && `pending: ${name} (see PENDING in suite.mjs)`;
  test(title, { todo }, async (t) => {
    await fn(t);
    if (todo) t.diagnostic(`'${name}' passes now: delete it from PENDING in suite.mjs`);
  });
}

// Passes (with a note), marks TODO, or fails, by the KNOWN_GAPS entries that cover `lines`.
function failUnlessKnown(t, kind, lines, text) {
  const gaps = new Map();
  const allKnown = lines.every((l) => {
    for (const [name, gap] of KNOWN_GAPS) if (gap[kind].test(l)) return gaps.set(name, gap.kind);
    return false;
  });
  if (!allKnown) assert.fail(text);
  const server = [...gaps].filter(([, k]) => k === 'server').map(([n]) => n);
  const spec = [...gaps].filter(([, k]) => k === 'spec').map(([n]) => n);
  if (spec.length) t.diagnostic(`accepted spec gaps: ${spec.join(', ')} (KNOWN_GAPS in known_gaps.mjs)`);
  if (server.length) {
    t.todo(`known server gaps: ${server.join(', ')} (KNOWN_GAPS in known_gaps.mjs)`);
    assert.fail(text);
  }
}

const validators = loadValidators();
let model;   // { dir, model, cleanup }
let server;  // { url, modelId, stop() }
const allDocuments = [];  // every captured body / event, for the type check at the end

before(async () => {
  model = makeTinyModel();
  server = await startServe(model.model, ['--max-context', '512']);
});

after(async () => {
  try {
    if (server) await server.stop();  // no-op when the SIGTERM test already stopped it
  } finally {
    model?.cleanup();
  }
});

// An official client whose every response is captured for the schema check.
function client(options = {}) {
  const capture = new Capture();
  const c = new OpenAI({
    baseURL: `${server.url}/v1`, apiKey: 'sk-test', maxRetries: 0, timeout: 30_000,
    fetch: capture.fetch, ...options,
  });
  return { c, capture };
}

// Validates everything `capture` saw; fails (or marks TODO, see KNOWN_GAPS) with Ajv's text.
async function assertSchemas(t, capture) {
  const docs = await capture.documents();
  assert.ok(docs.length > 0, 'no response was captured');
  const problems = [];
  for (const d of docs) {
    allDocuments.push(d);
    const error = d.problem ?? (d.schema ? validators.validate(d.schema, d.body)
                                         : `no schema for ${d.what}`);
    if (error) problems.push({ d, lines: error.split('\n').map((l) => l.trim()) });
  }
  t.diagnostic(`${docs.length} bodies/events validated against the schema`);
  if (!problems.length) return;
  const text = problems.map(({ d, lines }) =>
    `${d.what} vs #/components/schemas/${d.schema}:\n  ${lines.join('\n  ')}\n  body: ${JSON.stringify(d.body)}`).join('\n');
  failUnlessKnown(t, 'schema', problems.flatMap((p) => p.lines),
                  `responses that break OpenAI's schema:\n${text}`);
}

const user = (content) => [{ role: 'user', content }];
const greedy = { temperature: 0, seed: 7, max_tokens: 12 };

// Proves the schema check is not vacuous: bodies with typical server mistakes are rejected.
test('the OpenAPI validators reject bodies that break the schema', () => {
  const chunk = { id: 'c', object: 'chat.completion.chunk', created: 1, model: 'm',
                  choices: [{ index: 0, delta: { content: 'x' }, finish_reason: null, logprobs: null }] };
  assert.equal(validators.validate('CreateChatCompletionStreamResponse', chunk), null);
  const bad = (mutate) => { const c = structuredClone(chunk); mutate(c); return c; };
  for (const body of [
    bad((c) => { c.choices[0].finish_reason = 'eos'; }),         // not an OpenAI finish_reason
    bad((c) => { delete c.choices[0].index; }),                   // required
    bad((c) => { c.created = '1'; }),                              // integer, not string
    bad((c) => { c.choices[0].logprobs = { content: [] }; }),     // refusal required (was nullable)
  ]) {
    assert.notEqual(validators.validate('CreateChatCompletionStreamResponse', body), null, JSON.stringify(body));
  }
  assert.notEqual(validators.validate('ErrorResponse', { error: { message: 'x', type: 'y' } }), null);
  assert.notEqual(validators.validate('ListModelsResponse', { object: 'list', data: [{ id: 'm' }] }), null);
});

test('models.list: the served id, as a ListModelsResponse', async (t) => {
  const { c, capture } = client();
  const ids = [];
  for await (const m of c.models.list()) ids.push(m.id);
  assert.deepEqual(ids, [server.modelId]);
  await assertSchemas(t, capture);
});

test('chat, non-streaming: a chat.completion with content, finish_reason and usage', async (t) => {
  const { c, capture } = client();
  const r = await c.chat.completions.create({ model: server.modelId, messages: user('Hello'), ...greedy });
  assert.equal(r.object, 'chat.completion');
  assert.equal(r.choices.length, 1);
  assert.equal(r.choices[0].message.role, 'assistant');
  assert.equal(typeof r.choices[0].message.content, 'string');
  assert.ok(['stop', 'length'].includes(r.choices[0].finish_reason));
  assert.ok(r.usage.prompt_tokens > 0 && r.usage.completion_tokens > 0);
  assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + r.usage.completion_tokens);
  await assertSchemas(t, capture);
});

test('chat, streaming: deltas add up to the greedy reply; include_usage sends a usage chunk', async (t) => {
  const { c, capture } = client();
  const whole = await c.chat.completions.create({ model: server.modelId, messages: user('Stream me'), ...greedy });
  const stream = await c.chat.completions.create({
    model: server.modelId, messages: user('Stream me'), ...greedy,
    stream: true, stream_options: { include_usage: true },
  });
  let text = '';
  let role;
  let finish;
  let usage;
  const ids = new Set();
  for await (const chunk of stream) {
    assert.equal(chunk.object, 'chat.completion.chunk');
    ids.add(chunk.id);
    for (const ch of chunk.choices) {
      assert.equal(ch.index, 0);
      role ??= ch.delta.role;
      text += ch.delta.content ?? '';
      finish = ch.finish_reason ?? finish;
    }
    if (chunk.usage) {
      assert.equal(chunk.choices.length, 0, 'the usage chunk has no choices');
      usage = chunk.usage;
    }
  }
  assert.equal(ids.size, 1, 'every chunk carries the same id');
  assert.equal(role, 'assistant');
  assert.equal(text, whole.choices[0].message.content);
  assert.equal(finish, whole.choices[0].finish_reason);
  assert.equal(usage?.completion_tokens, whole.usage.completion_tokens);
  assert.equal(usage?.prompt_tokens, whole.usage.prompt_tokens);
  await assertSchemas(t, capture);
});

test('tools round trip: tools + an assistant tool_calls message + a tool result are accepted', async (t) => {
  const { c, capture } = client();
  const tools = [{
    type: 'function',
    function: {
      name: 'get_weather', description: 'Current weather in a city',
      parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
    },
  }];
  const messages = [
    { role: 'user', content: 'Weather in Paris?' },
    { role: 'assistant', content: null, tool_calls: [{
      id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' },
    }] },
    { role: 'tool', tool_call_id: 'call_1', content: '{"temperature_c":21}' },
  ];
  const r = await c.chat.completions.create({ model: server.modelId, messages, tools, ...greedy });
  // A random-weight model will not call the tool again; any well-formed answer will do.
  const ch = r.choices[0];
  assert.ok(['stop', 'length', 'tool_calls'].includes(ch.finish_reason));
  if (ch.finish_reason === 'tool_calls') assert.ok(ch.message.tool_calls.length > 0);
  // The same conversation streamed.
  const stream = await c.chat.completions.create({ model: server.modelId, messages, tools, ...greedy, stream: true });
  for await (const chunk of stream) assert.equal(chunk.object, 'chat.completion.chunk');
  await assertSchemas(t, capture);
});

feature('logprobs', 'logprobs: top_logprobs per content token, as OpenAI sends them', async (t) => {
  const { c, capture } = client();
  const r = await c.chat.completions.create({
    model: server.modelId, messages: user('Hi'), ...greedy, logprobs: true, top_logprobs: 3,
  });
  const lp = r.choices[0].logprobs;
  assert.ok(lp && Array.isArray(lp.content), 'choices[0].logprobs.content is an array');
  assert.equal(lp.refusal, null);
  // One entry per generated token (a final end-of-turn token may carry no text).
  assert.ok(lp.content.length >= 1 && lp.content.length <= r.usage.completion_tokens);
  for (const x of lp.content) {
    assert.ok(x.logprob <= 0);
    assert.equal(x.top_logprobs.length, 3);
    // Greedy: the chosen token is the most likely one.
    assert.ok(Math.abs(x.top_logprobs[0].logprob - x.logprob) < 1e-6);
    assert.ok(Array.isArray(x.bytes) && x.bytes.every((b) => Number.isInteger(b) && b >= 0 && b < 256));
    // A token that is whole UTF-8 is its own bytes (a partial character's text is U+FFFD).
    if (!x.token.includes('\uFFFD')) assert.deepEqual(x.bytes, [...Buffer.from(x.token)]);
  }
  // The tokens' bytes spell the reply (when it was cut by max_tokens: every token is text).
  const spelled = Buffer.from(lp.content.flatMap((x) => x.bytes)).toString();
  if (r.choices[0].finish_reason === 'length' && !spelled.includes('\uFFFD')) {
    assert.equal(spelled, r.choices[0].message.content);
  }
  const stream = await c.chat.completions.create({
    model: server.modelId, messages: user('Hi'), ...greedy, logprobs: true, top_logprobs: 1, stream: true,
  });
  let tokens = 0;
  for await (const chunk of stream) tokens += chunk.choices[0]?.logprobs?.content?.length ?? 0;
  assert.equal(tokens, lp.content.length, 'streamed logprobs cover the same tokens');
  await assertSchemas(t, capture);
});

feature('n', 'n: n choices indexed 0..n-1, also when streamed', async (t) => {
  const { c, capture } = client();
  const r = await c.chat.completions.create({
    model: server.modelId, messages: user('Pick'), n: 3, temperature: 1, seed: 3, max_tokens: 6,
  });
  assert.deepEqual(r.choices.map((ch) => ch.index), [0, 1, 2]);
  const stream = await c.chat.completions.create({
    model: server.modelId, messages: user('Pick'), n: 2, max_tokens: 6, stream: true,
  });
  const finished = new Set();
  for await (const chunk of stream) {
    for (const ch of chunk.choices) {
      assert.ok(ch.index === 0 || ch.index === 1);
      if (ch.finish_reason) finished.add(ch.index);
    }
  }
  assert.deepEqual([...finished].sort(), [0, 1]);
  await assertSchemas(t, capture);
});

// Errors: the client raises its APIError subclass for the status, with the body's param and code.
async function rejectsWith(promise, Class, status, fields = {}) {
  const e = await promise.then(() => assert.fail('the request succeeded'), (err) => err);
  assert.ok(e instanceof Class, `expected ${Class.name}, got ${e?.constructor?.name}: ${e?.message}`);
  assert.equal(e.status, status);
  for (const [k, v] of Object.entries(fields)) assert.equal(e[k], v, `error.${k}`);
  return e;
}

test('errors: a wrong type is a 400 naming the field; an unknown route a 404', async (t) => {
  const { c, capture } = client();
  const hot = await rejectsWith(
    c.chat.completions.create({ model: server.modelId, messages: user('x'), temperature: 'hot' }),
    OpenAI.BadRequestError, 400, { param: 'temperature', type: 'invalid_request_error' });
  await rejectsWith(c.chat.completions.create({ model: server.modelId, messages: [] }),
                    OpenAI.BadRequestError, 400, { param: 'messages' });
  await rejectsWith(c.get('/no/such/route'), OpenAI.NotFoundError, 404);
  // The client exposes the body's error object, code included, as sent.
  const docs = await capture.documents();
  assert.deepEqual(hot.error, docs[0].body.error);
  assert.equal(hot.code, 'invalid_temperature');
  await assertSchemas(t, capture);
});

test('errors: malformed JSON (raw fetch) is a 400 invalid_json error body', async (t) => {
  const capture = new Capture();
  const res = await capture.fetch(`${server.url}/v1/chat/completions`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"messages": [',
  });
  assert.equal(res.status, 400);
  assert.equal((await res.json()).error.code, 'invalid_json');
  await assertSchemas(t, capture);
});

feature('model_not_found', 'errors: an unknown model is a 404 model_not_found', async (t) => {
  const { c, capture } = client();
  await rejectsWith(c.chat.completions.create({ model: 'no-such-model', messages: user('x'), max_tokens: 2 }),
                    OpenAI.NotFoundError, 404, { code: 'model_not_found' });
  await assertSchemas(t, capture);
});

feature('response_format', 'structured output: json_schema replies are ajv-valid, json_object replies are objects, refused keywords are a 400 naming response_format', async (t) => {
  const { c, capture } = client();
  const schema = {
    type: 'object', additionalProperties: false, required: ['name', 'qty', 'kind', 'tags'],
    properties: {
      name: { type: 'string', maxLength: 6 }, qty: { type: 'integer', minimum: 1, maximum: 9 },
      kind: { enum: ['a', 'b'] }, tags: { type: 'array', maxItems: 2, items: { type: 'boolean' } },
    },
  };
  const ajv = new Ajv2020({ strict: true });
  addFormats(ajv);
  const check = ajv.compile(schema);
  for (const temperature of [0, 1]) {
    const r = await c.chat.completions.create({
      model: server.modelId, messages: user('x'), max_tokens: 200, temperature, seed: 3,
      response_format: { type: 'json_schema', json_schema: { name: 'item', strict: true, schema } },
    });
    assert.equal(r.choices[0].finish_reason, 'stop');
    const value = JSON.parse(r.choices[0].message.content);
    assert.ok(check(value), JSON.stringify(check.errors) + ' ' + r.choices[0].message.content);
    // The extension field: the engine's own verdict, agreeing with ajv's.
    assert.equal(r.choices[0].constraint.valid, true);
    assert.deepEqual(r.choices[0].constraint.not_enforced, []);
  }
  // Streamed: the text still parses and validates, and the choice's last chunk carries the
  // constraint field.
  const stream = await c.chat.completions.create({
    model: server.modelId, messages: user('x'), max_tokens: 200, temperature: 0, seed: 3, stream: true,
    response_format: { type: 'json_schema', json_schema: { name: 'item', strict: true, schema } },
  });
  let streamed = '';
  const accounts = [];
  for await (const chunk of stream) {
    for (const choice of chunk.choices) {
      streamed += choice.delta?.content ?? '';
      if (choice.constraint) accounts.push(choice.constraint);
    }
  }
  assert.ok(check(JSON.parse(streamed)), streamed);
  assert.equal(accounts.length, 1, 'one chunk carries the constraint field');
  assert.equal(accounts[0].valid, true);
  assert.equal(accounts[0].complete, true);
  // llama-server's top-level GBNF grammar (an extra body field) and its errors.
  const g = await c.chat.completions.create({
    model: server.modelId, messages: user('x'), max_tokens: 20, temperature: 1, seed: 4,
    grammar: 'root ::= ("yes" | "no") "!" [0-9]{1,2}',
  });
  assert.match(g.choices[0].message.content, /^(yes|no)![0-9]{1,2}$/);
  assert.equal(g.choices[0].finish_reason, 'stop');
  await rejectsWith(c.chat.completions.create({
    model: server.modelId, messages: user('x'), max_tokens: 2, grammar: 'root ::= undefined-rule',
  }), OpenAI.BadRequestError, 400, { param: 'grammar' });
  // strict: false drops what cannot be enforced and says so; a checked-after keyword
  // (uniqueItems) that fails is reported as invalid, never passed off as valid.
  const lenient = await c.chat.completions.create({
    model: server.modelId, messages: user('x'), max_tokens: 60, temperature: 1, seed: 2,
    response_format: { type: 'json_schema', json_schema: { name: 'h', strict: false, schema: {
      type: 'object', additionalProperties: false, required: ['h', 'u'],
      properties: { h: { type: 'string', format: 'hostname', maxLength: 4 },
                    u: { type: 'array', items: { enum: [1, 2] }, minItems: 2, maxItems: 3, uniqueItems: true } },
    } } },
  });
  const account = lenient.choices[0].constraint;
  assert.deepEqual(account.not_enforced.map((i) => [i.keyword, i.pointer]), [['format', '/properties/h']]);
  assert.deepEqual(account.validated_after.map((i) => [i.keyword, i.pointer]), [['uniqueItems', '/properties/u']]);
  const u = JSON.parse(lenient.choices[0].message.content).u;
  assert.equal(account.valid, new Set(u).size === u.length, JSON.stringify(account));
  const o = await c.chat.completions.create({
    model: server.modelId, messages: user('x'), max_tokens: 40, temperature: 1, seed: 1,
    response_format: { type: 'json_object' },
  });
  assert.equal(o.choices[0].finish_reason, 'stop', 'the value is complete within max_tokens');
  const object = JSON.parse(o.choices[0].message.content);
  assert.ok(object !== null && typeof object === 'object' && !Array.isArray(object));
  await rejectsWith(c.chat.completions.create({
    model: server.modelId, messages: user('x'), max_tokens: 2,
    response_format: { type: 'json_schema', json_schema: { name: 'x', schema: { type: 'string', format: 'hostname' } } },
  }), OpenAI.BadRequestError, 400, { code: 'unsupported', param: 'response_format' });
  await c.chat.completions.create({
    model: server.modelId, messages: user('x'), max_tokens: 2, response_format: { type: 'text' },
  });
  await assertSchemas(t, capture);
});

feature('context_length_exceeded', 'errors: a prompt over the context is a 400 context_length_exceeded', async (t) => {
  const { c, capture } = client();
  await rejectsWith(c.chat.completions.create({
    model: server.modelId, messages: user('word '.repeat(2000)), max_tokens: 2,
  }), OpenAI.BadRequestError, 400, { code: 'context_length_exceeded' });
  await assertSchemas(t, capture);
});

feature('body_too_large', 'errors: a body over the limit is a 413 with an error body', async (t) => {
  const { c, capture } = client();
  const e = await rejectsWith(c.chat.completions.create({
    model: server.modelId, messages: user('x'.repeat(9 << 20)), max_tokens: 2,
  }), OpenAI.APIError, 413);
  assert.equal(typeof e.error?.message, 'string');
  await assertSchemas(t, capture);
});

feature('completions', 'completions: text_completion for a prompt string, a token array, echo, logprobs, n, stream', async (t) => {
  const { c, capture } = client();
  const r = await c.completions.create({ model: server.modelId, prompt: 'Once', ...greedy });
  assert.equal(r.object, 'text_completion');
  assert.equal(typeof r.choices[0].text, 'string');
  const tok = await c.completions.create({ model: server.modelId, prompt: [2, 10, 11], ...greedy });
  assert.equal(tok.object, 'text_completion');
  const echo = await c.completions.create({ model: server.modelId, prompt: 'Once', ...greedy, echo: true, logprobs: 2 });
  assert.ok(echo.choices[0].text.startsWith('Once'));
  assert.equal(echo.choices[0].logprobs.tokens.length, echo.choices[0].logprobs.token_logprobs.length);
  const n = await c.completions.create({ model: server.modelId, prompt: 'Once', n: 2, max_tokens: 4 });
  assert.deepEqual(n.choices.map((ch) => ch.index), [0, 1]);
  const stream = await c.completions.create({ model: server.modelId, prompt: 'Once', ...greedy, stream: true });
  let text = '';
  for await (const chunk of stream) text += chunk.choices[0]?.text ?? '';
  assert.equal(text, r.choices[0].text);
  await assertSchemas(t, capture);
});

feature('tokenize', 'tokenize / detokenize round trip (llama-server shapes)', async () => {
  const post = (path, body) => fetch(`${server.url}${path}`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body),
  }).then(async (res) => { assert.equal(res.status, 200, path); return res.json(); });
  const { tokens } = await post('/tokenize', { content: 'Hello world' });
  assert.ok(Array.isArray(tokens) && tokens.length > 0 && tokens.every(Number.isInteger));
  assert.equal((await post('/detokenize', { tokens })).content, 'Hello world');
});

feature('metrics', 'GET /metrics is Prometheus text', async () => {
  const res = await fetch(`${server.url}/metrics`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain/);
  assert.match(await res.text(), /^# (HELP|TYPE) /m);
});

feature('api_key', 'API keys: 401 invalid_api_key without the key; /health open; the key works', async (t) => {
  const keyed = await startServe(model.model, ['--api-key-file', writeKeyFile(model.dir, ['sk-good'])]);
  try {
    const url = `${keyed.url}/v1`;
    const capture = new Capture();
    const bad = new OpenAI({ baseURL: url, apiKey: 'sk-bad', maxRetries: 0, fetch: capture.fetch });
    await rejectsWith(bad.models.list(), OpenAI.AuthenticationError, 401,
                      { code: 'invalid_api_key', type: 'invalid_request_error' });
    const none = await capture.fetch(`${url}/models`);
    assert.equal(none.status, 401);
    assert.equal((await fetch(`${keyed.url}/health`)).status, 200);
    assert.equal((await fetch(`${keyed.url}/`)).status, 200, 'the chat page needs no key');
    const good = new OpenAI({ baseURL: url, apiKey: 'sk-good', maxRetries: 0, fetch: capture.fetch });
    const r = await good.chat.completions.create({ model: keyed.modelId, messages: user('x'), max_tokens: 2 });
    assert.equal(r.object, 'chat.completion');
    await assertSchemas(t, capture);
  } finally {
    await keyed.stop();
  }
});

test("the client's TypeScript types accept every captured body (tsc --noEmit)", async (t) => {
  const bodies = allDocuments.filter((d) => d.schema && d.body);
  assert.ok(bodies.length > 0);
  const errors = await checkTypes(bodies);
  if (errors) {
    // TS2353 (a field the type does not name) only shows up beside a real error, when tsc falls
    // back from inferring U to checking against T; extra fields are allowed by design.
    const lines = errors.split('\n').filter((l) => / error TS\d+/.test(l) && !/ error TS2353:/.test(l));
    failUnlessKnown(t, 'types', lines,
                    `the client's types reject a captured body:\n${errors}`);
  }
});

test('SIGTERM stops serve gracefully with exit code 0', async () => {
  assert.equal(await server.stop(), 0);
});
