import { test } from 'node:test'
import assert from 'node:assert/strict'
import {
  apiPathsIn,
  canonicalize,
  createCanonicalizer,
  decodeParam,
  type CanonicalOptions,
  type CanonicalRequest
} from '../../src/routing/canonical.ts'
import type { ErrorCode } from '../../src/errors.ts'
import { prng as mulberry32 } from '../helpers/prng.ts'

type Expected =
  | CanonicalRequest
  | { kind: 'rejected', code: ErrorCode }

interface Case {
  name: string
  method: string
  target: string
  options?: CanonicalOptions
  expected: Expected
}

const api = (path: string, apiPath: string, query = '', method = 'GET'): Expected =>
  ({ kind: 'api', method, path, apiPath, query })
const other = (path: string, query = '', method = 'GET'): Expected =>
  ({ kind: 'other', method, path, query })
const rejected = (code: ErrorCode): Expected => ({ kind: 'rejected', code })

function check (c: Case): void {
  const got = canonicalize(c.method, c.target, c.options)
  if (c.expected.kind === 'rejected') {
    assert.equal(got.kind, 'rejected', `expected a rejection, got ${JSON.stringify(got)}`)
    assert.ok(got.kind === 'rejected')
    assert.equal(got.code, c.expected.code, got.reason)
    assert.equal(typeof got.reason, 'string')
    assert.ok(got.reason.length > 0 && got.reason.length <= 200, `reason too long: ${got.reason}`)
  } else {
    assert.deepEqual(got, c.expected)
    // The canonical form is a fixed point.
    const again = canonicalize(got.kind === 'api' || got.kind === 'other' ? got.method : c.method,
      (got as { path: string }).path + (c.expected.query === '' ? '' : '?' + c.expected.query), c.options)
    assert.deepEqual(again, c.expected)
  }
}

function run (group: string, cases: Case[]): void {
  for (const c of cases) test(`${group}: ${c.name}`, () => check(c))
}

run('plain', [
  { name: 'simple api path', method: 'GET', target: '/api/v4/projects/1', expected: api('/api/v4/projects/1', '/projects/1') },
  { name: 'api prefix alone', method: 'GET', target: '/api/v4', expected: api('/api/v4', '/') },
  { name: 'api prefix with trailing slash', method: 'GET', target: '/api/v4/', expected: api('/api/v4', '/') },
  { name: 'api prefix with query', method: 'GET', target: '/api/v4?a=b', expected: api('/api/v4', '/', 'a=b') },
  { name: 'root', method: 'GET', target: '/', expected: other('/') },
  { name: 'root with query', method: 'GET', target: '/?x=1', expected: other('/', 'x=1') },
  { name: 'all pchar characters raw', method: 'GET', target: "/api/v4/a-._~!$&'()*+,;=:@Z9", expected: api("/api/v4/a-._~!$&'()*+,;=:@Z9", "/a-._~!$&'()*+,;=:@Z9") },
  { name: 'format suffix is not stripped', method: 'GET', target: '/api/v4/projects/42/packages/5.json', expected: api('/api/v4/projects/42/packages/5.json', '/projects/42/packages/5.json') },
  { name: 'triple dots are a name', method: 'GET', target: '/api/v4/.../..a/.b', expected: api('/api/v4/.../..a/.b', '/.../..a/.b') },
  { name: 'go proxy shape', method: 'GET', target: '/api/v4/projects/1/packages/go/example.com/g/!my!lib/@v/list', expected: api('/api/v4/projects/1/packages/go/example.com/g/!my!lib/@v/list', '/projects/1/packages/go/example.com/g/!my!lib/@v/list') },
  { name: 'npm tarball shape', method: 'GET', target: '/api/v4/projects/1/packages/npm/@scope/name/-/@scope/name-1.0.0.tgz', expected: api('/api/v4/projects/1/packages/npm/@scope/name/-/@scope/name-1.0.0.tgz', '/projects/1/packages/npm/@scope/name/-/@scope/name-1.0.0.tgz') }
])

