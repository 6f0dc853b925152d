// Test harness: a node:http server on port 0 that runs real requests through canonicalize → route
// → identity stage and answers what the stage decided, and a raw HTTP client for requests no
// well-behaved client sends (repeated headers, `JOB_TOKEN`).

import { createHash } from 'node:crypto'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { loadCatalog } from '../../src/catalog/load.ts'
import { canonicalize } from '../../src/routing/canonical.ts'
import { Router } from '../../src/routing/router.ts'
import { createIdentityStage, type IdentityStageOptions } from '../../src/identity/stage.ts'
import { IdentityError, type JobIdentity, type JobResolver } from '../../src/identity/types.ts'

let router: Router | undefined
export function catalogRouter (): Router {
  router ??= Router.compile(loadCatalog().routes)
  return router
}

/** What the harness answers for a request the stage let through. */
export interface StageReport {
  readonly kind: 'none' | 'job'
  readonly route: string | null
  readonly token?: string
  readonly source?: string
  readonly basicAuth?: boolean
  readonly identity?: JobIdentity
  readonly bodyKind: 'stream' | 'buffered'
  readonly bodySha256: string
  readonly bodyLength: number
  /** The code a guarded body stream failed with, if it did. */
  readonly bodyError?: string
}

export interface StageServer {
  readonly port: number
  close (): Promise<void>
}

export async function startStageServer (options: IdentityStageOptions): Promise<StageServer> {
  const stage = createIdentityStage(options)
  const routes = catalogRouter()
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const canonical = canonicalize(req.method ?? 'GET', req.url ?? '/')
    if (canonical.kind === 'rejected') { res.writeHead(400).end(canonical.code); return }
    const match = canonical.kind === 'api' ? routes.match(canonical.method, canonical.apiPath) : null
    const outcome = await stage.run({ canonical, route: match?.route ?? null, headers: req.headers, rawHeaders: req.rawHeaders, body: req })
    if (outcome.kind === 'deny') {
      res.writeHead(outcome.answer.status, { ...outcome.answer.headers, connection: 'close' })
      res.end(JSON.stringify(outcome.answer.body))
      return
    }
    let bytes: Buffer
    let bodyError: string | undefined
    if (outcome.body.kind === 'buffered') {
      bytes = outcome.body.bytes
    } else {
      const chunks: Buffer[] = []
      try {
        for await (const chunk of outcome.body.stream) chunks.push(chunk as Buffer)
      } catch (err) {
        bodyError = err instanceof IdentityError ? err.code : String(err)
      }
      bytes = Buffer.concat(chunks)
    }
    const report: StageReport = {
      kind: outcome.kind,
      route: match?.route.id ?? null,
      ...(outcome.kind === 'job' ? { token: outcome.token, source: outcome.source, basicAuth: outcome.basicAuth, identity: outcome.identity } : {}),
      bodyKind: outcome.body.kind,
      bodySha256: createHash('sha256').update(bytes).digest('hex'),
      bodyLength: bytes.length,
      ...(bodyError === undefined ? {} : { bodyError })
    }
    res.writeHead(200, { 'content-type': 'application/json', connection: 'close' })
    res.end(JSON.stringify(report))
  }
  const server = createServer((req, res) => {
    handle(req, res).catch(err => { res.writeHead(500).end(String(err)) })
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  return {
    port: (server.address() as AddressInfo).port,
    close: async () => {
      server.closeAllConnections()
      await new Promise<void>(resolve => server.close(() => { resolve() }))
    }
  }
}

/** A resolver that knows a fixed set of tokens and records what it was asked. */
export function stubResolver (known: Record<string, JobIdentity>): JobResolver & { asked: string[] } {
  const asked: string[] = []
  return {
    asked,
    async resolve (token) {
      asked.push(token)
      const identity = known[token]
      if (identity === undefined) throw new IdentityError('TOKEN_UNKNOWN')
      return identity
    }
  }
}

// The raw HTTP client lives with the other request helpers.
export { rawRequest, type RawAnswer as RawResponse } from '../helpers/http.ts'

export function basic (user: string, password: string): string {
  return 'Basic ' + Buffer.from(`${user}:${password}`).toString('base64')
}

export function identityFor (jobId: number): JobIdentity {
  return { jobId, jobProjectId: 100 + jobId, jobProjectPath: `acme/project-${jobId}`, ancestorGroupIds: [7, 1], userId: 500 + jobId }
}
