// Reasons are one typed union (the errors table, decide()'s allow reasons, the gate's own):
// a reason outside it does not compile, and every reason in it is counted under its own metric
// label, never as `other`. GateError takes its status from the table; a stage that throws one
// denies with it, and the decision names that stage.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Readable } from 'node:stream'
import { loadCatalog } from '../../src/catalog/load.ts'
import { createPolicyIndex } from '../../src/catalog/policy-index.ts'
import { errors, GATE_REASONS, GateError, type ErrorCode, type Reason } from '../../src/errors.ts'
import type { GrantCache } from '../../src/grants/cache.ts'
import { createInstanceSettings } from '../../src/grants/model.ts'
import type { IdentityOutcome, IdentityStage } from '../../src/identity/stage.ts'
import { IdentityError } from '../../src/identity/types.ts'
import { newExchange, runStages, type Engine, type StageView } from '../../src/gate/pipeline.ts'
import { createMetrics, type RequestObservation } from '../../src/metrics.ts'
import type { AllowReason } from '../../src/policy/decide.ts'
import { createCanonicalizer } from '../../src/routing/canonical.ts'
import { Router } from '../../src/routing/router.ts'

// A Record over AllowReason: fails to compile when decide() gains an allow reason this lacks.
const ALLOW_REASONS: Record<AllowReason, true> = {
  SELF_ACCESS: true, INBOUND_DISABLED: true, UNKNOWN_PROJECT_ALLOWED: true, DEFAULT_PERMISSIONS: true, FINE_GRAINED_POLICIES_OFF: true, SKIP_POLICIES: true, POLICIES_GRANTED: true, PUBLIC_PROJECT_FEATURES: true, PUBLIC_PROJECT_READ: true
}

test('a reason outside the union does not compile', () => {
  // @ts-expect-error: not a reason
  const unknown: Reason = 'SOMETHING_NEW'
  const observation = (reason: Reason): RequestObservation => ({ decision: 'deny', reason, resource: undefined, method: 'GET', decisionSeconds: 0, totalSeconds: 0 })
  // @ts-expect-error: the metrics' reason label is typed too
  const label: RequestObservation = { ...observation('ALLOWED'), reason: 'SOMETHING_NEW' }
  assert.equal(typeof unknown, 'string')
  assert.equal(typeof label.reason, 'string')
})

test('a stage cannot write the decision: only runStages does', () => {
  const stageLike = (x: StageView): void => {
    // @ts-expect-error: a stage returns its verdict and reason; the exchange it sees has none
    x.verdict = 'allow'
    // @ts-expect-error: likewise the reason
    x.reason = 'ALLOWED'
  }
  const x = exchange(engineWith(async () => { throw new Error('not called') }), 'GET', '/api/v4/projects/200/packages')
  stageLike(x)
  assert.equal(x.stage, null, 'nothing decided yet')
})

test('every reason is counted under its own label', async () => {
  const metrics = createMetrics()
  const all: Reason[] = [...(Object.keys(errors) as ErrorCode[]), ...(Object.keys(ALLOW_REASONS) as AllowReason[]), ...GATE_REASONS]
  for (const reason of all) metrics.observeRequest({ decision: 'deny', reason, resource: undefined, method: 'GET', decisionSeconds: 0, totalSeconds: 0 })
  const text = await metrics.scrape()
  assert.doesNotMatch(text, /job_token_gate_requests_total\{[^}]*reason="other"[^}]*\} [1-9]/)
  for (const reason of all) assert.match(text, new RegExp(`job_token_gate_requests_total\\{[^}]*reason="${reason}"[^}]*\\} 1`), reason)
})

test('GateError: code, status and message from the table unless given', () => {
  const plain = new GateError('UPSTREAM_TIMEOUT')
  assert.ok(plain instanceof Error)
  assert.deepEqual([plain.name, plain.code, plain.status, plain.message], ['GateError', 'UPSTREAM_TIMEOUT', 504, errors.UPSTREAM_TIMEOUT.message])
  const cause = new Error('socket hang up')
  const told = new GateError('IDENTITY_LOOKUP_FAILED', '502 Bad Gateway - try later', { cause })
  assert.deepEqual([told.status, told.message, told.cause], [502, '502 Bad Gateway - try later', cause])
})

function engineWith (run: () => Promise<IdentityOutcome>): Engine {
  const catalog = loadCatalog()
  return {
    router: Router.compile(catalog.routes),
    canonicalize: createCanonicalizer(),
    policies: createPolicyIndex(catalog.policies),
    settings: createInstanceSettings(),
    grants: {} as GrantCache,
    identity: { run } satisfies IdentityStage,
    catalogVersion: catalog.version,
    options: { mode: 'enforce', shadowResources: [], nonApiJobTokens: 'forward', unresolvedProject: 'defer' }
  }
}

const exchange = (engine: Engine, method: string, target: string): ReturnType<typeof newExchange> =>
  newExchange(method, target, {}, [], null, engine.canonicalize(method, target))