run('method', [
  { name: 'HEAD routes as GET', method: 'HEAD', target: '/api/v4/x', expected: api('/api/v4/x', '/x') },
  { name: 'lower-case head routes as GET', method: 'head', target: '/api/v4/x', expected: api('/api/v4/x', '/x') },
  { name: 'lower-case post is upper-cased', method: 'post', target: '/api/v4/x', expected: api('/api/v4/x', '/x', '', 'POST') },
  { name: 'mixed-case delete is upper-cased', method: 'DeLeTe', target: '/other', expected: other('/other', '', 'DELETE') },
  { name: 'PUT kept', method: 'PUT', target: '/api/v4/x/', expected: api('/api/v4/x', '/x', '', 'PUT') }
])

run('query', [
  { name: 'query kept raw with ;', method: 'GET', target: '/api/v4/x?a=1;b=2', expected: api('/api/v4/x', '/x', 'a=1;b=2') },
  { name: 'query escapes not decoded', method: 'GET', target: '/api/v4/x?p=%2e%2e%2F&q=%41', expected: api('/api/v4/x', '/x', 'p=%2e%2e%2F&q=%41') },
  { name: 'query may hold / .. and ?', method: 'GET', target: '/api/v4/x?next=/a/../b?c', expected: api('/api/v4/x', '/x', 'next=/a/../b?c') },
  { name: 'empty query after ?', method: 'GET', target: '/api/v4/x?', expected: api('/api/v4/x', '/x', '') },
  { name: 'query kept on slow path', method: 'GET', target: '/api//v4/x/?a=%zz;b', expected: api('/api/v4/x', '/x', 'a=%zz;b') },
  { name: 'raw # in query rejected', method: 'GET', target: '/api/v4/x?a#b', expected: rejected('PATH_BAD_CHAR') },
  { name: 'control char in query rejected', method: 'GET', target: '/api/v4/x?a=\nb', expected: rejected('PATH_CONTROL_CHAR') },
  { name: 'NUL in query rejected', method: 'GET', target: '/api/v4/x?a=\0', expected: rejected('PATH_CONTROL_CHAR') }
])

run('slashes', [
  { name: 'collapse // and drop trailing /', method: 'GET', target: '//api//v4///projects/1/', expected: api('/api/v4/projects/1', '/projects/1') },
  { name: 'trailing slash dropped', method: 'GET', target: '/api/v4/projects/1/', expected: api('/api/v4/projects/1', '/projects/1') },
  { name: 'many trailing slashes dropped', method: 'GET', target: '/api/v4/projects///', expected: api('/api/v4/projects', '/projects') },
  { name: 'pypi simple trailing slash', method: 'GET', target: '/api/v4/projects/1/packages/pypi/simple/my-package/', expected: api('/api/v4/projects/1/packages/pypi/simple/my-package', '/projects/1/packages/pypi/simple/my-package') },
  { name: 'only slashes is root', method: 'GET', target: '////', expected: other('/') },
  { name: 'trailing slash before query', method: 'GET', target: '/api/v4/x/?y', expected: api('/api/v4/x', '/x', 'y') }
])

run('escapes decoded', [
  { name: '%2D is -', method: 'GET', target: '/api/v4/a%2Db', expected: api('/api/v4/a-b', '/a-b') },
  { name: '%61pi is api', method: 'GET', target: '/%61pi/v4/projects/1', expected: api('/api/v4/projects/1', '/projects/1') },
  { name: 'fully encoded prefix', method: 'GET', target: '/%61%70%69/%76%34/x', expected: api('/api/v4/x', '/x') },
  { name: '%40v is @v', method: 'GET', target: '/api/v4/g/lib/%40v/list', expected: api('/api/v4/g/lib/@v/list', '/g/lib/@v/list') },
  { name: 'npm @scope%2fname keeps %2f', method: 'GET', target: '/api/v4/packages/npm/%40scope%2fname', expected: api('/api/v4/packages/npm/@scope%2fname', '/packages/npm/@scope%2fname') },
  { name: 'lower-case hex of unreserved decoded', method: 'GET', target: '/api/v4/%7e%5f%2e%41', expected: api('/api/v4/~_.A', '/~_.A') },
  { name: '%2E before json becomes .json', method: 'GET', target: '/api/v4/p/5%2Ejson', expected: api('/api/v4/p/5.json', '/p/5.json') }
])

