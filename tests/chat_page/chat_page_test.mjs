// Browser test of the chat page served at GET /: a tiny random-weight model behind
// `gemma-local serve`, the page loaded in Debian's chromium (headless, driven by puppeteer-core),
// a streamed reply, the Stop button, a server error, the markdown renderer's escaping and a
// screenshot that is decoded and checked.
//
//   node tests/chat_page/chat_page_test.mjs [path/to/gemma-local]
//     (or GEMMA_LOCAL_BINARY=...; CHROMIUM=/path/to/chromium overrides /usr/bin/chromium)
//
// Exit 77 (CTest's SKIP_RETURN_CODE) when puppeteer-core (tests/chat_page/install.sh) or chromium
// is missing, unless GEMMA_LOCAL_REQUIRE_REFERENCES=1 (CI), where that is a failure. The server
// and the browser are always killed, and a watchdog ends the run long before CTest's timeout.
import {test, before, after} from 'node:test';
import assert from 'node:assert/strict';
import {spawn, spawnSync} from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import {fileURLToPath} from 'node:url';

const SKIP = 77;
const here = path.dirname(fileURLToPath(import.meta.url));
const required = process.env.GEMMA_LOCAL_REQUIRE_REFERENCES === '1';
const binary = process.argv[2] || process.env.GEMMA_LOCAL_BINARY ||
    path.join(here, '..', '..', 'build', 'release', 'gemma-local');
const chromiumPath = process.env.CHROMIUM || '/usr/bin/chromium';

function skipOrFail(why) {
  if (required) {
    console.error(`FAIL: ${why} (required here: GEMMA_LOCAL_REQUIRE_REFERENCES is set, as in CI)`);
    process.exit(1);
  }
  console.log(`SKIP: ${why}`);
  process.exit(SKIP);
}

let puppeteer;
try {
  puppeteer = (await import('puppeteer-core')).default;
} catch {
  skipOrFail('puppeteer-core is not installed: run tests/chat_page/install.sh');
}
if (!fs.existsSync(chromiumPath)) {
  skipOrFail(`no browser at ${chromiumPath}: apt-get install chromium (or set CHROMIUM)`);
}
if (!fs.existsSync(binary)) {
  console.error(`FAIL: no gemma-local binary at ${binary}`);
  process.exit(1);
}

// Everything that must die with the test, however it ends.
let server = null;
let browser = null;
function killAll() {
  if (server && server.exitCode === null && server.signalCode === null) server.kill('SIGKILL');
  const proc = browser && browser.process();
  if (proc && proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
}
process.on('exit', killAll);
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    killAll();
    process.exit(1);
  });
}
const watchdog = setTimeout(() => {
  console.error('FAIL: the chat page test ran over 100 s');
  killAll();
  process.exit(1);
}, 100_000);
watchdog.unref();

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gemma-local-chat-page-'));
let base = '';
let page = null;
let modelId = '';
const problems = [];  // console errors, page errors, CSP violations

// Starts `gemma-local serve` on a free port; resolves with the base URL once it prints ready.
function startServer(modelPath) {
  return new Promise((resolve, reject) => {
    // A long context, so that the Stop test's generation runs for many seconds (the tiny model
    // makes ~2000 tokens/s: a 4096 context would end before Stop is pressed).
    server = spawn(binary, ['serve', '--model', modelPath, '--port', '0', '--threads', '2',
                            '--max-context', '65536'],
                   {stdio: ['ignore', 'pipe', 'pipe']});
    let out = '';
    let err = '';
    let url = '';
    const timer = setTimeout(() => reject(new Error(`serve did not get ready:\n${out}\n${err}`)),
                             30_000);
    server.stdout.on('data', (d) => {
      out += d;
      const m = /listening on (http:\/\/[^\s]+)/.exec(out);
      if (m) url = m[1];
      if (url && /^ready: /m.test(out)) {
        clearTimeout(timer);
        resolve(url);
      }
    });
    server.stderr.on('data', (d) => { err += d; });
    server.on('exit', (code, sig) => {
      clearTimeout(timer);
      reject(new Error(`serve exited early (${code ?? sig}):\n${out}\n${err}`));
    });
  });
}

