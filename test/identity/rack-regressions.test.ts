// Every disagreement with Rack the differential test (test/rack/) found, and the cases review
// added around them, as named regressions: a request, what Rack reads from it (checked against
// Rack itself where Ruby is installed), and what the gate does. The gate must find the job token
// Rack reads, or refuse the request; and decide on the method Rack routes, or refuse.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startRackOracle } from '../helpers/rack-oracle.ts'
import { requireRack } from '../rack/rack-available.ts'
import { gateUnderTest, jobTokensRackReads, oracleRequest, routedAs, JOB_A, LEGACY, PAT, type GenRequest } from '../rack/differential.ts'

const b = 'XyZ'
const MULTIPART = ['Content-Type', `multipart/form-data; boundary=${b}`] as const
const FORM = ['Content-Type', 'application/x-www-form-urlencoded'] as const
/** POST here is no catalog route; DELETE is (admin_deployments). */
const DEPLOYMENT = '/api/v4/projects/42/deployments/7'

function request (r: Partial<Omit<GenRequest, 'body'>> & { body?: Buffer | string }): GenRequest {
  const body = r.body === undefined ? Buffer.alloc(0) : Buffer.isBuffer(r.body) ? r.body : Buffer.from(r.body, 'latin1')
  return { method: 'POST', path: DEPLOYMENT, query: '', headers: [], framing: 'length', small: false, chunk: 7, ...r, body }
}

interface Regression {
  readonly name: string
  /** Where it was found: the differential run (seed and lane) or review. */
  readonly found: string
  readonly request: GenRequest
  /** What Rack reads: the job token (if any) and the method Rails routes. */
  readonly rack: { readonly token?: string, readonly method: string }
  /** What the gate does: pass with this job token (or none) on this method, or refuse with this code. */
  readonly gate: { readonly token: string | null, readonly method: string } | { readonly refused: string }
}

