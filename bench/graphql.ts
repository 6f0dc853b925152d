// Cost of deciding a GraphQL request of a fine-grained personal access token
// (`npm run bench:graphql`, `--json` for machine-readable output), beside a REST decision.
//
// One GraphQL decision is what the configuration API's handler does for such a request once its
// body is read: every reading of the parameters (src/admin/graphql.ts), the token found, its
// scopes (token-scopes.ts, cache warm), each document parsed (documents.ts), what it touches
// (explain.ts, with or without GitLab's schema) and each touch's permission at its target
// (permission-check.ts, target cache warm). Cases: a project query with a few nested fields,
// and a mutation. Cold: a new document text every request (a comment differs), so it is parsed
// and analysed; warm: the same text, from the caches. The REST row is the stages (runStages) of
// an allowed package upload to `/projects/:id/...` with warm caches, as bench/resolve.ts times it.
//
// CPU time of this process (process.cpuUsage, user + system) per request, median of the rounds:
// on a busy machine the wall clock also counts other processes' time.

import { readFileSync } from 'node:fs'
import { loadavg } from 'node:os'
import { pino } from 'pino'
import { graphqlReadings, readGraphqlParams } from '../src/admin/graphql.ts'
import { newExchange, runStages } from '../src/gate/pipeline.ts'
import type { GitlabClient } from '../src/gitlab/client.ts'
import { createDocumentCache } from '../src/graphql/documents.ts'
import { createGraphqlEnforcer, findGraphqlToken, type GraphqlEnforcer } from '../src/graphql/enforce.ts'
import { parseSchema } from '../src/graphql/explain.ts'
import { loadGraphqlCatalog } from '../src/graphql/load.ts'
import { checkPermission, createTargetResolver, permissionLabels } from '../src/graphql/permission-check.ts'
import { createTokenScopeResolver } from '../src/graphql/token-scopes.ts'
import { restEngine } from './rest-world.ts'

const JSON_OUTPUT = process.argv.includes('--json')
const ROUNDS = 21
const WARMUP_ROUNDS = 3
const PER_ROUND = 2_000

const TOKEN = 'glpat-bench-fine-grained-token'
const HEADERS = { 'private-token': TOKEN, 'content-type': 'application/json' }

// GitLab, answering the token's record and the project lookups; counted, so the warm rounds can
// be shown to call it never.
let gitlabCalls = 0
const gitlab: GitlabClient = {
  async get (path) {
    gitlabCalls++
    if (path.startsWith('/api/v4/personal_access_tokens/self')) {
      return { status: 200, body: { id: 1, user_id: 7, granular: true, scopes: ['granular'], granular_scopes: [{ access: 'selected_memberships', permissions: ['read_project', 'read_vulnerability', 'read_runner', 'create_vulnerability'], project_id: null, group_id: 10 }] } }
    }
    if (path.startsWith('/api/v4/projects/')) return { status: 200, body: { id: 200, path_with_namespace: 'acme/lib', namespace: { id: 10, kind: 'group', full_path: 'acme' } } }
    if (path.startsWith('/api/v4/groups/')) return { status: 200, body: { id: 10, full_path: 'acme', parent_id: null } }
    return { status: 404, body: {} }
  },
  async getList () { throw new Error('not used') },
  hasServiceToken: true,
  stats: () => ({}),
  async close () {}
}

const graphqlCatalog = loadGraphqlCatalog()
const labels = permissionLabels(graphqlCatalog)
const schema = parseSchema(readFileSync(new URL('../test/fixtures/graphql/gitlab-subset.graphql', import.meta.url), 'utf8'), 'gitlab-subset.graphql')
const logger = pino({ level: 'silent' })

function enforcer (withSchema: boolean): GraphqlEnforcer {
  const targets = createTargetResolver({ gitlab, ttlMs: 3_600_000 })
  return createGraphqlEnforcer({
    scopes: createTokenScopeResolver({ gitlab, ttlMs: 3_600_000 }),
    // As the gate's server wires it: a mutation's targets named by path are looked up per request.
    checkPermission: async (scopes, needs, target, fresh) => await checkPermission(scopes, needs, target, targets, { labels, ...(fresh === undefined ? {} : { fresh }) }),
    documents: createDocumentCache(),
    catalog: graphqlCatalog,
    ...(withSchema ? { schema } : {}),
    logger
  })
}

