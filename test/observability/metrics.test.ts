// /metrics on the health listener: label values come from fixed sets whatever the traffic, and
// no token or raw path ever reaches the output; the collect-time metrics follow the gate's state.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DEFAULT_CATALOG_DIR, loadCatalog } from '../../src/catalog/load.ts'
import { createInstanceSettings, validateProjectGrants } from '../../src/grants/model.ts'
import { createPolicyIndex } from '../../src/catalog/policy-index.ts'
import { DECISIONS, METHODS, REASONS } from '../../src/metrics.ts'
import { startTestGate, TOKENS } from '../helpers/gate.ts'
import { send } from '../helpers/http.ts'
import { has, scrape, total } from '../helpers/metrics.ts'

const job = (token: string): Record<string, string> => ({ 'job-token': token })
const HOSTILE_TOKEN = 'glcbt-64_hostile0secret0token0000'
const PAT = 'glpat-metricssecret000000'
const RAW_MARKER = 'rawpathmarker7b1'

test('request counter labels come from fixed sets; no token or raw path in /metrics', async (t) => {
  const g = await startTestGate(t)
  const requests: Array<[string, string, Record<string, string>?, string?]> = [
    ['GET', '/api/v4/projects/200/packages', job(TOKENS.app)],
    ['HEAD', '/api/v4/projects/200/packages/5', job(TOKENS.app)],
    ['PUT', '/api/v4/projects/200/packages/npm/foo', job(TOKENS.app)],
    ['POST', '/api/v4/projects/200/deployments', job(TOKENS.app)],
    ['GET', '/api/v4/projects/200/packages', job(TOKENS.tools)],
    ['GET', '/api/v4/projects/200/packages', job(HOSTILE_TOKEN)],
    ['GET', `/api/v4/projects/200/packages?job_token=${HOSTILE_TOKEN}`],
    ['GET', `/api/v4/projects/${RAW_MARKER}%2Fx/packages`, job(TOKENS.app)],
    ['GET', `/api/v4/projects/200/${RAW_MARKER}`, job(TOKENS.app)],
    ['GET', `/api/v4/projects/100/%2e%2e/${RAW_MARKER}`, job(TOKENS.app)],
    ['GET', `/api/v4/projects/200/packages/${HOSTILE_TOKEN}`, { 'private-token': PAT }],
    ['GET', `/api/v4/projects/200/packages/%00${RAW_MARKER}`, job(TOKENS.app)],
    ['DELETE', '/api/v4/projects/200/packages/7', job(TOKENS.app)],
    ['PATCH', '/api/v4/projects/200/variables', job(TOKENS.app)],
    ['PROPFIND', `/${RAW_MARKER}`, job(TOKENS.app)],
    ['OPTIONS', '/api/v4/projects/200/packages', { 'private-token': PAT }],
    ['GET', `/groups/10/-/packages/maven/${RAW_MARKER}`, job(TOKENS.app)],
    ['GET', '/api/v4/groups/10/-/packages/maven/com/acme/app/1.0/app-1.0.jar', job(TOKENS.app)],
    ['POST', '/api/v4/projects/200/deployments', { 'content-type': 'application/x-www-form-urlencoded' }, `job_token=${HOSTILE_TOKEN}`],
    ['GET', '/api/v4/projects/100/deployments', { authorization: 'Bearer ' + HOSTILE_TOKEN }]
  ]
  for (const [method, path, headers, body] of requests) await send(g.url, method, path, headers ?? {}, body)

  const { text, samples, contentType } = await scrape(g.healthUrl)
  assert.match(contentType ?? '', /^text\/plain/)
  const resources = new Set([...loadCatalog().routes.map(r => r.resource), 'none'])
  const counted = samples.filter(s => s.name === 'job_token_gate_requests_total')
  assert.equal(counted.reduce((n, s) => n + s.value, 0), requests.length, 'every request is counted once')
  for (const s of counted) {
    assert.deepEqual(Object.keys(s.labels).sort(), ['decision', 'method', 'reason', 'resource'])
    assert.ok((DECISIONS as readonly string[]).includes(s.labels.decision!), `decision ${s.labels.decision}`)
    assert.ok(REASONS.has(s.labels.reason!) && s.labels.reason !== 'other', `reason ${s.labels.reason}`)
    assert.ok(resources.has(s.labels.resource!), `resource ${s.labels.resource}`)
    assert.ok(METHODS.has(s.labels.method!), `method ${s.labels.method}`)
  }
  assert.equal(total(samples, 'job_token_gate_requests_total', { decision: 'allow', reason: 'POLICIES_GRANTED', resource: 'packages', method: 'GET' }), 1)
  assert.equal(total(samples, 'job_token_gate_requests_total', { decision: 'allow', resource: 'packages', method: 'HEAD' }), 1)
  assert.equal(total(samples, 'job_token_gate_requests_total', { decision: 'deny', reason: 'MISSING_POLICIES', resource: 'packages', method: 'PUT' }), 1)
  assert.equal(total(samples, 'job_token_gate_requests_total', { decision: 'deny', reason: 'PATH_DOT_SEGMENT', resource: 'none' }), 1)
  assert.equal(total(samples, 'job_token_gate_requests_total', { reason: 'TOKEN_UNKNOWN' }), 4, 'header, query, form body and Bearer tokens')
  assert.equal(total(samples, 'job_token_gate_requests_total', { method: 'other' }), 2, 'PROPFIND and OPTIONS')
  assert.equal(total(samples, 'job_token_gate_requests_total', { decision: 'no_job_token', reason: 'NO_JOB_TOKEN' }), 2)
  assert.equal(total(samples, 'job_token_gate_requests_total', { decision: 'no_job_token', reason: 'JOB_TOKEN_STRIPPED' }), 2, 'job tokens on routes that take none')
  assert.equal(total(samples, 'job_token_gate_requests_total', { decision: 'deferred', reason: 'NO_PROJECT' }), 1, 'the group has no such Maven package')

  for (const secret of [...Object.values(TOKENS), HOSTILE_TOKEN, PAT, g.gitlab.serviceToken, RAW_MARKER, '/api/v4', '/projects/200', 'glcbt-', 'glpat-']) {
    assert.ok(!text.includes(secret), `/metrics must not contain ${secret}`)
  }

  // Histograms resolve microseconds to seconds; the forwarded requests have an upstream time.
  assert.ok(samples.some(s => s.name === 'job_token_gate_decision_duration_seconds_bucket' && s.labels.le === '0.00001'))
  assert.ok(samples.some(s => s.name === 'job_token_gate_request_duration_seconds_bucket' && s.labels.le === '30'))
  const forwarded = g.seen.length
  assert.ok(forwarded > 0)
  assert.equal(total(samples, 'job_token_gate_upstream_headers_duration_seconds_count'), forwarded)
  assert.equal(total(samples, 'job_token_gate_upstream_responses_total', { status_class: '2xx' }), forwarded)
  assert.equal(total(samples, 'job_token_gate_decision_duration_seconds_count'), requests.length)

  // Collect-time metrics.
  const stats = g.gate.grants.stats()
  assert.ok(stats.hits + stats.misses > 0)
  assert.equal(total(samples, 'job_token_gate_grant_cache_hits_total'), stats.hits)
  assert.equal(total(samples, 'job_token_gate_grant_cache_misses_total'), stats.misses)
  assert.ok(total(samples, 'job_token_gate_gitlab_requests_total', { endpoint: 'job', outcome: 'ok' }) >= 1)
  assert.ok(total(samples, 'job_token_gate_gitlab_requests_total', { endpoint: 'job', outcome: 'rejected' }) >= 1)
  assert.ok(total(samples, 'job_token_gate_identity_cache_lookups_total', { result: 'hit' }) >= 1, 'the app token is resolved once, then cached')
  assert.ok(total(samples, 'job_token_gate_identity_cache_lookups_total', { result: 'negative_hit' }) >= 1, 'the hostile token is remembered as rejected')
  assert.equal(total(samples, 'job_token_gate_in_flight_requests'), 0)
  assert.ok(total(samples, 'job_token_gate_upstream_pool_connections', { state: 'connected' }) >= 1)
  assert.equal(total(samples, 'job_token_gate_grant_store_up', { kind: 'memory' }), 1)
  const version = loadCatalog().version
  assert.equal(total(samples, 'job_token_gate_catalog_info', { version }), 1)
  assert.equal(total(samples, 'job_token_gate_catalog_routes'), loadCatalog().routes.length)
  assert.equal(total(samples, 'job_token_gate_catalog_last_reload_success'), 1)
  assert.ok(Math.abs(total(samples, 'job_token_gate_catalog_last_reload_success_timestamp_seconds') - Date.now() / 1000) < 600)
  assert.ok(has(samples, 'process_cpu_user_seconds_total'), 'default process metrics')
  assert.ok(has(samples, 'nodejs_eventloop_lag_seconds'))
  assert.equal(samples.filter(s => s.name.startsWith('job_token_gate_')).length > 0, true)
})

