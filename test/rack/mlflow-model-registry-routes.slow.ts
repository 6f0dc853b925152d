// Which MLflow requests are model registry writes and deletes (src/routing/package-fallback.ts),
// against Grape itself: each write route of GitLab's MLflow API (lib/api/ml/mlflow/
// registered_models.rb, model_versions.rb, mounted under `projects/:id/ml/mlflow/api/2.0/mlflow/`)
// declared alone, and paths spelt every way a client may (a format suffix, a trailing or doubled
// slash, escaped letters, the project by id or path). Wherever Grape runs the route, the gate must
// read the canonical path as that write (or delete) of that project; and a read sent as POST
// (`get-latest-versions`) is no write.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { canonicalize } from '../../src/routing/canonical.ts'
import { uncataloguedPackageWrite } from '../../src/routing/package-fallback.ts'
import { grapeUnavailable, startGrapeRoutesOracle } from '../helpers/grape-oracle.ts'
import { requireTool } from '../helpers/require-tool.ts'

const PREFIX = 'ml/mlflow/api/2.0/mlflow'
const ROUTES = [
  { method: 'POST', path: 'registered-models/create', operation: 'write' },
  { method: 'PATCH', path: 'registered-models/update', operation: 'write' },
  { method: 'DELETE', path: 'registered-models/delete', operation: 'delete' },
  { method: 'POST', path: 'model-versions/create', operation: 'write' },
  { method: 'PATCH', path: 'model-versions/update', operation: 'write' },
  { method: 'POST', path: 'registered-models/get-latest-versions', operation: null }
] as const

const IDS = ['200', 'acme%2Flib', 'acme%2flib', 'acme%2Fsub.group%2Flib']

/** Spellings of `<prefix>/<path>` a client may send. */
function spellings (path: string): string[] {
  const full = `${PREFIX}/${path}`
  return [
    full,
    `${full}.json`,
    `${full}/`,
    full.replace('/mlflow/registered', '/mlflow//registered').replace('/mlflow/model', '/mlflow//model'),
    full.replace('2.0', '2%2E0'),
    full.replace('-', '%2D'),
    full.replace('-', '%2d'),
    full.replace(/\/([a-z])/g, (_, c: string) => `/%${c.charCodeAt(0).toString(16)}`),
    full.replace('ml/mlflow', 'ml%2Fmlflow'),
    full.replace(/\/(create|update|delete|get-latest-versions)$/, '%2F$1')
  ]
}

test('every spelling Grape runs as an MLflow model registry write is that write of that project to the gate', async (t) => {
  if (!requireTool(t, grapeUnavailable())) return
  const oracle = startGrapeRoutesOracle()
  t.after(async () => { await oracle.close() })
  let matched = 0
  for (const route of ROUTES) {
    const grapeRoute = { id: route.path, pattern: `/projects/:id/${PREFIX}/${route.path}`, dots: ['id'] }
    for (const id of IDS) {
      for (const spelling of spellings(route.path)) {
        const apiPath = `/projects/${id}/${spelling}`
        const grape = (await oracle.matches(route.method, apiPath, [grapeRoute]))[route.path]
        const canonical = canonicalize(route.method, `/api/v4${apiPath}`)
        const gate = canonical.kind === 'api' ? uncataloguedPackageWrite(canonical.method, canonical.apiPath) : null
        if (grape === undefined) continue
        matched++
        const what = `${route.method} ${apiPath}`
        if (route.operation === null) {
          assert.equal(gate, null, `${what}: a read`)
          continue
        }
        assert.ok(gate !== null, `${what}: Grape runs ${route.path}, the gate reads no model registry ${route.operation}`)
        assert.equal(gate.route.packageFormat, 'ml_model', what)
        assert.equal(gate.route.packageOperation, route.operation, what)
        assert.equal(gate.params.id, grape.id, `${what}: the project`)
      }
    }
  }
  // The plain spellings at least: the oracle answered.
  assert.ok(matched >= ROUTES.length * IDS.length, `Grape matched ${matched} paths`)
})