run('escapes kept', [
  { name: '%2F kept inside a segment', method: 'GET', target: '/api/v4/projects/group%2Fproject', expected: api('/api/v4/projects/group%2Fproject', '/projects/group%2Fproject') },
  { name: '%2f kept with its case', method: 'GET', target: '/api/v4/projects/group%2fproject', expected: api('/api/v4/projects/group%2fproject', '/projects/group%2fproject') },
  { name: '%252F kept (double encoding is text)', method: 'GET', target: '/api/v4/x%252Fy', expected: api('/api/v4/x%252Fy', '/x%252Fy') },
  { name: '%25 kept', method: 'GET', target: '/api/v4/100%25', expected: api('/api/v4/100%25', '/100%25') },
  { name: '%20 kept', method: 'GET', target: '/api/v4/a%20b', expected: api('/api/v4/a%20b', '/a%20b') },
  { name: 'UTF-8 escapes kept, hex case preserved', method: 'GET', target: '/api/v4/caf%C3%a9', expected: api('/api/v4/caf%C3%a9', '/caf%C3%a9') },
  { name: '4-byte UTF-8 kept', method: 'GET', target: '/api/v4/%F0%9F%98%80', expected: api('/api/v4/%F0%9F%98%80', '/%F0%9F%98%80') },
  { name: '%3F and %23 kept', method: 'GET', target: '/api/v4/a%3Fb%23c', expected: api('/api/v4/a%3Fb%23c', '/a%3Fb%23c') },
  { name: 'release tag with %2F', method: 'GET', target: '/api/v4/projects/1/releases/release%2Fv1.2.3', expected: api('/api/v4/projects/1/releases/release%2Fv1.2.3', '/projects/1/releases/release%2Fv1.2.3') },
  { name: 'double-encoded dots are text', method: 'GET', target: '/api/v4/%252e%252e', expected: api('/api/v4/%252e%252e', '/%252e%252e') },
  { name: 'double-encoded slash and dots are text', method: 'GET', target: '/api/v4/a%252F..b', expected: api('/api/v4/a%252F..b', '/a%252F..b') }
])

run('dot segments', [
  { name: 'raw ..', method: 'GET', target: '/api/v4/projects/..', expected: rejected('PATH_DOT_SEGMENT') },
  { name: 'raw .', method: 'GET', target: '/api/v4/./projects', expected: rejected('PATH_DOT_SEGMENT') },
  { name: 'raw .. in the middle', method: 'GET', target: '/api/v4/a/../b', expected: rejected('PATH_DOT_SEGMENT') },
  { name: 'raw .. before the prefix', method: 'GET', target: '/x/../api/v4/a', expected: rejected('PATH_DOT_SEGMENT') },
  { name: 'raw .. with trailing slash', method: 'GET', target: '/api/v4/../', expected: rejected('PATH_DOT_SEGMENT') },
  { name: 'raw .. before query', method: 'GET', target: '/api/v4/..?a', expected: rejected('PATH_DOT_SEGMENT') },
  { name: '%2e%2e', method: 'GET', target: '/api/v4/%2e%2e', expected: rejected('PATH_DOT_SEGMENT') },
  { name: '%2E%2e', method: 'GET', target: '/api/v4/%2E%2e/x', expected: rejected('PATH_DOT_SEGMENT') },
  { name: '.%2E', method: 'GET', target: '/api/v4/.%2E/x', expected: rejected('PATH_DOT_SEGMENT') },
  { name: '%2e.', method: 'GET', target: '/api/v4/%2e./x', expected: rejected('PATH_DOT_SEGMENT') },
  { name: '%2E alone', method: 'GET', target: '/api/v4/%2E/x', expected: rejected('PATH_DOT_SEGMENT') },
  { name: 'a/%2e%2e/b', method: 'GET', target: '/a/%2e%2e/b', expected: rejected('PATH_DOT_SEGMENT') },
  { name: 'a%2F..%2Fb', method: 'GET', target: '/api/v4/projects/a%2F..%2Fb', expected: rejected('PATH_DOT_SEGMENT') },
  { name: 'a%2f.%2fb lower-case', method: 'GET', target: '/api/v4/projects/a%2f.%2fb', expected: rejected('PATH_DOT_SEGMENT') },
  { name: '..%2Fetc', method: 'GET', target: '/api/v4/files/..%2Fetc', expected: rejected('PATH_DOT_SEGMENT') },
  { name: 'x%2F..', method: 'GET', target: '/api/v4/files/x%2F..', expected: rejected('PATH_DOT_SEGMENT') },
  { name: 'encoded dots between encoded slashes', method: 'GET', target: '/api/v4/files/a%2F%2e%2E%2Fb', expected: rejected('PATH_DOT_SEGMENT') },
  { name: '%25 then %2F then ..', method: 'GET', target: '/api/v4/files/%25%2F..', expected: rejected('PATH_DOT_SEGMENT') }
])

