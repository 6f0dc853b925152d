// Rails' router as the oracle of which GitLab controller action a path outside the API runs
// (rails-routes.rb, Debian's ruby-actionpack): GraphQL's routes and the model registry's web delete.

import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'

const SCRIPT = fileURLToPath(new URL('./rails-routes.rb', import.meta.url))

/** Null when Ruby loads ActionDispatch, else what is missing. */
export function railsUnavailable (): string | null {
  const probe = spawnSync('ruby', ['-e', 'require "action_dispatch"'], { encoding: 'utf8' })
  if (probe.error !== undefined) return `ruby is not installed (${probe.error.message}); install the Debian packages ruby and ruby-actionpack`
  if (probe.status !== 0) return `ruby cannot load ActionDispatch (${probe.stderr.trim().split('\n')[0] ?? ''}); install the Debian package ruby-actionpack`
  return null
}

/** The `controller#action` Rails runs for each [method, path] (the path as sent), or null for none. */
export function railsRoutes (requests: ReadonlyArray<readonly [string, string]>): Array<string | null> {
  const run = spawnSync('ruby', [SCRIPT], { input: JSON.stringify({ requests }), encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 })
  if (run.error !== undefined || run.status !== 0) throw new Error(`rails-routes.rb failed: ${run.error?.message ?? run.stderr}`)
  const answer = JSON.parse(run.stdout) as { routes: Array<string | null> }
  if (answer.routes.length !== requests.length) throw new Error('rails-routes.rb answered a different number of paths')
  return answer.routes
}