const DOCUMENTS = {
  query: 'query ProjectOverview($p: ID!) {\n  project(fullPath: $p) {\n    id\n    name\n    vulnerabilities(first: 20) { nodes { id title severity } }\n    runners { nodes { id } }\n  }\n}\n',
  mutation: 'mutation Report($in: VulnerabilityCreateInput!) {\n  vulnerabilityCreate(input: $in) { vulnerability { id title } errors }\n}\n'
} as const
const VARIABLES = {
  query: { p: 'acme/lib' },
  mutation: { in: { project: 'gid://gitlab/Project/200', name: 'bench', description: 'd', scanner: { id: 's', name: 's' }, identifiers: [{ name: 'i', url: 'https://x' }] } }
} as const

let serial = 0
/** The request body: the same text (warm), or one with a new comment (cold: parsed and analysed). */
function body (kind: keyof typeof DOCUMENTS, cold: boolean): Buffer {
  const query = cold ? `${DOCUMENTS[kind]}# ${++serial}\n` : DOCUMENTS[kind]
  return Buffer.from(JSON.stringify({ query, variables: VARIABLES[kind] }))
}

async function decideGraphql (e: GraphqlEnforcer, bytes: Buffer): Promise<void> {
  const params = readGraphqlParams(bytes, { method: 'POST', query: '', contentType: 'application/json', bodyReadable: true })
  const found = findGraphqlToken({ headers: HEADERS }, params)
  if (found.kind !== 'token') throw new Error('no token found')
  const result = await e.decide(found.token, graphqlReadings(params), 'bench')
  if (result.kind !== 'allow') throw new Error(`not allowed: ${JSON.stringify(result)}`)
}

// The REST decision: bench/resolve.ts's project route (stages of an allowed Conan upload).
const { engine, close } = await restEngine()
const REST_TARGET = '/api/v4/projects/700/packages/conan/v1/files/pkg/1.0/acme+registry/stable/0/export/conanfile.py'
async function decideRest (): Promise<void> {
  const x = newExchange('PUT', REST_TARGET, {}, [], null, engine.canonicalize('PUT', REST_TARGET))
  const result = await runStages(x, engine)
  if (result.kind !== 'forward' || x.verdict !== 'allow') throw new Error(`REST: ${x.verdict} ${x.reason}`)
}

interface Case { readonly name: string, readonly run: () => Promise<void>, readonly samples: number[] }
const noSchema = enforcer(false)
const withSchema = enforcer(true)
const cases: Case[] = [
  { name: 'REST: allowed package upload, /projects/:id (stages)', run: decideRest, samples: [] }
]
for (const [label, e] of [['no schema', noSchema], ['schema', withSchema]] as const) {
  for (const kind of ['query', 'mutation'] as const) {
    cases.push({ name: `GraphQL ${kind}, ${label}, warm`, run: async () => await decideGraphql(e, body(kind, false)), samples: [] })
    cases.push({ name: `GraphQL ${kind}, ${label}, cold (parsed)`, run: async () => await decideGraphql(e, body(kind, true)), samples: [] })
  }
}

/** CPU µs per request of one round. */
async function round (c: Case): Promise<number> {
  const start = process.cpuUsage()
  for (let i = 0; i < PER_ROUND; i++) await c.run()
  const used = process.cpuUsage(start)
  return (used.user + used.system) / PER_ROUND
}
const median = (xs: readonly number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!

// Warm the caches and the JIT, then interleave the cases round by round so drift hits all alike.
for (let r = 0; r < WARMUP_ROUNDS; r++) for (const c of cases) await round(c)
const warmCalls = gitlabCalls
for (let r = 0; r < ROUNDS; r++) for (const c of cases) c.samples.push(await round(c))
const rest = median(cases[0]!.samples)
const rows = cases.map(c => ({ case: c.name, cpu_us: Number(median(c.samples).toFixed(1)), x_rest: Number((median(c.samples) / rest).toFixed(2)) }))
const result = { timing: 'CPU time (process.cpuUsage), median of the rounds', rounds: ROUNDS, per_round: PER_ROUND, gitlab_calls_warm: gitlabCalls - warmCalls, node: process.version, rows }
if (JSON_OUTPUT) console.log(JSON.stringify(result))
else {
  console.log(`node ${process.version}; ${ROUNDS} rounds of ${PER_ROUND} after ${WARMUP_ROUNDS} warm-up, CPU time, median round; load average ${loadavg().map(x => x.toFixed(2)).join(' ')}`)
  const width = Math.max(...rows.map(r => r.case.length))
  for (const r of rows) console.log(`  ${r.case.padEnd(width)}  ${String(r.cpu_us).padStart(7)} µs  ×REST ${r.x_rest}`)
  console.log(`  GitLab calls once warm: ${result.gitlab_calls_warm}`)
}
await close()