run('control characters', [
  { name: 'raw NUL', method: 'GET', target: '/api/v4/a\0b', expected: rejected('PATH_CONTROL_CHAR') },
  { name: '%00', method: 'GET', target: '/api/v4/a%00b', expected: rejected('PATH_CONTROL_CHAR') },
  { name: '%0a', method: 'GET', target: '/api/v4/a%0a', expected: rejected('PATH_CONTROL_CHAR') },
  { name: '%0D', method: 'GET', target: '/api/v4/a%0D', expected: rejected('PATH_CONTROL_CHAR') },
  { name: '%1F', method: 'GET', target: '/api/v4/a%1F', expected: rejected('PATH_CONTROL_CHAR') },
  { name: 'raw tab', method: 'GET', target: '/api/v4/a\tb', expected: rejected('PATH_CONTROL_CHAR') },
  { name: 'raw CR LF', method: 'GET', target: '/api/v4/a\r\nX: y', expected: rejected('PATH_CONTROL_CHAR') },
  { name: 'raw DEL', method: 'GET', target: '/api/v4/a\x7f', expected: rejected('PATH_CONTROL_CHAR') },
  { name: '%7F', method: 'GET', target: '/api/v4/a%7F', expected: rejected('PATH_CONTROL_CHAR') }
])

run('backslash', [
  { name: 'raw backslash', method: 'GET', target: '/api/v4/a\\..\\b', expected: rejected('PATH_BACKSLASH') },
  { name: '%5c', method: 'GET', target: '/api/v4/a%5c..', expected: rejected('PATH_BACKSLASH') },
  { name: '%5C', method: 'GET', target: '/api/v4/%5C', expected: rejected('PATH_BACKSLASH') }
])

run('bad encoding', [
  { name: 'lone %', method: 'GET', target: '/api/v4/a%', expected: rejected('PATH_BAD_ENCODING') },
  { name: '% before slash', method: 'GET', target: '/api/v4/a%/b', expected: rejected('PATH_BAD_ENCODING') },
  { name: '%g1', method: 'GET', target: '/api/v4/%g1', expected: rejected('PATH_BAD_ENCODING') },
  { name: '%2 at end', method: 'GET', target: '/api/v4/%2', expected: rejected('PATH_BAD_ENCODING') },
  { name: '%2 before query', method: 'GET', target: '/api/v4/%2?F', expected: rejected('PATH_BAD_ENCODING') },
  { name: '%zz', method: 'GET', target: '/api/v4/%zz', expected: rejected('PATH_BAD_ENCODING') },
  { name: 'truncated UTF-8 %C3', method: 'GET', target: '/api/v4/%C3', expected: rejected('PATH_BAD_ENCODING') },
  { name: 'truncated UTF-8 %C3 then plain', method: 'GET', target: '/api/v4/%C3a', expected: rejected('PATH_BAD_ENCODING') },
  { name: '%FF', method: 'GET', target: '/api/v4/%FF', expected: rejected('PATH_BAD_ENCODING') },
  { name: 'stray continuation %80', method: 'GET', target: '/api/v4/%80', expected: rejected('PATH_BAD_ENCODING') },
  { name: 'overlong %C0%AF', method: 'GET', target: '/api/v4/%C0%AF', expected: rejected('PATH_BAD_ENCODING') },
  { name: 'overlong %E0%80%AF', method: 'GET', target: '/api/v4/%E0%80%AF', expected: rejected('PATH_BAD_ENCODING') },
  { name: 'surrogate %ED%A0%80', method: 'GET', target: '/api/v4/%ED%A0%80', expected: rejected('PATH_BAD_ENCODING') },
  { name: 'above U+10FFFF %F4%90%80%80', method: 'GET', target: '/api/v4/%F4%90%80%80', expected: rejected('PATH_BAD_ENCODING') },
  { name: 'UTF-8 split across a slash', method: 'GET', target: '/api/v4/%C3/%A9', expected: rejected('PATH_BAD_ENCODING') }
])

