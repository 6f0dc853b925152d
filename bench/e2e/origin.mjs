// The benchmark's origin: a small GitLab stand-in on loopback. Every API path answers a small
// JSON body; `GET /api/v4/job` answers the job of a benchmark job token and `GET
// /api/v4/projects/:id` (service token) a project in group 500 or 600, as GitLab shapes them.
// Calls the gate makes itself are counted (GET /__counts) so the harness can check that a cold
// cache costs one round trip per token and per project.
import { createServer } from 'node:http'

const BODY = Buffer.from(JSON.stringify({ id: 42, name: 'bench', description: 'a small JSON answer', created_at: '2026-01-01T00:00:00Z' }))
const HEADERS = { 'content-type': 'application/json', 'content-length': String(BODY.length) }
const counts = { job: 0, forwardedJob: 0, project: 0, group: 0, other: 0 }

// glcbt-64_b<index, 19 chars>: allowed tokens, job project 1000000 + index % 100 in group 500.
// glcbt-64_d<index>: denied tokens, job project 2000000 in group 600 (on no allowlist).
function jobOf (token) {
  const m = typeof token === 'string' ? /^glcbt-64_([bd])0*(\d+)$/.exec(token) : null
  if (m === null) return null
  const i = Number(m[2])
  return { id: 100000 + i, projectId: m[1] === 'b' ? 1000000 + (i % 100) : 2000000 }
}

function json (res, status, doc) {
  const body = JSON.stringify(doc)
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) })
  res.end(body)
}

const server = createServer((req, res) => {
  const url = req.url ?? '/'
  if (url === '/api/v4/job') {
    // A job's own GET /job, forwarded, carries the benchmark's User-Agent; the gate's call does not.
    if (!String(req.headers['user-agent']).endsWith('(bench)')) counts.job++
    else counts.forwardedJob++
    const job = jobOf(req.headers['job-token'])
    if (job === null) return json(res, 401, { message: '401 Unauthorized' })
    return json(res, 200, { id: job.id, status: 'running', name: 'build', stage: 'test', pipeline: { id: job.id + 1, project_id: job.projectId, status: 'running' }, user: { id: 7, username: 'bench' } })
  }
  // A project by id or full path (the job's project, the facts of a denied request's project).
  const project = /^\/api\/v4\/projects\/([^/?]+)(?:\?.*)?$/.exec(url)
  if (project !== null && req.headers['private-token'] !== undefined) {
    counts.project++
    const key = decodeURIComponent(project[1])
    const id = /^\d+$/.test(key) ? Number(key) : Number(/(\d+)$/.exec(key)?.[1] ?? 0)
    const group = id >= 2000000 ? 600 : 500
    return json(res, 200, { id, path: `p${id}`, path_with_namespace: `g${group}/p${id}`, visibility: 'private', namespace: { id: group, kind: 'group', full_path: `g${group}`, parent_id: null } })
  }
  if (url === '/__counts') return json(res, 200, counts)
  if (/^\/api\/v4\/groups\/\d+/.test(url)) {
    counts.group++
    return json(res, 200, { id: 1, parent_id: null })
  }
  // Everything else: drain the body, answer the small JSON.
  req.resume()
  res.writeHead(200, HEADERS)
  res.end(BODY)
})
server.keepAliveTimeout = 60_000
server.listen(0, '127.0.0.1', () => process.send({ port: server.address().port }))
