// Known differences between serve's bodies and OpenAI's schema / the client's types, each matched
// against one line of Ajv's error text (`schema`) or of tsc's (`types`).
//   kind 'server': serve is wrong; a test whose only problems are such lines reports TODO, not
//     pass. Delete the entry once serve is fixed.
//   kind 'spec': OpenAI's own API sends this, but the published schema and the client's types do
//     not allow it; a test whose only problems are these (or 'server' ones) passes with a note.
// Anything not listed fails. Shared by the openai client suite (suite.mjs) and the load test.
export const KNOWN_GAPS = new Map([
  // Legacy completions streams: OpenAI sends `finish_reason: null` before the last chunk, but
  // CreateCompletionResponse (which the schema says stream chunks share) has a non-null enum.
  ['completion-chunk-finish-null', {
    kind: 'spec',
    schema: /^CreateCompletionResponse\/choices\/\d+\/finish_reason must be (string|equal to one of the allowed values)$/,
    // (tsc prints the union's members in varying order)
    types: /error TS2322: Type 'null' is not assignable to type '"(stop|length|content_filter)"( \| "(stop|length|content_filter)"){2}'/,
  }],
  // `echo` + `logprobs`: OpenAI sends null for the first prompt token (nothing predicts it), but
  // the schema's token_logprobs items are numbers and top_logprobs items objects.
  ['echo-first-logprob-null', {
    kind: 'spec',
    schema: /^CreateCompletionResponse\/choices\/\d+\/logprobs(\/token_logprobs\/0 must be number|\/top_logprobs\/0 must be object| must be null| must match a schema in anyOf)$/,
    types: /error TS2322: Type 'null' is not assignable to type '(number|\{ \[key: string\]: number; \})'/,
  }],
]);