run('bad characters', [
  { name: 'raw non-ASCII (latin1 byte)', method: 'GET', target: '/api/v4/caf\u00e9', expected: rejected('PATH_BAD_CHAR') },
  { name: 'raw non-ASCII byte 0x80', method: 'GET', target: '/api/v4/\u0080', expected: rejected('PATH_BAD_CHAR') },
  { name: 'raw non-ASCII beyond latin1', method: 'GET', target: '/api/v4/\u2028', expected: rejected('PATH_BAD_CHAR') },
  { name: 'raw # in path', method: 'GET', target: '/api/v4/x#frag', expected: rejected('PATH_BAD_CHAR') },
  { name: 'raw space', method: 'GET', target: '/api/v4/a b', expected: rejected('PATH_BAD_CHAR') },
  { name: 'raw <', method: 'GET', target: '/api/v4/<script>', expected: rejected('PATH_BAD_CHAR') },
  { name: 'raw "', method: 'GET', target: '/api/v4/"', expected: rejected('PATH_BAD_CHAR') },
  { name: 'raw [ ]', method: 'GET', target: '/api/v4/a[0]', expected: rejected('PATH_BAD_CHAR') },
  { name: 'raw {|}^`', method: 'GET', target: '/api/v4/{|}^`', expected: rejected('PATH_BAD_CHAR') }
])

run('not absolute', [
  { name: 'asterisk', method: 'OPTIONS', target: '*', expected: rejected('PATH_NOT_ABSOLUTE') },
  { name: 'absolute URL', method: 'GET', target: 'http://x/', expected: rejected('PATH_NOT_ABSOLUTE') },
  { name: 'empty target', method: 'GET', target: '', expected: rejected('PATH_NOT_ABSOLUTE') },
  { name: 'relative path', method: 'GET', target: 'api/v4/x', expected: rejected('PATH_NOT_ABSOLUTE') },
  { name: 'query only', method: 'GET', target: '?a=b', expected: rejected('PATH_NOT_ABSOLUTE') },
  { name: 'authority form', method: 'CONNECT', target: 'gitlab.example.com:443', expected: rejected('PATH_NOT_ABSOLUTE') }
])

const small: CanonicalOptions = { maxPathLength: 20, maxSegmentLength: 5 }
run('length', [
  // '/api/v4/' is 8 characters, so 12 more make exactly 20.
  { name: 'path exactly at the limit (20) passes', method: 'GET', target: '/api/v4/abcde/fghi/x', options: small, expected: api('/api/v4/abcde/fghi/x', '/abcde/fghi/x') },
  { name: 'path of 21 (one over) fails', method: 'GET', target: '/api/v4/abcde/fghi/xy', options: small, expected: rejected('PATH_TOO_LONG') },
  { name: 'path limit ignores the query', method: 'GET', target: '/api/v4/a?' + 'q'.repeat(100), options: small, expected: api('/api/v4/a', '/a', 'q'.repeat(100)) },
  { name: 'path limit counts raw characters', method: 'GET', target: '/api/v4/%61%62%63%64x', options: { maxPathLength: 20 }, expected: rejected('PATH_TOO_LONG') },
  { name: 'segment exactly at the limit passes', method: 'GET', target: '/api/v4/abcde', options: small, expected: api('/api/v4/abcde', '/abcde') },
  { name: 'segment one over fails', method: 'GET', target: '/api/v4/abcdef', options: small, expected: rejected('SEGMENT_TOO_LONG') },
  { name: 'segment one over fails in the middle', method: 'GET', target: '/api/v4/abcdef/x', options: small, expected: rejected('SEGMENT_TOO_LONG') },
  { name: 'segment measured raw, before decoding', method: 'GET', target: '/api/v4/%61bcd', options: small, expected: rejected('SEGMENT_TOO_LONG') },
  { name: 'encoded segment at the limit passes', method: 'GET', target: '/api/v4/%61bc', options: small, expected: api('/api/v4/abc', '/abc') },
  { name: 'default path limit 8192 passes', method: 'GET', target: '/api/v4/' + 'a/'.repeat(4091) + 'bc', expected: api('/api/v4/' + 'a/'.repeat(4091) + 'bc', '/' + 'a/'.repeat(4091) + 'bc') },
  { name: 'default path limit 8193 fails', method: 'GET', target: '/api/v4/' + 'a/'.repeat(4091) + 'bcd', expected: rejected('PATH_TOO_LONG') },
  { name: 'default segment limit 4096 passes', method: 'GET', target: '/api/v4/' + 'a'.repeat(4096), expected: api('/api/v4/' + 'a'.repeat(4096), '/' + 'a'.repeat(4096)) },
  { name: 'default segment limit 4097 fails', method: 'GET', target: '/api/v4/' + 'a'.repeat(4097), expected: rejected('SEGMENT_TOO_LONG') }
])