const regressions: Regression[] = [
  // Headers
  {
    name: 'Basic credentials split over two Authorization lines (Puma joins them with ", ", decode64 reads through it)',
    found: 'differential, first runs',
    request: request({ headers: [['Authorization', 'Basic Z2l0bGFi'], ['Authorization', Buffer.from(`-ci-token:${JOB_A}`).toString('base64')]] }),
    rack: { token: JOB_A, method: 'POST' },
    gate: { refused: 'CREDENTIAL_AMBIGUOUS' }
  },
  // JSON
  {
    name: 'a JSON credential inside an object or array is read as its leaves',
    found: 'differential, first runs',
    request: request({ headers: [['Content-Type', 'application/json']], body: `{ "bearer_token": {"a": "${JOB_A}"} }` }),
    rack: { token: JOB_A, method: 'POST' },
    gate: { token: JOB_A, method: 'POST' }
  },
  // Multipart framing
  {
    name: 'a leading closing delimiter opens a part (Rack 2 reads on)',
    found: 'differential, first runs',
    request: request({ headers: [MULTIPART], body: `--${b}--\r\nContent-Disposition: form-data; name="job_token"\r\n\r\n${JOB_A}\r\n--${b}--\r\n` }),
    rack: { token: JOB_A, method: 'POST' },
    gate: { token: JOB_A, method: 'POST' }
  },
  {
    name: 'a header block with LF-only lines runs on across the next delimiter (Rack looks for CRLF CRLF)',
    found: 'differential, against the scanner before Rack\'s readings',
    request: request({ method: 'GET', headers: [MULTIPART], body: `--${b}\r\nContent-ID: job_token\n\nDELETE\r\n--${b}--\r\n\r\n${LEGACY}\r\n--${b}--\r\n` }),
    rack: { token: LEGACY, method: 'GET' },
    gate: { refused: 'CREDENTIAL_AMBIGUOUS' }
  },
  {
    name: 'a delimiter inside a preamble line is none to Rack 2, which takes the next delimiter line',
    found: 'differential, RACK_SEED=500 RACK_RUNS=100000 (lane RACK_SEED=500 RACK_RUNS=25000 RACK_LANES=1)',
    request: request({ headers: [MULTIPART], body: `junk--${b}\r\n\r\nDELETE\r\n--${b}\r\n\r\nContent-ID: job_token\r\n\r\n${JOB_A}\r\n--${b}--\r\n` }),
    rack: { token: JOB_A, method: 'POST' },
    gate: { token: JOB_A, method: 'POST' }
  },
  {
    name: 'an empty header block: Rack reads the lines after it as the header',
    found: 'review',
    request: request({ headers: [MULTIPART], body: `--${b}\r\n\r\nContent-ID: job_token\r\n\r\n${LEGACY}\r\n--${b}--\r\n` }),
    rack: { token: LEGACY, method: 'POST' },
    gate: { token: LEGACY, method: 'POST' }
  },
  // Multipart names
  {
    name: 'Content-ID names a part without a name',
    found: 'differential, against the scanner before Rack\'s readings',
    request: request({ headers: [MULTIPART], body: `--${b}\r\nContent-ID: job_token\r\n\r\n${LEGACY}\r\n--${b}\r\nContent-Disposition: form-data; name="bearer_token"\r\n\r\nDELETE\r\n--${b}--\r\n` }),
    rack: { token: LEGACY, method: 'POST' },
    gate: { refused: 'CREDENTIAL_AMBIGUOUS' }
  },
  {
    name: 'a filename= in another header does not make a Content-ID part a file',
    found: 'review',
    request: request({ headers: [MULTIPART], body: `--${b}\r\nX-Note: filename=a\r\nContent-ID: job_token\r\n\r\n${LEGACY}\r\n--${b}--\r\n` }),
    rack: { token: LEGACY, method: 'POST' },
    gate: { token: LEGACY, method: 'POST' }
  },
  {
    name: 'Content-Type names a part with neither name nor Content-ID ("job_token[]")',
    found: 'review',
    request: request({ headers: [MULTIPART], body: `--${b}\r\nContent-Type: job_token\r\n\r\n${LEGACY}\r\n--${b}--\r\n` }),
    rack: { token: LEGACY, method: 'POST' },
    gate: { token: LEGACY, method: 'POST' }
  },
  {
    name: 'name= after an unclosed quoted value (Rack 2 takes the last name= it can match)',
    found: 'differential, against the scanner before Rack\'s readings',
    request: request({ headers: [MULTIPART], body: `--${b}\r\nContent-Disposition: form-data; name="x\\"; name=job_token\r\n\r\n${LEGACY}\r\n--${b}--\r\n` }),
    rack: { token: LEGACY, method: 'POST' },
    gate: { token: LEGACY, method: 'POST' }
  },
  {
    name: 'a decoy filename= and a hidden name: the glcbt- value is read',
    found: 'differential, against the scanner before Rack\'s readings',
    request: request({ headers: [MULTIPART], body: `--${b}\r\nX-Note: filename=a\r\nContent-Disposition: form-data; name="x\\"; name=job_token[]\r\n\r\n${JOB_A}\r\n--${b}--\r\n` }),
    rack: { token: JOB_A, method: 'POST' },
    gate: { token: JOB_A, method: 'POST' }
  },
  {
    name: 'a bare name ends where Rack 2 ends a token (name=job_token/x)',
    found: 'review',
    request: request({ headers: [MULTIPART], body: `--${b}\r\nContent-Disposition: form-data; name=job_token/x\r\n\r\n${LEGACY}\r\n--${b}--\r\n` }),
    rack: { token: LEGACY, method: 'POST' },
    gate: { token: LEGACY, method: 'POST' }
  },
  {
    name: 'streamed: a Content-ID part after a large file part stops the stream',
    found: 'review',
    request: request({
      headers: [MULTIPART],
      framing: 'chunked',
      chunk: 4096,
      body: `--${b}\r\nContent-Disposition: form-data; name="file"; filename="a.bin"\r\n\r\n${'x'.repeat(200_000)}\r\n--${b}\r\nX-Note: filename=a\r\nContent-ID: job_token\r\n\r\n${LEGACY}\r\n--${b}--\r\n`
    }),
    rack: { token: LEGACY, method: 'POST' },
    gate: { refused: 'MULTIPART_CREDENTIAL_NOT_ALLOWED' }
  },
  // Rack::MethodOverride
  {
    name: 'X-HTTP-Method-Override routes a POST as DELETE',
    found: 'differential, first runs',
    request: request({ headers: [['X-HTTP-Method-Override', 'delete'], ['JOB-TOKEN', JOB_A]] }),
    rack: { token: JOB_A, method: 'DELETE' },
    gate: { token: JOB_A, method: 'DELETE' }
  },
  {
    name: 'X_HTTP_METHOD_OVERRIDE is the same header to Rack',
    found: 'review',
    request: request({ headers: [['X_HTTP_METHOD_OVERRIDE', 'PUT']] }),
    rack: { method: 'PUT' },
    gate: { token: null, method: 'PUT' }
  },
  {
    name: '_method in a form body',
    found: 'review',
    request: request({ headers: [FORM], body: `_method=delete&job_token=${JOB_A}` }),
    rack: { token: JOB_A, method: 'DELETE' },
    gate: { token: JOB_A, method: 'DELETE' }
  },
  {
    name: '_method in a POST body without a Content-Type (Rack parses it as a form)',
    found: 'review',
    request: request({ body: '_method=PATCH' }),
    rack: { method: 'PATCH' },
    gate: { token: null, method: 'PATCH' }
  },
  {
    name: '_method in a multipart body',
    found: 'review',
    request: request({ headers: [MULTIPART], body: `--${b}\r\nContent-Disposition: form-data; name="_method"\r\n\r\nDELETE\r\n--${b}\r\nContent-Disposition: form-data; name="token"\r\n\r\n${JOB_A}\r\n--${b}--\r\n` }),
    rack: { token: JOB_A, method: 'DELETE' },
    gate: { token: JOB_A, method: 'DELETE' }
  },
  {
    name: 'the body\'s _method wins over the header',
    found: 'review',
    request: request({ headers: [FORM, ['X-HTTP-Method-Override', 'PUT']], body: '_method=delete' }),
    rack: { method: 'DELETE' },
    gate: { token: null, method: 'DELETE' }
  },
  {
    name: 'a _method naming no method keeps the POST, and the header is not read',
    found: 'review',
    request: request({ headers: [FORM, ['X-HTTP-Method-Override', 'DELETE']], body: '_method=bogus' }),
    rack: { method: 'POST' },
    gate: { token: null, method: 'POST' }
  },
  {
    name: '_method is upcased as Ruby upcases UTF-8 (lınk is LINK)',
    found: 'review',
    request: request({ headers: [FORM], body: '_method=l%C4%B1nk' }),
    rack: { method: 'LINK' },
    gate: { token: null, method: 'LINK' }
  },
  {
    name: 'a header value is binary to Rack: only ASCII is upcased',
    found: 'review',
    request: request({ headers: [['X-HTTP-Method-Override', Buffer.from('lınk').toString('latin1')]] }),
    rack: { method: 'POST' },
    gate: { token: null, method: 'POST' }
  },
  {
    name: '_method in the query is not read',
    found: 'review',
    request: request({ query: '_method=DELETE' }),
    rack: { method: 'POST' },
    gate: { token: null, method: 'POST' }
  },
  {
    name: 'only a POST is overridden',
    found: 'review',
    request: request({ method: 'PUT', headers: [['X-HTTP-Method-Override', 'DELETE']] }),
    rack: { method: 'PUT' },
    gate: { token: null, method: 'PUT' }
  },
  {
    name: 'a bad escape makes Rack fall back to the header',
    found: 'review',
    request: request({ headers: [FORM, ['X-HTTP-Method-Override', 'PUT']], body: '_method=delete&x=%zz' }),
    rack: { method: 'PUT' },
    gate: { token: null, method: 'PUT' }
  },
  {
    name: 'repeated X-HTTP-Method-Override headers are refused, even alike (Puma joins them)',
    found: 'review',
    request: request({ headers: [['X-HTTP-Method-Override', 'DELETE'], ['x-http-method-override', 'DELETE']] }),
    rack: { method: 'POST' },
    gate: { refused: 'METHOD_OVERRIDE_AMBIGUOUS' }
  },
  {
    name: '[_method] is _method to Rack 2 and not to Rack 3: refused',
    found: 'review',
    request: request({ headers: [FORM], body: '%5B_method%5D=DELETE' }),
    rack: { method: 'DELETE' },
    gate: { refused: 'METHOD_OVERRIDE_AMBIGUOUS' }
  },
  {
    name: '_method in a multipart body parsers frame differently: refused',
    found: 'review',
    request: request({ headers: [MULTIPART], body: `preamble\r\n--${b}\r\nContent-Disposition: form-data; name="_method"\r\n\r\nDELETE\r\n--${b}--\r\n` }),
    rack: { method: 'DELETE' },
    gate: { refused: 'METHOD_OVERRIDE_AMBIGUOUS' }
  },
  {
    name: '_method in a streamed multipart body cannot be known before forwarding: refused',
    found: 'review',
    request: request({ headers: [MULTIPART], framing: 'chunked', body: `--${b}\r\nContent-Disposition: form-data; name="_method"\r\n\r\nDELETE\r\n--${b}--\r\n` }),
    rack: { method: 'DELETE' },
    gate: { refused: 'METHOD_OVERRIDE_NOT_INSPECTABLE' }
  },
  {
    name: 'outside the API the method is left alone (UI forms send _method)',
    found: 'review',
    request: request({ path: '/acme/app/-/issues/1', headers: [FORM, ['X-HTTP-Method-Override', 'PUT'], ['X-HTTP-Method-Override', 'PATCH']], body: `_method=delete&private_token=${PAT}` }),
    rack: { method: 'DELETE' },
    gate: { token: null, method: 'POST' }
  }
]

