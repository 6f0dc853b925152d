// GitLab Runner's own job routes (lib/api/ci/runner.rb): the runner reports a job's state, appends
// its log and uploads its artifacts with that job's token (JOB-TOKEN header, or `token` in the
// query or body). GitLab checks the token against job `:id` itself (authenticate_job!: the job
// the token belongs to must be `:id`, and still running on a runner); the job token allowlist
// and its policies do not apply, and nothing of another project is reached. These are not in the
// catalog (which lists the routes under the allowlist), but a job token there is GitLab's to
// check: stripped or refused as on other routes, every job behind the gate would fail to report
// its result. The `:id` is written as Grape reads an Integer parameter without a format; a path
// with a format suffix is not one of these (the token is then stripped, as on other routes).

const JOB = /^\/jobs\/[^/.]+$/
const JOB_TRACE = /^\/jobs\/[^/.]+\/trace$/
const JOB_ARTIFACTS = /^\/jobs\/[^/.]+\/artifacts(?:\/authorize)?$/

/**
 * Whether (method, API path) is one of the runner's job routes, as GitLab routes it: `method` is
 * the routed method (after a POST's method override). PUT `/jobs/:id` (update the job), PATCH
 * `/jobs/:id/trace` (append to its log), POST `/jobs/:id/artifacts/authorize` and POST
 * `/jobs/:id/artifacts` (upload its artifacts).
 */
export function isRunnerJobRoute (method: string, apiPath: string): boolean {
  switch (method) {
    case 'PUT': return JOB.test(apiPath)
    case 'PATCH': return JOB_TRACE.test(apiPath)
    case 'POST': return JOB_ARTIFACTS.test(apiPath)
    default: return false
  }
}

/**
 * The runner routes a request's method cannot be moved off: Rack::MethodOverride changes only a
 * POST's method, so a PUT or PATCH is routed as sent and can be passed on before its credentials
 * and body are read (a job GitLab has cancelled must hear GitLab's own 403 and Job-Status header,
 * not the gate's answer to a token it can no longer resolve).
 */
export function isFixedRunnerJobRoute (method: string, apiPath: string): boolean {
  return method !== 'POST' && isRunnerJobRoute(method, apiPath)
}
