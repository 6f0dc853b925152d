// Findings: Workhorse names a part of a multipart body on its upload routes with Go's
// mime.ParseMediaType and writes its Content-Disposition again for Rails with
// mime.FormatMediaType (parameters sorted, decoded, quoted again); Rack 2.2 then names the part by
// the last `; name=` of that line, inside a quoted value too. The gate read names as Rack reads the
// bytes sent, so each spelling below named nothing, or `version`, to it, while Rails behind
// Workhorse read `private_token` (ahead of the headers) and acted as the Developer whose token it
// held, past a Maintainer-only package rule on the Maintainer's header token; a `_method` so
// spelled was no override to the gate, and a GraphQL `query` so spelled ran in place of the one
// the gate read. The gate now reads each name as Go reads it too:
// - Go takes any Unicode white space around a parameter's '=' and after its value (a no-break
//   space, U+0085, U+2000-U+200A, U+3000: the bytes of UTF-8);
// - Workhorse's rewritten line uncovers a `;name=` hidden in another parameter's value (RFC 2231
//   escapes and sections, quoted-string escapes);
// - Go takes a disposition type with a subtype (`form-data/x`) and writes both tokens;
// - Go lowers the type as strings.ToLower does: U+212A (Kelvin sign) is `k`, U+0130 `i`; and the
//   charset of an RFC 2231 value too (`"us-asc\u0130i''a%3Bname%3Dprivate_token"` is us-ascii);
// - Go after 1.19 (golang/go#48866; Workhorse is built with 1.22 and later) takes a parameter
//   repeated with an equal value, where 1.19, the Go these tests run, refuses the whole line: the
//   cases that need it are written out here, as the newer Go reads them.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { gateWithPackageRule, USERS } from '../helpers/admin-gate.ts'
import { sendChunked, send } from '../helpers/http.ts'
import { startTestGate, TOKENS } from '../helpers/gate.ts'
import { postGraphql, startGraphqlGate } from '../helpers/graphql-gate.ts'
import { goFormatMediaType, goNormalizedDisposition } from '../../src/identity/go-mime.ts'

const PYPI_UPLOAD = '/api/v4/projects/200/packages/pypi'
/** The job's own project: its token may upload there. */
const APP_UPLOAD = '/api/v4/projects/100/packages/pypi'
const B = 'go-part-names-boundary'
const type = { 'content-type': `multipart/form-data; boundary=${B}` }
/** As latin1 characters of their UTF-8 bytes, as the gate reads a body. */
const KELVIN = '\xe2\x84\xaa'
const DOTTED_I = '\xc4\xb0'

/** Content-Disposition lines Rails behind Workhorse reads as a `private_token` part. */
const SPELLINGS: ReadonlyArray<readonly [string, string]> = [
  ['no-break spaces around =', 'form-data; name\xc2\xa0=\xc2\xa0private_token'],
  ['a no-break space before =', 'form-data; name\xc2\xa0=private_token'],
  ['a no-break space after the value', 'form-data; name=private_token\xc2\xa0'],
  ['an ideographic space before =', 'form-data; name\xe3\x80\x80=private_token'],
  ['a next-line (U+0085) after =', 'form-data; NAME=\xc2\x85private_token'],
  ['an en quad before a quoted value', 'form-data; name=\xe2\x80\x80"private_token"'],
  ['RFC 2231 percent escapes', "form-data; name=version; z*=utf-8''a%3Bname%3Dprivate_token"],
  ['a quoted-string escape', 'form-data; name=version; z="a;name\\=private_token"'],
  ['RFC 2231 sections', "form-data; name=version; z*0*=utf-8''a%3Bname; z*1*=%3Dprivate%5Ftoken"],
  ['a parameter name in capitals', "form-data; NAME=version; Zz*=UTF-8''%3b%20name%3dprivate_token"],
  ['a type with a subtype', "form-data/x; name=version; z*=utf-8''a%3Bname%3Dprivate_token"],
  ['a capitalised type with a subtype', 'Attachment/Y ; name=version; z="a;name\\=private_token"'],
  ['the Kelvin sign as the type', `${KELVIN}; name=version; z*=utf-8''a%3Bname%3Dprivate_token`],
  ['a dotted capital I in the type', `${DOTTED_I}nline ; name=version; z="a;name\\=private_token"`],
  ['the Kelvin sign as the subtype', `form-data/${KELVIN}; name=version; z*=utf-8''a%3Bname%3Dprivate_token`],
  ['a dotted capital I in an RFC 2231 charset', `form-data; name=version; z*="us-asc${DOTTED_I}i''a%3Bname%3Dprivate_token"`],
  ['a dotted capital I in a section\'s charset', `form-data; name=version; z*0*="US-ASC${DOTTED_I}I''a%3Bname"; z*1*=%3Dprivate_token`],
  ['a hiding parameter repeated with an equal value', "form-data; name=version; z*=utf-8''a%3Bname%3Dprivate_token; z*=utf-8''a%3Bname%3Dprivate_token"],
  ['a repeated hiding section', "form-data; name=version; z*0*=utf-8''a%3Bname; z*1*=%3Dprivate_token; z*0*=utf-8''a%3Bname"]
]

function body (disposition: string, value: string): Buffer {
  return Buffer.from(`--${B}\r\nContent-Disposition: form-data; name="name"\r\n\r\npkg\r\n` +
    `--${B}\r\nContent-Disposition: ${disposition}\r\n\r\n${value}\r\n--${B}--\r\n`, 'latin1')
}