test('invalidations and their lag; store down; catalog reload failure', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'catalog-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  for (const file of ['routes.json', 'policies.json', 'routes.schema.json', 'policies.schema.json']) cpSync(join(DEFAULT_CATALOG_DIR, file), join(dir, file))
  const g = await startTestGate(t, { GATE_CATALOG_DIR: dir })
  const before = await scrape(g.healthUrl)
  const invalidationsBefore = total(before.samples, 'job_token_gate_grant_invalidations_total')
  const policies = createPolicyIndex(loadCatalog().policies)
  await g.store.put(validateProjectGrants({ projectId: 600, projectPath: 'acme/new', inboundEnabled: true, entries: [] }, { settings: createInstanceSettings(), policies }))
  const after = await scrape(g.healthUrl)
  assert.equal(total(after.samples, 'job_token_gate_grant_invalidations_total'), invalidationsBefore + 1)
  assert.equal(total(after.samples, 'job_token_gate_grant_invalidation_lag_seconds_count'), invalidationsBefore + 1)
  assert.equal(total(after.samples, 'job_token_gate_catalog_reloads_total', { result: 'failure' }), 0)

  writeFileSync(join(dir, 'routes.json'), '{"routes": [}')
  assert.equal(g.gate.reloadCatalog().ok, false)
  const failed = await scrape(g.healthUrl)
  assert.equal(total(failed.samples, 'job_token_gate_catalog_last_reload_success'), 0)
  assert.equal(total(failed.samples, 'job_token_gate_catalog_reloads_total', { result: 'failure' }), 1)
  assert.equal(total(failed.samples, 'job_token_gate_catalog_info', { version: loadCatalog().version }), 1, 'the last good catalog stays loaded')

  await g.store.close()
  const down = await scrape(g.healthUrl)
  assert.equal(total(down.samples, 'job_token_gate_grant_store_up', { kind: 'memory' }), 0)
  await send(g.url, 'GET', '/api/v4/projects/300/packages', job(TOKENS.app))
  const refused = await scrape(g.healthUrl)
  assert.equal(total(refused.samples, 'job_token_gate_requests_total', { decision: 'error', reason: 'GRANTS_STORE_UNAVAILABLE' }), 1)
  assert.equal(total(refused.samples, 'job_token_gate_grant_store_errors_total'), 1)
  assert.equal(total(refused.samples, 'job_token_gate_grant_cache_fail_closed_total'), 1)
})

test('each gate has its own registry', async (t) => {
  const a = await startTestGate(t)
  const b = await startTestGate(t)
  await send(a.url, 'GET', '/api/v4/projects/200/packages', job(TOKENS.app))
  assert.equal(total((await scrape(a.healthUrl)).samples, 'job_token_gate_requests_total'), 1)
  assert.equal(total((await scrape(b.healthUrl)).samples, 'job_token_gate_requests_total'), 0)
})
