// `npm run demo`: the gate on loopback in front of a small fake GitLab, with the memory store
// seeded with example allowlists, and curl commands that show what it does. Nothing outside
// this machine is involved.

import { pino } from 'pino'
import { loadCatalog } from '../src/catalog/load.ts'
import { loadConfig } from '../src/config.ts'
import { createMemoryStore } from '../src/grants/memory-store.ts'
import { createInstanceSettings, validateProjectGrants } from '../src/grants/model.ts'
import { createJobResolver } from '../src/identity/resolver.ts'
import { createPolicyIndex } from '../src/catalog/policy-index.ts'
import { createGate, type Gate } from '../src/gate/server.ts'
import { groupChain, startFakeGitlab, type FakeGitlab } from '../test/helpers/fake-gitlab.ts'

export const DEMO_TOKENS = {
  /** A running job of acme/platform/app (project 100). */
  app: 'glcbt-64_demo_app_job_token_0001',
  /** A running job of other/tools (project 300). */
  tools: 'glcbt-64_demo_tools_job_token_01'
}

export interface Demo {
  readonly gate: Gate
  readonly gitlab: FakeGitlab
  readonly url: string
  readonly commands: ReadonlyArray<{ readonly title: string, readonly expect: number, readonly curl: string }>
  close (): Promise<void>
}

export async function startDemo (options: { listen?: string, quiet?: boolean } = {}): Promise<Demo> {
  const gitlab = await startFakeGitlab({
    jobs: {
      [DEMO_TOKENS.app]: { id: 1, status: 'running', projectId: 100, userId: 7 },
      [DEMO_TOKENS.tools]: { id: 3, status: 'running', projectId: 300, userId: 8 }
    },
    groups: [...groupChain([10, 'acme'], [11, 'platform']), { id: 20, fullPath: 'other', parentId: null }],
    projects: [
      { id: 100, pathWithNamespace: 'acme/platform/app', namespace: { id: 11, kind: 'group', fullPath: 'acme/platform', parentId: 10 } },
      // The allowlisted project is GitLab's too: a full path in a URL is resolved by asking GitLab.
      { id: 200, pathWithNamespace: 'acme/lib', namespace: { id: 10, kind: 'group', fullPath: 'acme', parentId: null } },
      { id: 300, pathWithNamespace: 'other/tools', namespace: { id: 20, kind: 'group', fullPath: 'other', parentId: null } }
    ],
    // Everything the gate forwards: a small JSON answer naming what GitLab would have served.
    fallback: (req, res) => {
      req.resume()
      req.on('end', () => {
        const body = JSON.stringify({ served_by: 'fake GitLab behind the gate', method: req.method, path: req.url })
        res.writeHead(200, { 'content-type': 'application/json' })
        res.end(body + '\n')
      })
    }
  })
  const config = loadConfig({
    GATE_UPSTREAM_URL: gitlab.url,
    GATE_LISTEN: options.listen ?? '127.0.0.1:8181',
    GATE_HEALTH_LISTEN: '127.0.0.1:0',
    GATE_SERVICE_TOKEN: gitlab.serviceToken
  })
  const store = await createMemoryStore()
  const settings = createInstanceSettings()
  const policies = createPolicyIndex(loadCatalog().policies)
  const createdAt = new Date().toISOString()
  // acme/lib (200) lets acme/platform/app read its packages, nothing more.
  await store.put(validateProjectGrants({
    projectId: 200,
    projectPath: 'acme/lib',
    inboundEnabled: true,
    entries: [{ targetType: 'project', targetId: 100, targetPath: 'acme/platform/app', defaultPermissions: false, jobTokenPolicies: ['read_packages'], addedBy: null, createdAt }]
  }, { settings, policies }))
  const logger = pino({ name: 'job-token-gate', level: options.quiet === true ? 'silent' : 'info' })
  const gate = createGate(config, { store, resolver: createJobResolver({ upstream: gitlab.url, serviceToken: gitlab.serviceToken }), logger })
  try {
    await gate.listen()
  } catch (err) {
    await gate.close(0)
    await gitlab.close()
    // The usual port is taken: any free one will do for a demo.
    if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE' && options.listen !== '127.0.0.1:0') return await startDemo({ ...options, listen: '127.0.0.1:0' })
    throw err
  }
  const { port } = gate.address()
  const url = `http://127.0.0.1:${port}`
  const curl = (token: string, method: string, path: string): string =>
    `curl -i${method === 'GET' ? '' : ` -X ${method}`} -H 'JOB-TOKEN: ${token}' ${url}${path}`
  const commands = [
    { title: 'allowed: acme/lib lets acme/platform/app read its packages (read_packages)', expect: 200, curl: curl(DEMO_TOKENS.app, 'GET', '/api/v4/projects/200/packages') },
    { title: 'denied: publishing needs admin_packages, which the allowlist entry does not grant', expect: 403, curl: curl(DEMO_TOKENS.app, 'PUT', '/api/v4/projects/200/packages/npm/@acme%2fcli') },
    { title: 'allowed: a job may always use its own project (self access)', expect: 200, curl: curl(DEMO_TOKENS.app, 'POST', '/api/v4/projects/100/deployments') },
    { title: 'denied: other/tools is not on acme/lib\'s allowlist', expect: 403, curl: curl(DEMO_TOKENS.tools, 'GET', '/api/v4/projects/200/packages') }
  ]
  return {
    gate,
    gitlab,
    url,
    commands,
    async close () {
      await gate.close(0)
      await gitlab.close()
    }
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const demo = await startDemo({ listen: process.env.GATE_LISTEN ?? '127.0.0.1:8181', quiet: true })
  const lines = [
    '',
    `job-token-gate demo: the gate listens on ${demo.url}, in front of a fake GitLab at ${demo.gitlab.url}.`,
    'The memory store holds one allowlist: project acme/lib (#200) lets acme/platform/app (#100) read packages.',
    'Paste these into another terminal:',
    ''
  ]
  for (const c of demo.commands) lines.push(`# ${c.title} -> ${c.expect}`, c.curl, '')
  lines.push('Ask the gate how it reads any request:', "  node --import tsx src/cli/main.ts explain PUT '/api/v4/projects/200/packages/npm/@acme%2fcli'", '', 'Ctrl-C stops the demo.', '')
  process.stdout.write(lines.join('\n'))
  const stop = (): void => { void demo.close().then(() => process.exit(0)) }
  process.on('SIGINT', stop)
  process.on('SIGTERM', stop)
}