test('the gate on every regression: the job token Rack reads, the method Rack routes', async (t) => {
  const gate = gateUnderTest()
  for (const r of regressions) {
    await t.test(r.name, async () => {
      const verdict = await gate.run(r.request)
      if ('refused' in r.gate) {
        assert.deepEqual(verdict, { kind: 'refused', code: r.gate.refused })
      } else {
        assert.deepEqual(verdict, { kind: 'passed', token: r.gate.token, method: r.gate.method })
      }
    })
  }
})

test('Rack reads what each regression says (keeps the table honest)', async (t) => {
  if (!requireRack(t)) return
  const oracle = startRackOracle()
  t.after(() => oracle.close())
  for (const r of regressions) {
    await t.test(r.name, async () => {
      const answer = await oracle.ask(oracleRequest(r.request))
      assert.equal(answer.method, r.rack.method)
      const tokens = jobTokensRackReads(r.request, answer).map(([, v]) => v)
      if (r.rack.token === undefined) assert.deepEqual(tokens, [])
      else assert.ok(tokens.includes(r.rack.token), `Rack reads ${JSON.stringify(answer.creds)}`)
      // The gate's method is Rack's, on API paths, unless it refuses.
      if (!('refused' in r.gate) && r.request.path.startsWith('/api/')) assert.equal(r.gate.method, routedAs(r.rack.method))
    })
  }
})