test('runStages: a GateError thrown by a stage is its deny, named by that stage', async () => {
  const engine = engineWith(async () => { throw new GateError('IDENTITY_UPSTREAM_UNAVAILABLE') })
  const x = exchange(engine, 'GET', '/api/v4/projects/200/packages')
  const outcome = await runStages(x, engine)
  assert.equal(outcome.kind, 'deny')
  assert.equal(outcome.kind === 'deny' && outcome.deny.status, 503)
  assert.deepEqual([x.verdict, x.reason, x.stage], ['error', 'IDENTITY_UPSTREAM_UNAVAILABLE', 'identify'])
})

test('runStages: a GateError subclass thrown by a stage answers its public message, never its log message', async () => {
  const engine = engineWith(async () => { throw new IdentityError('IDENTITY_UPSTREAM_UNAVAILABLE', 'GET /api/v4/job failed: ECONNREFUSED 10.1.2.3:8181') })
  const outcome = await runStages(exchange(engine, 'GET', '/api/v4/projects/200/packages'), engine)
  assert.ok(outcome.kind === 'deny')
  assert.deepEqual([outcome.deny.status, outcome.deny.message], [503, errors.IDENTITY_UPSTREAM_UNAVAILABLE.message])
})

test('runStages: the verdict and reason are the deciding stage\'s', async () => {
  const none = engineWith(async () => ({ kind: 'none', body: { kind: 'buffered', bytes: Buffer.alloc(0) }, credentials: [], bodyParams: new Set() }))
  const x = exchange(none, 'GET', '/api/v4/projects/200/variables')
  assert.deepEqual(await runStages(x, none), { kind: 'forward' })
  assert.deepEqual([x.verdict, x.reason, x.stage], ['no_job_token', 'NO_JOB_TOKEN', 'user_roles'])

  const identity = { jobId: 1, jobProjectId: 100, jobProjectPath: 'acme/platform/app', ancestorGroupIds: [11, 10], userId: 7 }
  const job = engineWith(async () => ({ kind: 'job', identity, token: 't', source: 'header' as never, basicAuth: false, body: { kind: 'stream', stream: Readable.from([]), guarded: false }, credentials: [], bodyParams: new Set() }))
  const artifacts = exchange(job, 'GET', '/api/v4/jobs/1/artifacts')
  assert.deepEqual(await runStages(artifacts, job), { kind: 'forward' })
  assert.deepEqual([artifacts.verdict, artifacts.reason, artifacts.stage], ['allow', 'SELF_ACCESS', 'resolve_grants'])
  const other = exchange(job, 'GET', '/api/v4/jobs/99/artifacts')
  await runStages(other, job)
  assert.deepEqual([other.verdict, other.reason, other.stage], ['deferred', 'PROJECT_NOT_IN_URL', 'resolve_grants'])
  const rejected = exchange(job, 'GET', '/api/v4/projects/1/%2e%2e/2')
  const refused = await runStages(rejected, job)
  assert.equal(refused.kind === 'deny' && refused.deny.code, 'PATH_DOT_SEGMENT')
  assert.deepEqual([rejected.verdict, rejected.stage], ['deny', 'canonicalize'])
})

test('runStages: a deny whose project facts are cached is decided without a promise; one whose lookup fails is a 503 of the decide stage', async () => {
  const identity = { jobId: 1, jobProjectId: 100, jobProjectPath: 'acme/platform/app', ancestorGroupIds: [11, 10], userId: 7 }
  const withFacts = (get: NonNullable<Engine['projectFacts']>['get']): Engine => ({
    ...engineWith(async () => { throw new Error('not called') }),
    // The job's identity answered synchronously, as a cached token is.
    identity: { run: () => ({ kind: 'job', identity, token: 't', source: 'header' as never, basicAuth: false, body: { kind: 'stream', stream: Readable.from([]), guarded: false }, credentials: [], bodyParams: new Set() }) },
    // A project the store does not know: an empty allowlist, which a public project could open.
    grants: { get: () => null } as unknown as GrantCache,
    projectFacts: { get, userExternal: () => false, seesPrivate: true, stats: () => ({ hits: 0, misses: 0 }) }
  })
  const cached = withFacts(() => ({ id: 200, path: 'lib', fullPath: 'acme/lib', visibility: 'private', features: {} }))
  const x = exchange(cached, 'GET', '/api/v4/projects/200/packages')
  const outcome = runStages(x, cached)
  assert.ok(!(outcome instanceof Promise), 'cached facts: no promise')
  assert.equal(outcome.kind === 'deny' && outcome.deny.status, 403)
  assert.deepEqual([x.verdict, x.stage], ['deny', 'decide'])

  // The lookup started synchronously is the one awaited: its failure is the stage's 503, never an
  // unhandled rejection (which would end the process and fail this test).
  let lookups = 0
  const down = withFacts(() => { lookups++; return Promise.reject(new GateError('PROJECT_LOOKUP_UNAVAILABLE')) })
  const y = exchange(down, 'GET', '/api/v4/projects/200/packages')
  const failed = await runStages(y, down)
  assert.equal(failed.kind === 'deny' && failed.deny.status, 503)
  assert.deepEqual([y.verdict, y.reason, y.stage], ['error', 'PROJECT_LOOKUP_UNAVAILABLE', 'decide'])
  assert.equal(lookups, 1, 'one lookup per request')
})