const gitlab: CanonicalOptions = { relativeUrlRoot: '/gitlab' }
run('relative URL root and prefix', [
  { name: '/gitlab/api/v4/x is api', method: 'GET', target: '/gitlab/api/v4/x', options: gitlab, expected: api('/gitlab/api/v4/x', '/x') },
  { name: '/gitlab/api/v4 alone', method: 'GET', target: '/gitlab/api/v4/', options: gitlab, expected: api('/gitlab/api/v4', '/') },
  { name: 'root collapsed and decoded', method: 'GET', target: '//gitlab//%61pi/v4//x/', options: gitlab, expected: api('/gitlab/api/v4/x', '/x') },
  { name: '/gitlabx/api/v4/x is other', method: 'GET', target: '/gitlabx/api/v4/x', options: gitlab, expected: other('/gitlabx/api/v4/x') },
  { name: '/api/v4/x without the root is other', method: 'GET', target: '/api/v4/x', options: gitlab, expected: other('/api/v4/x') },
  { name: '/gitlab alone is other', method: 'GET', target: '/gitlab', options: gitlab, expected: other('/gitlab') },
  { name: '/gitlab/api/v4x is other', method: 'GET', target: '/gitlab/api/v4x', options: gitlab, expected: other('/gitlab/api/v4x') },
  { name: 'root still validated', method: 'GET', target: '/gitlab/../api/v4/x', options: gitlab, expected: rejected('PATH_DOT_SEGMENT') },
  { name: '/API/v4 is other', method: 'GET', target: '/API/v4/projects', expected: other('/API/v4/projects') },
  { name: '/api/V4 is other', method: 'GET', target: '/api/V4/projects', expected: other('/api/V4/projects') },
  { name: '/api/v3 is other', method: 'GET', target: '/api/v3/projects', expected: other('/api/v3/projects') },
  { name: '/api/v4x is other', method: 'GET', target: '/api/v4x/projects', expected: other('/api/v4x/projects') },
  { name: '/api/v45 is other', method: 'GET', target: '/api/v45', expected: other('/api/v45') },
  { name: 'other paths normalized too', method: 'GET', target: '//users//sign_in/?a', expected: other('/users/sign_in', 'a') },
  { name: 'other paths validated too', method: 'GET', target: '/assets/%2e%2e/secret', expected: rejected('PATH_DOT_SEGMENT') },
  { name: 'encoded slash does not make a prefix', method: 'GET', target: '/api%2Fv4/x', expected: other('/api%2Fv4/x') }
])

const decodeCases: Array<{ name: string, raw: string, expected: string }> = [
  { name: 'encoded slash', raw: 'group%2Fproject', expected: 'group/project' },
  { name: 'lower-case encoded slash', raw: 'group%2fsub%2fproject', expected: 'group/sub/project' },
  { name: 'double encoding decoded once', raw: '%252F', expected: '%2F' },
  { name: 'npm scope', raw: '%40acme%2fcli', expected: '@acme/cli' },
  { name: 'UTF-8', raw: 'caf%C3%a9', expected: 'caf\u00e9' },
  { name: 'plus is not a space', raw: 'a+b', expected: 'a+b' },
  { name: 'no escapes', raw: 'v1.2.3', expected: 'v1.2.3' },
  { name: 'percent text', raw: '100%25', expected: '100%' }
]
for (const c of decodeCases) {
  test(`decodeParam: ${c.name}`, () => assert.equal(decodeParam(c.raw), c.expected))
}

