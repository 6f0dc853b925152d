// The body of a request to /api/graphql is read twice before GitLab gets it: by the handler,
// whole up to 1 MiB (or its first MiB, the rest streamed through a guard), and again by the
// identity stage, which reads what the handler hands on. What GitLab receives must be the bytes
// the gate decided on, whatever the chunks the client sent them in, however slowly, and on
// either side of the limit: generated bodies (JSON, forms with and without a Content-Type,
// uploads) of a fine-grained token, a legacy token or none, each sent whole and again cut at
// generated places (around the limit too, with pauses), framed by Content-Length or chunked.
// Both sends must get the same answer, a forwarded body must be the one sent byte for byte, and
// a document the token may not run must never be forwarded.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { request } from 'node:http'
import fc from 'fast-check'
import { MAX_ADMIN_BODY_BYTES } from '../../src/admin/handler.ts'
import { startGraphqlGate, type FakeToken } from '../helpers/graphql-gate.ts'
import { propertyRun } from '../helpers/property-run.ts'

const TOKENS: Record<string, FakeToken> = {
  'glpat-lib-reader': { userId: 7, scopes: [{ access: 'selected_memberships', permissions: ['read_project'], project_id: 200 }] },
  'glpat-legacy': { userId: 8 }
}
const OWN = '{ project(fullPath: "acme/lib") { id } }'
const OTHER = '{ project(fullPath: "other/tools") { id } }'
const LIMIT = MAX_ADMIN_BODY_BYTES
const BOUNDARY = 'gateBoundary'

type Kind = 'json' | 'form' | 'untyped' | 'multipart'

/** A body of `kind` running `doc`, padded to about `size` bytes where GitLab reads nothing of it. */
function bodyOf (kind: Kind, doc: string, size: number): { type: string | null, bytes: Buffer } {
  const pad = (used: number): string => 'x'.repeat(Math.max(0, size - used))
  switch (kind) {
    case 'json': {
      const head = JSON.stringify({ query: doc, variables: { pad: '' } })
      return { type: 'application/json', bytes: Buffer.from(head.replace('"pad":""', `"pad":"${pad(head.length)}"`)) }
    }
    case 'form':
    case 'untyped': {
      const head = `query=${encodeURIComponent(doc)}&pad=`
      return { type: kind === 'form' ? 'application/x-www-form-urlencoded' : null, bytes: Buffer.from(head + pad(head.length)) }
    }
    case 'multipart': {
      const part = (headers: string, value: string): string => `--${BOUNDARY}\r\n${headers}\r\n\r\n${value}\r\n`
      const head = part('Content-Disposition: form-data; name="operations"', JSON.stringify({ query: doc, variables: { file: null } })) +
        part('Content-Disposition: form-data; name="map"', '{"0":["variables.file"]}')
      const fileHead = 'Content-Disposition: form-data; name="0"; filename="a.bin"\r\nContent-Type: application/octet-stream'
      const tail = `--${BOUNDARY}--\r\n`
      const used = head.length + fileHead.length + tail.length + BOUNDARY.length + 8
      return { type: `multipart/form-data; boundary=${BOUNDARY}`, bytes: Buffer.from(head + part(fileHead, pad(used)) + tail) }
    }
  }
}

interface Sent { readonly status: number, readonly code: string | null }

/** POSTs `bytes` in `pieces` (offsets), pausing after the pieces `slow` marks; the answer's status and code. */
function post (url: string, headers: Record<string, string>, bytes: Buffer, cuts: readonly number[], slow: readonly boolean[]): Promise<Sent> {
  const target = new URL(url + '/api/graphql')
  return new Promise((resolve, reject) => {
    const req = request({ host: target.hostname, port: target.port, method: 'POST', path: target.pathname, headers }, res => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => {
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { code?: string, errors?: Array<{ extensions?: { code?: string } }> }
        resolve({ status: res.statusCode ?? 0, code: body.code ?? body.errors?.[0]?.extensions?.code ?? null })
      })
      res.on('error', reject)
    })
    // The gate may answer before the last piece and close: its answer is kept.
    req.on('error', (err: NodeJS.ErrnoException) => { if (err.code !== 'ECONNRESET' && err.code !== 'EPIPE') reject(err) })
    void (async () => {
      let at = 0
      for (const [i, cut] of [...cuts, bytes.length].entries()) {
        if (req.destroyed) return
        if (cut > at) req.write(bytes.subarray(at, cut))
        at = Math.max(at, cut)
        if (slow[i] === true) await new Promise(resolve => setTimeout(resolve, 5))
      }
      req.end()
    })()
  })
}

