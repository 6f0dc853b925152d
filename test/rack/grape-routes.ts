// Route matching against Grape itself (grape-routes.rb, Debian's ruby-grape). For generated API
// paths (the routing corpus: every route's forms with realistic and hostile values, and near
// misses; a third of them also with `.txt`, `.xml`, `.tgz` or `.gpg` appended), every catalog
// route of the path's method and first segment is declared alone in a Grape API set up as
// GitLab's (JSON and text content types: an optional `(.:format)` on every route; `[^/]+` on the
// parameters that may hold '.'; npm routes `format: false` with their package name requirement)
// and asked whether it matches. Grape serves a path with the first
// matching route in GitLab's mount order, so any route it matches may be the one GitLab runs:
// - the route the gate decides with (on the path canonicalized, as the gate reads it; Grape reads it
//   as sent) must ask at least what each of them asks (policies, package operation, public project
//   features, `job_token_scope: :project`, the same accessed project), or that route must hold a
//   literal of the gate's route in an integer id (GitLab answers 400 before its endpoint); a path
//   the gate has no route for reaches GitLab without a job token (README: "job tokens on routes
//   that take none");
// - a path Grape serves with a package write or delete is one the gate has a route for (the
//   users' package rules bind only what is routed);
// - where the gate matches a route Grape matches, the project it reads (`:id`) is the same (the
//   group or job on group and job routes; instance routes read no project from it).
// Other parameters can differ where GitLab's declarations (`format: false`, requirements) are not
// in the catalog; they are counted, not failed: the gate reads them for no decision but the
// project finders', whose npm and Maven parameters agree here.
// Used by grape-routes.slow.ts (the whole corpus, `npm run test:rack`); GRAPE_ROUTES_RUNS checks
// that many corpus paths instead.