// Decodes an 8-bit RGB/RGBA non-interlaced PNG (what Chrome writes) into its pixels.
function decodePng(buf) {
  assert.equal(buf.subarray(0, 8).toString('hex'), '89504e470d0a1a0a', 'PNG signature');
  let off = 8;
  let width = 0, height = 0, channels = 0;
  const idat = [];
  while (off < buf.length) {
    const len = buf.readUInt32BE(off);
    const type = buf.toString('latin1', off + 4, off + 8);
    const data = buf.subarray(off + 8, off + 8 + len);
    if (type === 'IHDR') {
      width = data.readUInt32BE(0);
      height = data.readUInt32BE(4);
      const depth = data[8], colour = data[9], interlace = data[12];
      assert.equal(depth, 8, 'bit depth');
      assert.equal(interlace, 0, 'interlace');
      channels = {2: 3, 6: 4}[colour];
      assert.ok(channels, `colour type ${colour}`);
    } else if (type === 'IDAT') {
      idat.push(data);
    } else if (type === 'IEND') {
      break;
    }
    off += 12 + len;
  }
  const raw = zlib.inflateSync(Buffer.concat(idat));
  const stride = width * channels;
  const px = Buffer.alloc(stride * height);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)];
    const src = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    const row = px.subarray(y * stride, (y + 1) * stride);
    const prev = y > 0 ? px.subarray((y - 1) * stride, y * stride) : Buffer.alloc(stride);
    for (let x = 0; x < stride; x++) {
      const a = x >= channels ? row[x - channels] : 0;
      const b = prev[x];
      const c = x >= channels ? prev[x - channels] : 0;
      let v = src[x];
      if (filter === 1) v += a;
      else if (filter === 2) v += b;
      else if (filter === 3) v += (a + b) >> 1;
      else if (filter === 4) {
        const p = a + b - c, pa = Math.abs(p - a), pb = Math.abs(p - b), pc = Math.abs(p - c);
        v += pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
      }
      row[x] = v & 0xff;
    }
  }
  return {width, height, channels, px};
}

async function waitIdle(timeout = 30_000) {
  await page.waitForFunction(() => document.body.dataset.state === 'idle', {timeout});
}

// Sets an input's value as a user would (select all, type).
async function setField(selector, value) {
  await page.click(selector, {clickCount: 3});
  await page.keyboard.press('Backspace');
  await page.type(selector, String(value));
}

async function openSettings() {
  await page.evaluate(() => { document.getElementById('settings').open = true; });
}