const sha = (bytes: Buffer): string => createHash('sha256').update(bytes).digest('hex')

test('what GitLab receives at /api/graphql is the body decided, whatever its chunks, pace and size', async (t) => {
  const g = await startGraphqlGate(t, { tokens: TOKENS })
  const { seed, numRuns } = propertyRun(t, 'GRAPHQL_BODY_BYTES', 40)
  const sizes = [200, 70_000, LIMIT - 64, LIMIT, LIMIT + 1, LIMIT + 40_000]
  await fc.assert(fc.asyncProperty(
    fc.constantFrom<Kind>('json', 'form', 'untyped', 'multipart'),
    fc.constantFrom(...sizes),
    fc.constantFrom('glpat-lib-reader', 'glpat-legacy', null),
    fc.boolean(),
    fc.boolean(),
    // Cut places: anywhere, and a few bytes either side of the limit and of the body's end.
    fc.array(fc.oneof(fc.double({ min: 0, max: 1, noNaN: true }), fc.constantFrom(-1, -2, -3), fc.integer({ min: -4, max: 4 }).map(d => ({ d }))), { maxLength: 10 }),
    fc.array(fc.boolean(), { maxLength: 11 }),
    async (kind, size, token, own, chunked, places, slow) => {
      const { type, bytes } = bodyOf(kind, own ? OWN : OTHER, size)
      const cuts = places.map(p => typeof p === 'number'
        ? p < 0 ? bytes.length + p : Math.floor(p * bytes.length)
        : LIMIT + p.d).filter(c => c > 0 && c < bytes.length).sort((a, b) => a - b)
      const headers: Record<string, string> = {
        ...(type === null ? {} : { 'content-type': type }),
        ...(token === null ? {} : { 'private-token': token }),
        ...(chunked ? { 'transfer-encoding': 'chunked' } : { 'content-length': String(bytes.length) })
      }
      const answers: Sent[] = []
      for (const [pieces, pauses] of [[[], []], [cuts, slow]] as const) {
        const before = g.upstream.length
        answers.push(await post(g.url, headers, bytes, pieces, pauses))
        const forwarded = g.upstream.slice(before)
        assert.ok(forwarded.length <= 1)
        const sent = `${kind} ${bytes.length} bytes, ${token ?? 'no token'}, ${own ? 'own' : 'other'} project, cut at ${JSON.stringify(pieces)}`
        if (forwarded.length === 1) {
          assert.equal(forwarded[0]!.bytes, bytes.length, sent)
          assert.equal(forwarded[0]!.sha256, sha(bytes), sent)
          assert.equal(answers.at(-1)!.status, 200, sent)
          // A document the fine-grained token may not run is never forwarded.
          assert.ok(!(token === 'glpat-lib-reader' && !own), sent)
        } else {
          assert.notEqual(answers.at(-1)!.code, null, `${sent}: neither forwarded nor refused`)
        }
      }
      assert.deepEqual(answers[1], answers[0], `${kind} ${bytes.length} bytes: the same answer whole and in pieces`)
      // What the fine-grained token may run is forwarded, in a body the gate decides: any upload,
      // JSON up to the limit, a form up to GATE_MAX_INSPECTED_BODY_BYTES (64 KiB; the identity
      // stage refuses a larger one, BODY_TOO_LARGE_TO_INSPECT).
      if (token === 'glpat-lib-reader' && own && (kind === 'multipart' || (kind === 'json' && bytes.length <= LIMIT) || size === 200)) assert.equal(answers[0]!.code, null)
    }
  ), { seed, numRuns })
})
