// Where two catalog routes match one path, the gate decides with the route its precedence picks
// (static before parameter before glob), while Grape takes the first route, in the order GitLab
// mounts its API classes, whose expression matches: the two can pick differently. That is safe
// only where the route the gate picked asks at least what the other asks, or where GitLab cannot
// serve the other route for such a path: the other route holds one of the gate's route's literal
// segments (`npm`, `generic`, `package_files`...) in a parameter GitLab declares an integer
// (`:package_id`), so Grape answers 400 there before its endpoint runs. This test holds every
// overlapping pair of the catalog to one of the two, so a new route cannot open a way round a
// policy through precedence.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { loadCatalog } from '../../src/catalog/load.ts'
import { findOverlaps } from '../../src/routing/lint.ts'
import { Router } from '../../src/routing/router.ts'
import { asksAtLeast, integerHoldingLiteral, paramsAlone } from '../helpers/route-safety.ts'

const routes = loadCatalog().routes
const router = Router.compile(routes)

test('every overlap of routes either picks the route that asks more, or one GitLab cannot serve for such a path', () => {
  const overlaps = findOverlaps(routes, router)
  assert.ok(overlaps.length > 50, `the catalog has its overlaps (${overlaps.length})`)
  const unsafe: string[] = []
  const saved: string[] = []
  for (const { a, b, example, winner } of overlaps) {
    for (const [picked, other] of [[a, b], [b, a]] as const) {
      if (winner !== picked && winner !== null) continue
      // A third route that beats both: each of the two is checked against it.
      const chosen = winner ?? picked
      if (chosen === other || asksAtLeast(chosen, other)) continue
      const params = paramsAlone(other, example)
      assert.ok(params !== null, `${other.id} matches ${example}`)
      const integer = integerHoldingLiteral(other, chosen, params)
      if (integer !== null) {
        saved.push(`${chosen.id} over ${other.id} (:${integer})`)
        continue
      }
      unsafe.push(`${example}: the gate decides with ${chosen.id} (${chosen.policies.join(', ') || 'no policies'}), GitLab could serve ${other.id} (${other.policies.join(', ') || 'no policies'})`)
    }
  }
  assert.deepEqual(unsafe, [])
  // The pairs that need the second reason today: a package format's route over `:package_id`, and
  // the file by ref (public project features) over a job's file (none) by `:job_id`.
  assert.deepEqual(saved.sort(), [
    'delete_projects_id_packages_nuget_package_name_package_version over delete_projects_id_packages_package_id_package_files_package_file_id (:package_id)',
    'get_projects_id_jobs_artifacts_ref_name_raw_artifact_path over get_projects_id_jobs_job_id_artifacts_artifact_path (:job_id)',
    'get_projects_id_packages_ml_models_model_version_id_files_path_file_name over get_projects_id_packages_package_id_package_files_package_file_id_download (:package_id)',
    'get_projects_id_packages_npm_package_name over get_projects_id_packages_package_id_pipelines (:package_id)',
    'get_projects_id_packages_rpm_package_file_id_file_name over get_projects_id_packages_package_id_package_files_package_file_id_download (:package_id)',
    'get_projects_id_packages_rubygems_file_name over get_projects_id_packages_package_id_package_files (:package_id)',
    'get_projects_id_packages_rubygems_file_name over get_projects_id_packages_package_id_pipelines (:package_id)'
  ])
})