test('Go\'s FormatMediaType and the line Workhorse writes, as the gate reads them', () => {
  assert.equal(goFormatMediaType('form-data/x', new Map([['name', 'a'], ['z', 'b;c']])), 'form-data/x; name=a; z="b;c"')
  assert.equal(goFormatMediaType('form-data/', new Map([['name', 'a']])), '')
  assert.equal(goFormatMediaType('a/b/c', new Map([['name', 'a']])), '')
  assert.equal(goNormalizedDisposition(`${KELVIN}; name=version; z*=utf-8''a%3Bname%3Dprivate_token`), 'k; name=version; z="a;name=private_token"')
  assert.equal(goNormalizedDisposition(`${DOTTED_I}nline ; name=version; z="a;name\\=private_token"`), 'inline; name=version; z="a;name=private_token"')
  assert.equal(goNormalizedDisposition(`form-data/${KELVIN}; name=version`), 'form-data/k; name=version')
  assert.equal(goNormalizedDisposition('\xc3\x89; name=version'), null, 'no other letter lowers to ASCII')
  assert.equal(goNormalizedDisposition(`form-data; name=version; z*="us-asc${DOTTED_I}i''a%3Bname%3Dprivate_token"`), 'form-data; name=version; z="a;name=private_token"')
  // Go after 1.19: a parameter repeated with an equal value is read once; with another value the line is no name.
  assert.equal(goNormalizedDisposition("form-data; name=version; z*=utf-8''a%3Bname%3Dprivate_token; z*=utf-8''a%3Bname%3Dprivate_token"), 'form-data; name=version; z="a;name=private_token"')
  assert.equal(goNormalizedDisposition('form-data; NAME=private_token; name=private_token'), 'form-data; name=private_token')
  assert.equal(goNormalizedDisposition('form-data; name=private_token; name=version'), null)
})

test('a Developer\'s token under a name only Workhorse\'s reading shows is refused by a Maintainer-only rule, buffered and streamed', async t => {
  const g = await gateWithPackageRule(t, 'pypi', { write: 'maintainer' })
  const before = g.seen.length
  for (const [label, disposition] of SPELLINGS) {
    const upload = body(disposition, USERS.developer)
    const buffered = await send(g.url, 'POST', PYPI_UPLOAD, { ...type, 'private-token': USERS.maintainer }, upload)
    assert.equal(buffered.status, 403, `${label}: ${buffered.text}`)
    assert.equal(buffered.json().code, 'PACKAGE_MAINTAINER_ONLY', label)
    const streamed = await sendChunked(g.url, PYPI_UPLOAD, { ...type, 'private-token': USERS.maintainer }, [upload])
    assert.ok(streamed.status === 401 || streamed.status === 403, `${label} streamed: ${streamed.status} ${streamed.body}`)
  }
  assert.equal(g.seen.length, before, 'no upload reached the upstream')
  // Controls: the Maintainer's own uploads, with such lines naming harmless fields, pass.
  for (const disposition of ['form-data; name="version"', "form-data; name=version; z*=utf-8''a%3Bb", "form-data/x; name=version; z*=utf-8''a%3Bb", `${KELVIN}; name=version; z*=utf-8''a%3Bb`]) {
    const clean = await send(g.url, 'POST', PYPI_UPLOAD, { ...type, 'private-token': USERS.maintainer }, body(disposition, '1.0'))
    assert.equal(clean.status, 200, `${disposition}: ${clean.text}`)
  }
})

test('a `_method` so spelled is no route the gate can decide: refused, nothing forwarded', async t => {
  const g = await startTestGate(t)
  for (const [label, disposition] of SPELLINGS) {
    const r = await send(g.url, 'POST', APP_UPLOAD, { ...type, 'job-token': TOKENS.app }, body(disposition.replace(/private(_|%5F)token/g, '_method'), 'DELETE'))
    assert.equal(r.status, 400, `${label}: ${r.text}`)
    assert.equal(r.json().code, 'METHOD_OVERRIDE_AMBIGUOUS', label)
  }
  assert.equal(g.seen.length, 0)
  const clean = await send(g.url, 'POST', APP_UPLOAD, { ...type, 'job-token': TOKENS.app }, body('form-data; name="version"', '1.0'))
  assert.equal(clean.status, 200, clean.text)
})

test('a GraphQL `query` so spelled is refused: Rails behind Workhorse would run it in place of the one the gate read', async t => {
  // A fine-grained token limited to project 200; Workhorse's rewritten line names the second part
  // `query` too, and Rack keeps the later value: the mutation on project 300.
  const g = await startGraphqlGate(t, { tokens: { 'glpat-vuln': { userId: 7, scopes: [{ access: 'selected_memberships', permissions: ['create_vulnerability'], project_id: 200 }] } } })
  const mutation = (project: number): string => `mutation { vulnerabilityCreate(input: {project: "gid://gitlab/Project/${project}", name: "x"}) { errors } }`
  const part = (disposition: string, value: string): string => `--${B}\r\nContent-Disposition: ${disposition}\r\n\r\n${value}\r\n`
  for (const [label, disposition] of SPELLINGS) {
    const hidden = disposition.replace(/private(_|%5F)token/g, 'query')
    const answer = await postGraphql(g.url, Buffer.from(part('form-data; name="query"', mutation(200)) + part(hidden, mutation(300)) + `--${B}--\r\n`, 'latin1'), { ...type, 'private-token': 'glpat-vuln' })
    assert.equal(answer.status, 400, `${label}: ${answer.text}`)
    assert.equal(answer.body.code, 'GRAPHQL_AMBIGUOUS_REQUEST', label)
  }
  assert.equal(g.upstream.length, 0)
})
