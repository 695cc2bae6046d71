// Validators for OpenAI's published OpenAPI description: ../shared/testdata/openai-openapi/openapi.yaml
// ($GEMMA_LOCAL_SHARED_DIR instead of ../shared, or the file itself as $GEMMA_LOCAL_OPENAPI).
//
// The component schemas are handed to Ajv (JSON Schema 2020-12, as OpenAPI 3.1 uses) in strict mode,
// after rewriting only the OpenAPI 3.0 leftovers that the data's README names, which mean the same
// thing written as JSON Schema:
//   - `nullable: true`             -> `anyOf: [<the schema without nullable>, {type: "null"}]`
//   - `minimum: x, exclusiveMinimum: true` (boolean form) -> `exclusiveMinimum: x`
// Keywords that only annotate (no effect on which documents are valid) are declared to Ajv as
// annotations, so a keyword we do not know still makes compilation fail loudly:
//   - `x-*` vendor extensions, `example` (OpenAPI 3.0 annotation)
//   - `discriminator`: in OpenAPI it is a hint for picking a `oneOf`/`anyOf` branch; the `oneOf`
//     itself is still validated in full, so ignoring the hint accepts exactly the same documents.
// `#/components/schemas/X` refs become `#/$defs/X` (Ajv needs the document root to be a schema).
// Nothing is relaxed: `required`, `enum`, `type`, `additionalProperties` are all used as published.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import YAML from 'yaml';

const here = dirname(fileURLToPath(import.meta.url));
export const OPENAPI_PATH =
  process.env.GEMMA_LOCAL_OPENAPI ??
  join(process.env.GEMMA_LOCAL_SHARED_DIR ?? join(here, '..', '..', '..', 'shared'),
       'testdata', 'openai-openapi', 'openapi.yaml');

// Parsing the 3 MB YAML takes ~2 s on a slow core: cache the parsed document as JSON, keyed by the
// file's hash, inside node_modules (ignored by git, removed with the install).
function loadDocument(path) {
  const text = readFileSync(path, 'utf8');
  const hash = createHash('sha256').update(text).digest('hex').slice(0, 16);
  const cache = join(here, 'node_modules', '.cache', `openapi-${hash}.json`);
  if (existsSync(cache)) return JSON.parse(readFileSync(cache, 'utf8'));
  const doc = YAML.parse(text, { maxAliasCount: -1 });
  try {
    mkdirSync(dirname(cache), { recursive: true });
    writeFileSync(cache, JSON.stringify(doc));
  } catch {
    // A read-only install still works, only slower.
  }
  return doc;
}

// Rewrites the OpenAPI 3.0 forms listed above, everywhere in a schema tree (returns a new tree).
// Only objects that are schemas are rewritten; `properties` maps are walked entry by entry, and
// annotation values (example, x-*) are copied untouched.
export function toJsonSchema(node) {
  if (Array.isArray(node)) return node.map(toJsonSchema);
  if (node === null || typeof node !== 'object') return node;
  const out = {};
  for (const [key, value] of Object.entries(node)) {
    if (key === 'example' || key.startsWith('x-') || key === 'enum' || key === 'const' ||
        key === 'default') {
      out[key] = value;
    } else if (key === 'properties' || key === 'patternProperties' || key === '$defs') {
      out[key] = Object.fromEntries(Object.entries(value).map(([k, v]) => [k, toJsonSchema(v)]));
    } else if (key === '$ref' && typeof value === 'string') {
      // Ajv compiles a document's root, which must be a schema: the components move to `$defs`.
      out[key] = value.replace(/^#\/components\/schemas\//, '#/$defs/');
    } else {
      out[key] = toJsonSchema(value);
    }
  }
  for (const bound of ['Minimum', 'Maximum']) {
    const ex = `exclusive${bound}`;
    const plain = bound.toLowerCase();
    if (typeof out[ex] === 'boolean') {
      if (out[ex]) {
        if (typeof out[plain] !== 'number') throw new Error(`boolean ${ex} without ${plain}`);
        out[ex] = out[plain];
        delete out[plain];
      } else {
        delete out[ex];
      }
    }
  }
  if ('nullable' in out) {
    const nullable = out.nullable;
    delete out.nullable;
    if (nullable === true) {
      // Annotations stay outside; everything that constrains goes into the first branch.
      const { description, title, deprecated, ...rest } = out;
      const wrapped = { anyOf: [rest, { type: 'null' }] };
      if (description !== undefined) wrapped.description = description;
      if (title !== undefined) wrapped.title = title;
      if (deprecated !== undefined) wrapped.deprecated = deprecated;
      return wrapped;
    }
  }
  return out;
}

// The component schemas reachable by `$ref` from `roots` (names under #/components/schemas).
// Only these go to Ajv: a few schemas elsewhere in the file (CompoundFilter's boolean
// `$recursiveAnchor`, ContainerResource's duplicate `required` entry) break the 2020-12
// meta-schema, and they have nothing to do with the responses validated here.
function closure(schemas, roots) {
  const seen = new Set();
  const todo = [...roots];
  while (todo.length) {
    const name = todo.pop();
    if (seen.has(name)) continue;
    if (!(name in schemas)) throw new Error(`no schema #/components/schemas/${name}`);
    seen.add(name);
    JSON.stringify(schemas[name], (k, v) => {
      if (k === '$ref' && typeof v === 'string') todo.push(v.replace('#/components/schemas/', ''));
      return v;
    });
  }
  return Object.fromEntries([...seen].sort().map((n) => [n, schemas[n]]));
}

export const RESPONSE_SCHEMAS = [
  'CreateChatCompletionResponse', 'CreateChatCompletionStreamResponse', 'CreateCompletionResponse',
  'ListModelsResponse', 'ErrorResponse',
];

// Returns { validate(schemaName, body) -> null | "ajv error text" } for the schemas in `roots`.
export function loadValidators(roots = RESPONSE_SCHEMAS, path = OPENAPI_PATH) {
  const doc = loadDocument(path);
  const schemas = closure(doc.components.schemas, roots);
  const ajv = new Ajv2020({
    // strictSchema (unknown keywords fail compilation) stays on. strictTypes/strictTuples are
    // lints about schema style (e.g. `required` beside no `type: object`, as in `Model`); they
    // change no validation result, and the published schemas trip them.
    strict: true, strictTypes: false, strictTuples: false, allErrors: true,
  });
  addFormats(ajv);
  // OpenAI's own format: seconds since the epoch.
  ajv.addFormat('unixtime', { type: 'number', validate: (x) => Number.isInteger(x) && x >= 0 });
  const extensions = new Set();
  JSON.stringify(schemas, (k, v) => {
    if (k.startsWith('x-')) extensions.add(k);
    return v;
  });
  for (const keyword of [...extensions, 'example', 'discriminator']) ajv.addKeyword({ keyword });
  ajv.addSchema({ $id: 'openai', $defs: toJsonSchema(schemas) });
  const compiled = new Map();
  return {
    validate(name, body) {
      if (!compiled.has(name)) {
        const fn = ajv.getSchema(`openai#/$defs/${name}`);
        if (!fn) throw new Error(`no schema #/components/schemas/${name} in ${path}`);
        compiled.set(name, fn);
      }
      const fn = compiled.get(name);
      if (fn(body)) return null;
      return ajv.errorsText(fn.errors, { separator: '\n  ', dataVar: name });
    },
  };
}
