// Cost of deciding a group or instance route whose project is looked up (`npm run bench:resolve`,
// `--json` for machine-readable output): the stages (runStages) of an allowed Conan upload
// through the instance API (`/packages/conan/v1/files/...`, project found from the username
// through src/projects/, cache warm) against the same upload through `/projects/:id/...`.
// Same job, same grants (a group entry with admin_packages), same package rules, GitLab never
// called once warm. Target: the resolved route costs at most 1.10× the project route.

import { newExchange, runStages } from '../src/gate/pipeline.ts'
import type { GitlabClient } from '../src/gitlab/client.ts'
import { createProjectFinder } from '../src/projects/finder.ts'
import { restEngine } from './rest-world.ts'

const JSON_OUTPUT = process.argv.includes('--json')
const ROUNDS = 21
const PER_ROUND = 10_000

// GitLab answers the one lookup; counted, so the warm rounds can be shown to call it never.
let gitlabCalls = 0
const gitlab: GitlabClient = {
  async get () { gitlabCalls++; return { status: 200, body: { id: 700, path_with_namespace: 'acme/registry' } } },
  async getList () { throw new Error('not used') },
  hasServiceToken: true,
  stats: () => ({}),
  async close () {}
}

const { engine, close } = await restEngine({ projects: createProjectFinder({ gitlab, ttlMs: 3_600_000 }) })

const CASES = {
  project: '/api/v4/projects/700/packages/conan/v1/files/pkg/1.0/acme+registry/stable/0/export/conanfile.py',
  resolved: '/api/v4/packages/conan/v1/files/pkg/1.0/acme+registry/stable/0/export/conanfile.py'
} as const

async function once (target: string): Promise<void> {
  const x = newExchange('PUT', target, {}, [], null, engine.canonicalize('PUT', target))
  const result = await runStages(x, engine)
  if (result.kind !== 'forward' || x.verdict !== 'allow' || x.accessedProjectId !== 700) throw new Error(`${target}: ${x.verdict} ${x.reason}`)
}

async function round (target: string): Promise<number> {
  const start = process.hrtime.bigint()
  for (let i = 0; i < PER_ROUND; i++) await once(target)
  return Number(process.hrtime.bigint() - start) / PER_ROUND
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!

// Warm both caches and the JIT, then alternate the cases round by round so drift hits both.
for (let i = 0; i < 2; i++) for (const target of Object.values(CASES)) await round(target)
const warmCalls = gitlabCalls
const samples: Record<keyof typeof CASES, number[]> = { project: [], resolved: [] }
for (let r = 0; r < ROUNDS; r++) {
  for (const name of Object.keys(CASES) as Array<keyof typeof CASES>) samples[name].push(await round(CASES[name]))
}
const project = median(samples.project)
const resolved = median(samples.resolved)
const ratio = resolved / project
const result = {
  project_ns: Math.round(project),
  resolved_ns: Math.round(resolved),
  ratio: Number(ratio.toFixed(3)),
  target: 1.1,
  gitlab_calls_warm: gitlabCalls - warmCalls,
  node: process.version
}
if (JSON_OUTPUT) console.log(JSON.stringify(result))
else {
  console.log(`allowed Conan upload, stages only, median of ${ROUNDS} rounds of ${PER_ROUND}:`)
  console.log(`  /projects/:id route            ${result.project_ns} ns`)
  console.log(`  instance route, project found  ${result.resolved_ns} ns (GitLab calls once warm: ${result.gitlab_calls_warm})`)
  console.log(`  ratio                          ${result.ratio} (target <= ${result.target}) ${ratio <= 1.1 ? 'ok' : 'OVER TARGET'}`)
}
await close()
