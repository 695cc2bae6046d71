// Records every HTTP response the OpenAI client receives, byte for byte, so that each body and each
// server-sent event can be checked against OpenAI's schema. It is passed to the client as its
// `fetch`: the client reads one branch of the body (Response.clone() tees it), we read the other.

// Which component schema a response must match, from its path and status.
function schemaFor(path, status, streamed) {
  if (status >= 400) return 'ErrorResponse';
  if (path.endsWith('/models')) return 'ListModelsResponse';
  if (path.endsWith('/chat/completions')) {
    return streamed ? 'CreateChatCompletionStreamResponse' : 'CreateChatCompletionResponse';
  }
  // OpenAI's completions stream chunks have the same shape as the response.
  if (path.endsWith('/completions')) return 'CreateCompletionResponse';
  return null;
}

// Splits an SSE body into its `data:` payloads (events end with a blank line; multi-line data
// joined with \n, as the SSE spec says).
export function sseData(text) {
  const out = [];
  for (const event of text.split(/\r?\n\r?\n/)) {
    const data = event.split(/\r?\n/).filter((l) => l.startsWith('data:'))
      .map((l) => l.slice(5).replace(/^ /, ''));
    if (data.length) out.push(data.join('\n'));
  }
  return out;
}

export class Capture {
  constructor() {
    this.pending = [];  // promises of { method, path, status, contentType, text }
    this.fetch = async (input, init) => {
      const res = await fetch(input, init);
      const url = new URL(typeof input === 'string' || input instanceof URL ? input : input.url);
      const method = init?.method ?? 'GET';
      this.pending.push(res.clone().text().then((text) => ({
        method, path: url.pathname, status: res.status,
        contentType: res.headers.get('content-type') ?? '', text,
      })));
      return res;
    };
  }

  // Every captured response so far, read to the end, as a list of
  // { what, schema, body } documents: one per JSON body, one per SSE data event but [DONE].
  async documents() {
    const responses = await Promise.all(this.pending);
    const docs = [];
    for (const r of responses) {
      const what = `${r.method} ${r.path} -> ${r.status}`;
      const streamed = r.contentType.startsWith('text/event-stream');
      const payloads = streamed ? sseData(r.text).filter((d) => d !== '[DONE]') : [r.text];
      if (streamed && !sseData(r.text).includes('[DONE]')) {
        docs.push({ what, schema: null, problem: 'stream did not end with data: [DONE]' });
      }
      payloads.forEach((p, i) => {
        let body;
        try {
          body = JSON.parse(p);
        } catch {
          docs.push({ what, schema: null, problem: `not JSON: ${p.slice(0, 200)}` });
          return;
        }
        // An error in the middle of a stream is sent as an error event.
        const schema = streamed && body && body.error ? 'ErrorResponse' : schemaFor(r.path, r.status, streamed);
        docs.push({ what: streamed ? `${what} event ${i}` : what, schema, body });
      });
    }
    return docs;
  }
}