before(async () => {
  const modelDir = path.join(tmp, 'model');
  const made = spawnSync(binary, ['dev', 'make-model', '--out', modelDir, '--preset', 'tiny'],
                         {encoding: 'utf8', timeout: 60_000});
  assert.equal(made.status, 0, `make-model failed: ${made.stdout}\n${made.stderr}`);
  base = await startServer(path.join(modelDir, 'model.gguf'));
  const models = await (await fetch(`${base}/v1/models`)).json();
  modelId = models.data[0].id;

  browser = await puppeteer.launch({
    executablePath: chromiumPath,
    headless: true,
    userDataDir: path.join(tmp, 'profile'),
    // Root in a container: no sandbox; no GPU or /dev/shm to rely on.
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run',
           '--force-color-profile=srgb', '--lang=en-US'],
    defaultViewport: {width: 1200, height: 800, deviceScaleFactor: 1},
    timeout: 30_000,
  });
  page = await browser.newPage();
  page.setDefaultTimeout(30_000);
  page.on('console', (msg) => {
    if (msg.type() === 'error') problems.push(`console: ${msg.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  await page.evaluateOnNewDocument(() => {
    document.addEventListener('securitypolicyviolation',
                              (e) => console.error(`CSP violation: ${e.violatedDirective} ${e.blockedURI}`));
  });
});

after(async () => {
  try {
    if (browser) await browser.close();
  } catch { /* killed below */ }
  if (server && server.exitCode === null) {
    const exited = new Promise((resolve) => server.once('exit', resolve));
    server.kill('SIGTERM');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
  }
  killAll();
  clearTimeout(watchdog);
  // Keep only the screenshots (their paths were printed); the model and profile are large.
  for (const dir of ['model', 'profile']) {
    fs.rmSync(path.join(tmp, dir), {recursive: true, force: true, maxRetries: 3});
  }
});

test('the page loads under its CSP and shows the model', async () => {
  const res = await page.goto(`${base}/`, {waitUntil: 'load'});
  assert.equal(res.status(), 200);
  assert.match(res.headers()['content-type'], /^text\/html/);
  assert.match(res.headers()['content-security-policy'], /default-src 'self'/);
  await page.waitForFunction((id) => document.getElementById('model-name').textContent === id,
                             {}, modelId);
  assert.equal(await page.$eval('#stop', (e) => e.hidden), true, 'Stop is hidden while idle');
  assert.equal(await page.title(), 'gemma-local chat');
});

test('a message streams a reply with a usage line', async () => {
  await openSettings();
  await setField('#max-tokens', 24);
  await page.type('#input', 'Hello, **model**!');
  await page.keyboard.press('Enter');
  await page.waitForSelector('[data-testid=usage]:not([hidden])', {timeout: 60_000});
  await waitIdle();
  const user = await page.$$eval('[data-testid=user-message] .bubble', (els) => els.map((e) => e.textContent));
  assert.deepEqual(user, ['Hello, **model**!'], 'the user bubble shows the text as typed');
  const reply = await page.$eval('[data-testid=assistant-message]', (e) => ({
    content: e.querySelector('[data-testid=assistant-content]').textContent,
    thinking: e.querySelector('[data-testid=thinking]').textContent,
    usage: e.querySelector('[data-testid=usage]').textContent,
  }));
  assert.ok((reply.content + reply.thinking).trim().length > 0, 'the reply is not empty');
  assert.match(reply.usage, /\d+ tokens/);
  assert.equal(await page.$eval('#input', (e) => e.value), '', 'the input was cleared');
  assert.equal(await page.$eval('#error', (e) => e.hidden), true, 'no error shown');
});

test('Stop ends a long generation and the server stays healthy', async () => {
  await setField('#max-tokens', 60000);
  await page.type('#input', 'Write a very long story.');
  await page.keyboard.press('Enter');
  await page.waitForSelector('#stop:not([hidden])');
  // Let some tokens arrive, so the stop interrupts a running generation.
  await page.waitForFunction(() => {
    const msgs = document.querySelectorAll('[data-testid=assistant-message]');
    return msgs[msgs.length - 1].querySelector('.bubble').textContent.replace('Thinking…', '').length > 0;
  }, {timeout: 30_000});
  await page.click('#stop');
  await waitIdle(5_000);
  assert.equal(await page.$eval('#stop', (e) => e.hidden), true);
  assert.equal(await page.$eval('#send', (e) => e.hidden), false);
  const usage = await page.$$eval('[data-testid=usage]', (els) => els[els.length - 1].textContent);
  assert.match(usage, /stopped/);
  const health = await fetch(`${base}/health`);
  assert.equal(health.status, 200);
  // The engine is free again: a short request completes.
  const quick = await fetch(`${base}/v1/chat/completions`, {
    method: 'POST',
    headers: {'Content-Type': 'application/json'},
    body: JSON.stringify({model: modelId, messages: [{role: 'user', content: 'hi'}], max_tokens: 2}),
    signal: AbortSignal.timeout(30_000),
  });
  assert.equal(quick.status, 200);
  await setField('#max-tokens', 24);
});

test('a server error is shown readably', async () => {
  await setField('#temperature', -1);
  await page.type('#input', 'This request is invalid.');
  await page.keyboard.press('Enter');
  await page.waitForSelector('#error:not([hidden])');
  await waitIdle();
  const text = await page.$eval('#error-text', (e) => e.textContent);
  assert.match(text, /temperature/i, `the OpenAI error's message is shown: ${text}`);
  assert.doesNotMatch(text, /^\{/, 'not the raw JSON body');
  const bubble = await page.$$eval('[data-testid=assistant-message]', (els) => ({
    text: els[els.length - 1].querySelector('[data-testid=assistant-content]').textContent,
    failed: els[els.length - 1].classList.contains('failed'),
  }));
  assert.deepEqual(bubble, {text, failed: true}, 'the empty reply says why it failed');
  await setField('#temperature', 1);
  await page.click('#error-close');
  // The failed exchange left the conversation: the next request is well-formed.
  const history = await page.evaluate(() => window.gemmaChat.state.history.map((m) => m.role));
  assert.deepEqual(history.slice(-1), ['assistant']);
});

test('the markdown renderer escapes HTML and renders its own tags', async () => {
  const r = await page.evaluate((inputs) => inputs.map((s) => window.gemmaChat.renderMarkdown(s)), [
    '<img src=x onerror=alert(1)>',
    '**bold** and *it* and `a<b>`',
    '# Title\n\n- one\n- two\n\n1. first\n2. second',
    '```html\n<script>alert(1)</script>\n```',
    '[ok](https://example.com/a?b=1&c=2) [bad](javascript:alert(1)) [q](https://x.y/"onmouseover=)',
    '"quoted" & \'single\'',
  ]);
  assert.equal(r[0], '<p>&lt;img src=x onerror=alert(1)&gt;</p>');
  assert.equal(r[1], '<p><strong>bold</strong> and <em>it</em> and <code>a&lt;b&gt;</code></p>');
  assert.equal(r[2], '<h1>Title</h1>\n<ul><li>one</li><li>two</li></ul>\n' +
                     '<ol><li>first</li><li>second</li></ol>');
  assert.equal(r[3], '<pre><code class="language-html">&lt;script&gt;alert(1)&lt;/script&gt;</code></pre>');
  assert.match(r[4], /<a href="https:\/\/example.com\/a\?b=1&amp;c=2" target="_blank" rel="noopener noreferrer">ok<\/a>/);
  assert.doesNotMatch(r[4], /href="javascript/);
  assert.equal(r[4].match(/<a /g).length, 1, 'only the http(s) link without quotes is a link');
  assert.equal(r[5], '<p>&quot;quoted&quot; &amp; &#39;single&#39;</p>');
  // Rendered into the DOM, hostile text makes no elements.
  const made = await page.evaluate(() => {
    const div = document.createElement('div');
    div.innerHTML = window.gemmaChat.renderMarkdown('<img src=x onerror="window.__pwned=1"><script>window.__pwned=1</script>');
    return {imgs: div.querySelectorAll('img, script').length, text: div.textContent};
  });
  assert.equal(made.imgs, 0);
  assert.match(made.text, /<img src=x/);
});

test('screenshot: the right size and not blank', async () => {
  const file = path.join(tmp, 'chat_page.png');
  await page.evaluate(() => { document.getElementById('settings').open = false; });
  await page.screenshot({path: file, type: 'png'});
  console.log(`screenshot: ${file}`);
  checkScreenshot(file);
});

// The PNG is the viewport's size and not blank: many colours, and many pixels unlike the corner.
function checkScreenshot(file) {
  const png = decodePng(fs.readFileSync(file));
  assert.equal(png.width, 1200);
  assert.equal(png.height, 800);
  // Not one colour: count colours and the share of pixels that differ from the corner's.
  const colours = new Set();
  let differ = 0;
  const n = png.width * png.height;
  const c0 = png.px.readUIntBE(0, 3);
  for (let i = 0; i < n; i++) {
    const rgb = png.px.readUIntBE(i * png.channels, 3);
    if (colours.size < 1000) colours.add(rgb);
    if (rgb !== c0) differ++;
  }
  assert.ok(colours.size > 20, `only ${colours.size} colours`);
  assert.ok(differ / n > 0.05, `only ${(100 * differ / n).toFixed(1)}% of pixels differ`);
}

// The rest runs on a second tab whose /v1 calls are answered by the test (request interception):
// a server that wants an API key, and a canned stream with thinking and markdown, which the tiny
// random model cannot be relied on to produce.
const CANNED_REASONING = 'The user wants a demo. <b>not bold</b>';
const CANNED_ANSWER = '# Answer\n\nHere is **bold**, *italic* and `code`.\n\n- one\n- two\n\n' +
    '```js\nconsole.log("<hi>");\n```\n\nSee [the docs](https://example.com/docs).';
let mock = null;
const mockProblems = [];
const seenAuth = [];

function sse(objects) {
  return objects.map((o) => `data: ${typeof o === 'string' ? o : JSON.stringify(o)}\n\n`).join('');
}
function chunk(delta, finish = null) {
  return {id: 'chatcmpl-mock', object: 'chat.completion.chunk', created: 0, model: 'mock-model',
          choices: [{index: 0, delta, logprobs: null, finish_reason: finish}]};
}

test('a server with API keys: the page asks for one, stores it and retries', async () => {
  mock = await browser.newPage();
  mock.setDefaultTimeout(30_000);
  await mock.bringToFront();  // a background tab gets no animation frames and no key focus
  mock.on('console', (msg) => {
    if (msg.type() === 'error') mockProblems.push(`console: ${msg.text()}`);
  });
  mock.on('pageerror', (e) => mockProblems.push(`page error: ${e.message}`));
  await mock.evaluateOnNewDocument(() => localStorage.removeItem('gemma-local.apiKey'));
  await mock.setRequestInterception(true);
  mock.on('request', (req) => {
    const url = new URL(req.url());
    if (!url.pathname.startsWith('/v1/')) return req.continue();
    const auth = req.headers()['authorization'] || '';
    seenAuth.push(`${url.pathname} ${auth}`);
    if (auth !== 'Bearer sk-test') {
      return req.respond({status: 401, contentType: 'application/json', body: JSON.stringify(
          {error: {message: 'invalid API key', type: 'invalid_request_error', param: null,
                   code: 'invalid_api_key'}})});
    }
    if (url.pathname === '/v1/models') {
      return req.respond({status: 200, contentType: 'application/json', body: JSON.stringify(
          {object: 'list', data: [{id: 'mock-model', object: 'model', created: 0, owned_by: 'local'}]})});
    }
    const events = [chunk({role: 'assistant', content: ''})];
    for (const piece of CANNED_REASONING.match(/.{1,7}/gs)) events.push(chunk({reasoning_content: piece}));
    for (const piece of CANNED_ANSWER.match(/.{1,5}/gs)) events.push(chunk({content: piece}));
    events.push(chunk({}, 'stop'));
    events.push({id: 'chatcmpl-mock', object: 'chat.completion.chunk', created: 0, model: 'mock-model',
                 choices: [], usage: {prompt_tokens: 12, completion_tokens: 40, total_tokens: 52,
                                      prompt_tokens_details: {cached_tokens: 0}}});
    events.push('[DONE]');
    return req.respond({status: 200, contentType: 'text/event-stream', body: sse(events)});
  });
  await mock.goto(`${base}/`, {waitUntil: 'load'});
  await mock.waitForSelector('#key-dialog[open]');
  await mock.type('#api-key', 'sk-test');
  await mock.click('#api-key-save');
  await mock.waitForFunction(() => document.getElementById('model-name').textContent === 'mock-model');
  assert.equal(await mock.evaluate(() => localStorage.getItem('gemma-local.apiKey')), 'sk-test');
  assert.deepEqual(seenAuth, ['/v1/models ', '/v1/models Bearer sk-test']);
});

test('a streamed reply: thinking collapsed above the answer, markdown rendered', async () => {
  await mock.type('#input', 'Show me some markdown');
  await mock.keyboard.press('Enter');
  await mock.waitForSelector('[data-testid=usage]:not([hidden])');
  assert.equal(seenAuth.at(-1), '/v1/chat/completions Bearer sk-test');
  const r = await mock.$eval('[data-testid=assistant-message]', (m) => {
    const details = m.querySelector('details[data-testid=thinking]');
    const content = m.querySelector('[data-testid=assistant-content]');
    const a = content.querySelector('a');
    return {
      thinkingHidden: details.hidden, thinkingOpen: details.open,
      summary: details.querySelector('summary').textContent,
      reasoning: details.querySelector('.thinking-body').textContent,
      thinkingFirst: details.compareDocumentPosition(content) === Node.DOCUMENT_POSITION_FOLLOWING,
      tags: [...content.children].map((e) => e.tagName.toLowerCase()),
      strong: content.querySelector('strong')?.textContent, em: content.querySelector('em')?.textContent,
      items: content.querySelectorAll('ul > li').length,
      code: content.querySelector('pre > code.language-js')?.textContent,
      href: a?.getAttribute('href'), rel: a?.getAttribute('rel'), target: a?.getAttribute('target'),
      bold: details.querySelectorAll('b').length,
      usage: m.querySelector('[data-testid=usage]').textContent,
    };
  });
  assert.equal(r.thinkingHidden, false);
  assert.equal(r.thinkingOpen, false, 'thinking is collapsed');
  assert.equal(r.summary, 'Thinking');
  assert.equal(r.reasoning, CANNED_REASONING, 'reasoning shown as text');
  assert.equal(r.bold, 0, 'reasoning is not parsed as HTML');
  assert.ok(r.thinkingFirst, 'thinking comes before the answer');
  assert.deepEqual(r.tags, ['h1', 'p', 'ul', 'pre', 'p']);
  assert.equal(r.strong, 'bold');
  assert.equal(r.em, 'italic');
  assert.equal(r.items, 2);
  assert.equal(r.code, 'console.log("<hi>");');
  assert.equal(r.href, 'https://example.com/docs');
  assert.match(r.rel, /noopener/);
  assert.equal(r.target, '_blank');
  assert.match(r.usage, /^40 tokens · [\d.]+ tokens\/s · prompt 12/);

  const file = path.join(tmp, 'chat_page_features.png');
  await mock.screenshot({path: file, type: 'png'});
  console.log(`screenshot: ${file}`);
  checkScreenshot(file);
  await mock.emulateMediaFeatures([{name: 'prefers-color-scheme', value: 'dark'}]);
  const dark = path.join(tmp, 'chat_page_dark.png');
  await mock.screenshot({path: dark, type: 'png'});
  console.log(`screenshot: ${dark}`);
  checkScreenshot(dark);
  assert.notEqual(decodePng(fs.readFileSync(dark)).px.readUIntBE(0, 3),
                  decodePng(fs.readFileSync(file)).px.readUIntBE(0, 3), 'dark mode changes colours');
});

test('New chat clears the conversation', async () => {
  await mock.click('#new-chat');
  assert.equal(await mock.$$eval('[data-testid=user-message], [data-testid=assistant-message]',
                                 (els) => els.length), 0);
  assert.deepEqual(await mock.evaluate(() => window.gemmaChat.state.history), []);
  assert.equal(await mock.$eval('#empty-state', (e) => e.isConnected), true);
  // The key-less request's 401 is the only console error expected on this tab.
  assert.deepEqual(mockProblems.filter((p) => !/status of 401/.test(p)), []);
});

test('no console errors, page errors or CSP violations', () => {
  // Chrome logs every failed fetch; the error test's 400 is the one expected.
  const expected = problems.findIndex((p) => /status of 400/.test(p));
  assert.notEqual(expected, -1, 'the error test logged its 400');
  assert.deepEqual(problems.filter((_, i) => i !== expected), []);
});