import type { TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { loadCatalog } from '../../src/catalog/load.ts'
import { parsePattern } from '../../src/catalog/pattern.ts'
import type { CatalogRoute } from '../../src/catalog/types.ts'
import { canonicalize } from '../../src/routing/canonical.ts'
import { Router } from '../../src/routing/router.ts'
import { generateCorpus } from '../helpers/corpus.ts'
import { grapeUnavailable, startGrapeRoutesOracle, type GrapeRoute } from '../helpers/grape-oracle.ts'
import { requireTool } from '../helpers/require-tool.ts'
import { asksAtLeast, integerHoldingLiteral, paramsAlone } from '../helpers/route-safety.ts'

const routes = loadCatalog().routes
const router = Router.compile(routes)

/**
 * Declarations GitLab makes that the catalog cannot say (lib/api/ci/job_artifacts.rb): the ref
 * routes take `ref_name: /.+/`, so a ref's raw '/' stays in it (`jobs/artifacts/feature/x/download`),
 * and the two artifact file routes are `format: false`; the pipeline trigger's `ref: /.+/`
 * (lib/api/ci/triggers.rb).
 */
const GITLAB_DECLARATIONS: Readonly<Record<string, Pick<GrapeRoute, 'format' | 'requirements'>>> = {
  '/projects/:id/jobs/artifacts/:ref_name/download': { requirements: { ref_name: '.+' } },
  '/projects/:id/jobs/artifacts/:ref_name/raw/*artifact_path': { requirements: { ref_name: '.+' }, format: false },
  '/projects/:id/jobs/:job_id/artifacts/*artifact_path': { format: false },
  '/projects/:id/(ref/*ref/)trigger/pipeline': { requirements: { ref: '.+' } }
}

/** A route as GitLab declares it, as far as the catalog, lib/api/concerns/packages/npm_endpoints.rb and GITLAB_DECLARATIONS tell. */
function grapeRoute (route: CatalogRoute): GrapeRoute {
  const dots = new Set<string>()
  for (const variant of parsePattern(route.pattern)) for (const token of variant.tokens) if (token.kind === 'param' && token.dots) dots.add(token.name)
  const npm = route.packageFormat === 'npm'
  // NPM_ENDPOINT_REQUIREMENTS on every npm `*package_name` but the project tarball route's.
  if (npm && route.pattern.includes('*package_name') && !route.pattern.includes('*package_name/-/*file_name')) dots.add('package_name')
  return { id: route.id, pattern: route.pattern, dots: [...dots], ...(npm ? { format: false as const } : {}), ...GITLAB_DECLARATIONS[route.pattern] }
}

const firstSegment = (path: string): string => path.split('/')[1] ?? ''

const EXTRA_PATHS = [
  '/projects/42/jobs/artifacts/a/raw/b/download', '/projects/42/jobs/artifacts/a/raw/b/download.xml',
  '/projects/42/jobs/artifacts/a/raw/b/download%2Etxt', '/projects/42/jobs/artifacts/a/raw/b/download.%2E',
  '/projects/42/jobs/artifacts/a/raw/download.json', '/projects/42/jobs/artifacts/a/raw/b/download.',
  '/projects/42/jobs/artifacts/a/raw/b/app.js', '/projects/42/jobs/artifacts/main/download.gpg'
]

export const TITLE = 'whichever route Grape serves a path with, the gate decided with one that asks as much, of the same project'

/** Checks `runs` corpus paths (all of them when runs is null), spread over the whole corpus. */
export async function checkAgainstGrape (t: TestContext, defaultRuns: number | null): Promise<void> {
  if (!requireTool(t, grapeUnavailable())) return
  const oracle = startGrapeRoutesOracle()
  t.after(() => oracle.close())
  const corpus = generateCorpus(routes)
  const runs = Math.min(corpus.length, Number(process.env.GRAPE_ROUTES_RUNS ?? defaultRuns ?? corpus.length))
  // Every n-th entry, so that a short run still meets every route and every kind of entry.
  const step = corpus.length / runs
  const unsafe: string[] = []
  const otherProject: string[] = []
  const undecidedPackageChanges: string[] = []
  const otherParams = new Map<string, number>()
  let served = 0
  // Grape splits any extension off as the format where a route allows it, not only `.json`
  // (the corpus appends that one): every third path is also asked with another.
  const extensions = ['.txt', '.xml', '.tgz', '.gpg']
  // Shapes the corpus does not make: refs by the routes with `ref_name: /.+/`, whose archive route
  // takes any format before the file route does.
  const paths: Array<{ method: string, path: string }> = EXTRA_PATHS.map(path => ({ method: 'GET', path }))
  for (let i = 0; i < runs; i++) {
    const entry = corpus[Math.floor(i * step)]!
    paths.push(entry)
    if (i % 3 === 0) paths.push({ method: entry.method, path: entry.path + extensions[(i / 3) % extensions.length]! })
  }
  for (const { method, path } of paths) {
    const candidates = routes.filter(r => r.method === method && firstSegment(r.pattern) === firstSegment(path))
    const grape = await oracle.matches(method, path, candidates.map(grapeRoute))
    // The gate decides on the canonical path (an escaped '.' decoded); Grape reads it as sent.
    const canonical = canonicalize(method, '/api/v4' + path)
    if (canonical.kind !== 'api') continue
    const decided = router.match(method, canonical.apiPath)?.route ?? null
    for (const route of candidates) {
      const theirs = grape[route.id]
      if (theirs === undefined) continue
      served++
      // The users' package rules see only a request the gate has a route for.
      if (decided === null && route.packageOperation !== undefined) undecidedPackageChanges.push(`${method} ${path}: GitLab may serve ${route.id}, the gate has no route`)
      if (decided !== null && decided !== route && !asksAtLeast(decided, route) && integerHoldingLiteral(route, decided, theirs) === null) {
        unsafe.push(`${method} ${path}: the gate decides with ${decided.id} (${decided.policies.join(', ') || 'no policies'}), GitLab may serve ${route.id} (${route.policies.join(', ') || 'no policies'})`)
      }
      const ours = paramsAlone(route, canonical.apiPath)
      if (ours === null) continue
      // `:id` names the accessed project (or group, or job); on instance routes it names none.
      if (route.accessedProject !== 'instance' && ours.id !== theirs.id) otherProject.push(`${method} ${path} as ${route.pattern}: gate ${String(ours.id)}, Grape ${String(theirs.id)}`)
      for (const name of new Set([...Object.keys(ours), ...Object.keys(theirs)])) {
        if (name !== 'id' && (ours[name] ?? '') !== (theirs[name] ?? '')) otherParams.set(route.id, (otherParams.get(route.id) ?? 0) + 1)
      }
    }
  }
  assert.ok(served >= runs / 2, `only ${served} routes Grape serves in ${paths.length} paths`)
  t.diagnostic(`${served} routes Grape serves in ${paths.length} paths; parameters other than :id read otherwise (format: false and requirements not in the catalog): ${[...otherParams].map(([id, n]) => `${id} ${n}`).join(', ') || 'none'}`)
  assert.deepEqual(unsafe.slice(0, 20), [], `${unsafe.length} paths`)
  assert.deepEqual(otherProject.slice(0, 20), [], `${otherProject.length} paths`)
  assert.deepEqual(undecidedPackageChanges.slice(0, 20), [], `${undecidedPackageChanges.length} paths`)
}