test('decodeParam: throws for invalid encoding that canonicalize rejects', () => {
  for (const raw of ['%', '%zz', '%C0%AF', '%C3']) {
    assert.equal(canonicalize('GET', '/' + raw).kind, 'rejected', raw)
    assert.throws(() => decodeParam(raw), URIError, raw)
  }
})

test('reason never echoes more than ~64 characters of the input', () => {
  const long = '/api/v4/' + 'a'.repeat(500) + '%2F..%2F' + 'b'.repeat(500)
  const got = canonicalize('GET', long)
  assert.equal(got.kind, 'rejected')
  assert.ok(got.kind === 'rejected')
  assert.equal(got.code, 'PATH_DOT_SEGMENT')
  assert.ok(!got.reason.includes('a'.repeat(65)), got.reason)
  assert.ok(got.reason.length < 160, got.reason)

  const notAbs = canonicalize('GET', 'x'.repeat(1000))
  assert.ok(notAbs.kind === 'rejected' && notAbs.reason.length < 120, JSON.stringify(notAbs))
})

test('reason does not echo control characters raw', () => {
  const got = canonicalize('GET', '/a%zz\r\n')
  assert.ok(got.kind === 'rejected')
  assert.equal(got.code, 'PATH_BAD_ENCODING')
  const bad = canonicalize('GET', '/a%\r\n')
  assert.ok(bad.kind === 'rejected')
  assert.equal(bad.code, 'PATH_BAD_ENCODING')
  assert.ok(!/[\r\n]/.test(bad.reason), bad.reason)
})

test('reason names the segment of a dot segment', () => {
  const got = canonicalize('GET', '/api/v4/%2e%2e')
  assert.deepEqual(got, { kind: 'rejected', code: 'PATH_DOT_SEGMENT', reason: "path segment 3 is a dot segment ('%2e%2e')" })
})

const badOptions: Array<{ name: string, options: CanonicalOptions, option: string }> = [
  { name: 'root without leading slash', options: { relativeUrlRoot: 'gitlab' }, option: 'relativeUrlRoot' },
  { name: 'root with trailing slash', options: { relativeUrlRoot: '/gitlab/' }, option: 'relativeUrlRoot' },
  { name: 'root that is just /', options: { relativeUrlRoot: '/' }, option: 'relativeUrlRoot' },
  { name: 'root with //', options: { relativeUrlRoot: '/a//b' }, option: 'relativeUrlRoot' },
  { name: 'root with dot segment', options: { relativeUrlRoot: '/a/..' }, option: 'relativeUrlRoot' },
  { name: 'root with query', options: { relativeUrlRoot: '/a?b' }, option: 'relativeUrlRoot' },
  { name: 'root not a string', options: { relativeUrlRoot: 5 as unknown as string }, option: 'relativeUrlRoot' },
  { name: 'root segment longer than maxSegmentLength', options: { relativeUrlRoot: '/gitlab', maxSegmentLength: 5 }, option: 'relativeUrlRoot' },
  { name: 'root with needless escape', options: { relativeUrlRoot: '/%67itlab' }, option: 'relativeUrlRoot' },
  { name: 'maxPathLength 0', options: { maxPathLength: 0 }, option: 'maxPathLength' },
  { name: 'maxPathLength negative', options: { maxPathLength: -1 }, option: 'maxPathLength' },
  { name: 'maxPathLength fractional', options: { maxPathLength: 1.5 }, option: 'maxPathLength' },
  { name: 'maxPathLength NaN', options: { maxPathLength: Number.NaN }, option: 'maxPathLength' },
  { name: 'maxSegmentLength Infinity', options: { maxSegmentLength: Infinity }, option: 'maxSegmentLength' },
  { name: 'maxSegmentLength string', options: { maxSegmentLength: '10' as unknown as number }, option: 'maxSegmentLength' }
]
for (const c of badOptions) {
  test(`createCanonicalizer rejects ${c.name}`, () => {
    assert.throws(() => createCanonicalizer(c.options), (err: unknown) => err instanceof TypeError && err.message.includes(c.option))
    assert.throws(() => canonicalize('GET', '/api/v4/x', c.options), TypeError)
  })
}

test('createCanonicalizer binds options', () => {
  const canon = createCanonicalizer({ relativeUrlRoot: '/gitlab', maxSegmentLength: 6 })
  assert.deepEqual(canon('head', '/gitlab/api/v4/abcdef?x'), { kind: 'api', method: 'GET', path: '/gitlab/api/v4/abcdef', apiPath: '/abcdef', query: 'x' })
  assert.deepEqual(canon('GET', '/api/v4/abc'), { kind: 'other', method: 'GET', path: '/api/v4/abc', query: '' })
  const long = canon('GET', '/gitlab/api/v4/abcdefg')
  assert.ok(long.kind === 'rejected' && long.code === 'SEGMENT_TOO_LONG', JSON.stringify(long))
  const plain = createCanonicalizer()
  assert.deepEqual(plain('GET', '/api/v4/x'), canonicalize('GET', '/api/v4/x'))
})

// ---------------------------------------------------------------------------------------------
// Property test: random targets from a hostile alphabet.


const ALPHABET = ['%', '/', '.', '2', 'e', 'F', 'a', 'f', '5', 'C', '0', 'E', '@', '?', '%2F', '%2e', '..', '%25']

test('property: random targets never throw; accepted paths are canonical, traversal-free, idempotent, and both code paths agree', () => {
  const random = mulberry32(0x5eed)
  let accepted = 0
  let apiCount = 0
  for (let n = 0; n < 5000; n++) {
    const prefix = random() < 0.5 ? '/api/v4/' : '/'
    const size = 1 + Math.floor(random() * 16)
    let target = prefix
    for (let k = 0; k < size; k++) target += ALPHABET[Math.floor(random() * ALPHABET.length)]
    let got: CanonicalRequest
    try {
      got = canonicalize('GET', target)
    } catch (err) {
      assert.fail(`canonicalize threw for ${JSON.stringify(target)}: ${String(err)}`)
    }
    // A leading '//' forces the rebuild path; it must agree with the hot path on every target.
    const rebuilt = canonicalize('GET', '/' + target)
    if (got.kind === 'rejected') {
      assert.ok(rebuilt.kind === 'rejected' && rebuilt.code === got.code, `${JSON.stringify(target)}: ${got.code} vs ${JSON.stringify(rebuilt)}`)
      continue
    }
    assert.deepEqual(rebuilt, got, JSON.stringify(target))
    accepted++
    if (got.kind === 'api') apiCount++
    const path = got.path
    const ctx = `${JSON.stringify(target)} -> ${JSON.stringify(path)}`
    assert.ok(path.startsWith('/'), ctx)
    assert.ok(!path.includes('//'), ctx)
    assert.ok(path === '/' || !path.endsWith('/'), ctx)
    assert.ok(!path.includes('?'), ctx)
    const segments = path.split('/').slice(1)
    for (const seg of segments) {
      assert.ok(seg !== '.' && seg !== '..', ctx)
      // A parameter decoded once never carries a traversal.
      const decoded = decodeParam(seg)
      for (const part of decoded.split('/')) assert.ok(part !== '.' && part !== '..', ctx)
    }
    if (got.kind === 'api') {
      assert.ok(path === '/api/v4' || path.startsWith('/api/v4/'), ctx)
      assert.equal('/api/v4' + (got.apiPath === '/' ? '' : got.apiPath), path, ctx)
    }
    const again = canonicalize('GET', path + (got.query === '' ? '' : '?' + got.query))
    assert.deepEqual(again, got, ctx)
  }
  // The generator must actually exercise both outcomes.
  assert.ok(accepted > 500, `only ${accepted} accepted`)
  assert.ok(apiCount > 250, `only ${apiCount} api`)
})

test('apiPathsIn: the API path after each /api/v4 segments of a path', () => {
  assert.deepEqual(apiPathsIn('/gitlab/api/v4/x/api/v4/projects/1'), ['/x/api/v4/projects/1', '/projects/1'])
  assert.deepEqual(apiPathsIn('/gitlab/api/v4'), ['/'])
  assert.deepEqual(apiPathsIn('/gitlab/api/v45/projects/1'), [])
  assert.deepEqual(apiPathsIn('/groups/acme'), [])
})
