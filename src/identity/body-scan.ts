// Credentials in request bodies: GitLab reads `job_token=`/`token=` as Rails params, so from form,
// multipart and JSON bodies too (lib/gitlab/auth/auth_finders.rb, find_user_from_job_token).
//
// What GitLab reads parameters from, and so what is inspected here:
// - `application/x-www-form-urlencoded`, and a POST body with no Content-Type at all (Rack's
//   form_data? parses a type-less POST, and only a POST, as a form): buffered and parsed;
// - a POST, PUT, PATCH or DELETE body with no Content-Type that starts as a JSON object would
//   (`{`, or `/` of a comment, after white space): also read as JSON. Grape parses such a body
//   with the API's default format, and GitLab's NuGet, PyPI, Composer, Cargo, Terraform state
//   and MLflow APIs declare `default_format :json`, so its members are parameters there. Any
//   other type-less body gives Grape no parameters (and Rack none but a POST's form): it streams
//   on untouched, as `curl --upload-file` sends one;
// - JSON (`application/json`, `text/x-json`, `application/jsonrequest`, `*/*+json`): buffered,
//   parsed, top-level members read (Grape merges those into params), repeated keys included,
//   when its declared length is within the limit; otherwise (larger, or chunked) streamed through
//   createJsonGuard (json-guard.ts), which reads it with the same rules;
// - `multipart/*` (Rack parses every multipart subtype): buffered and parsed when its declared
//   length is within the limit, so a `curl --form token=$CI_JOB_TOKEN` trigger call is enforced
//   like a header; otherwise streamed through createMultipartGuard (multipart.ts). A type that
//   Workhorse's Go reads as multipart and Rack does not is refused (goReadsMultipart);
// Every other type is forwarded uninspected: GitLab reads no parameters from it.
//
// Form bodies over the limit are refused (413) rather than forwarded unread, and so are
// encoded (gzip...) ones, which would need inflating to inspect, except the gzip JSON that
// GitLab's Rails middleware inflates itself (npm's audits: inflatesGzipJson). The bytes
// forwarded are the bytes received: inspection works on the buffer and never rewrites it.

import type { IncomingHttpHeaders } from 'node:http'
import { PassThrough, type Readable, type Transform } from 'node:stream'
import { gunzipSync } from 'node:zlib'
import type { CatalogRoute } from '../catalog/types.ts'
import type { ErrorCode } from '../errors.ts'
import { type Credential, hexDigit, isMethodOverrideParam, type MethodParam, normalizeParamName, paramCredential, paramCredentials, queryPairs } from './credentials.ts'
import { BodyBudgetExhausted, readUpTo, type BodyBudget } from '../read-body.ts'
import { trimEnds } from '../text.ts'
import { createJsonGuard, DEFAULT_MAX_JSON_DEPTH, looksLikeJsonObject, nestsDeeperThan } from './json-guard.ts'
import { createMultipartGuard, DEFAULT_MAX_PART_HEADER_BYTES, scanMultipart } from './multipart.ts'
import { goParseMediaType } from './go-mime.ts'
import { IdentityError } from './types.ts'

export const DEFAULT_MAX_INSPECTED_BODY_BYTES = 64 * 1024

export interface BodyScanOptions {
  /** Largest body buffered for inspection (form, JSON, multipart of declared length). Default 64 KiB. */
  readonly maxBytes?: number
  /** Longest multipart part header block inspected. Default 16 KiB. */
  readonly maxPartHeaderBytes?: number
  /** The gate's bound on body bytes held while clients send them (read-body.ts); none by default. */
  readonly budget?: BodyBudget
}

export type BodyType = 'form' | 'json' | 'multipart'

export type BodyPlan =
  /** No body, or a type GitLab reads no parameters from: forward the request stream as is. */
  | { readonly kind: 'pass' }
  /**
   * Read the whole body (at most maxBytes) and inspect it. `untyped`: no Content-Type; a form
   * (a POST's) is also read as JSON when it starts as a JSON object (json-guard.ts's looksLikeJsonObject).
   */
  | { readonly kind: 'buffer', readonly type: BodyType, readonly boundary?: string, readonly untyped?: boolean, readonly gzip?: true, readonly refuseOperations?: true }
  /**
   * Multipart of unknown or large length: pipe it through guard(plan, token). `refuseOperations`
   * (on API paths, as for a buffered multipart body): a part Rack could read as `operations` is
   * refused, UPLOAD_OPERATIONS_PARAMETER (credentials.ts, uploadOperationsReachable).
   */
  | { readonly kind: 'stream', readonly type?: 'multipart', readonly boundary: string, readonly refuseOperations?: true }
  /**
   * JSON of unknown or large length: pipe it through guard(plan, token). `readFirst` (no declared
   * length): readFirst() it, so a body that ends within maxBytes is inspected whole, as a declared
   * one would be, and only a longer one streams. `untyped` (no Content-Type): streamed, guarded
   * as JSON only when its first bytes start a JSON object; any other body passes uninspected.
   * `lenient` (untyped, on a route whose API does not parse it: readsUntypedJson): one that turns
   * out not to be JSON passes on unread (json-guard.ts).
   */
  | { readonly kind: 'stream', readonly type: 'json', readonly readFirst?: boolean, readonly untyped?: boolean, readonly lenient?: boolean }
  | { readonly kind: 'rejected', readonly code: ErrorCode }

export type BodyInspection =
  /** `methodParam`: the body's `_method` as Rack reads it, for a form or multipart body (Rack::MethodOverride). */
  | { readonly kind: 'buffered', readonly bytes: Buffer, readonly credentials: Credential[], readonly methodParam: MethodParam }
  | { readonly kind: 'rejected', readonly code: ErrorCode }

export interface BodyScanner {
  /**
   * Decides from the method and headers alone how the body is handled. A body without a
   * Content-Type is form data only for POST (Rack's form_data?), so `curl --upload-file` PUTs
   * stream through untouched. `inflated`: the route is one whose gzip JSON GitLab inflates
   * before reading it (inflatesGzipJson): such a body is inflated and inspected, not refused.
   */
  plan (headers: IncomingHttpHeaders, method?: string, inflated?: boolean): BodyPlan
  /**
   * Reads and inspects a body planned as 'buffer'. On 'rejected' for size the stream is left
   * paused and partly read: answer and close the connection.
   */
  read (plan: Extract<BodyPlan, { kind: 'buffer' }>, body: Readable): Promise<BodyInspection>
  /**
   * For a JSON plan with `readFirst`: reads up to maxBytes. A body that ended is inspected as read()
   * would; a longer one comes back as a stream replaying what was read, then the rest.
   */
  readFirst (body: Readable): Promise<BodyInspection | { readonly kind: 'longer', readonly stream: Readable }>
  /**
   * The streaming guard for a body planned as 'stream': multipart (multipart.ts) or JSON
   * (json-guard.ts). With refuseMethodOverride the multipart guard also fails at a part Rack
   * could read as `_method`; Rack::MethodOverride reads no JSON body, so a JSON guard need not.
   */
  guard (plan: StreamPlan, allowedToken?: string, refuseAnyCredential?: boolean, refuseMethodOverride?: boolean): Transform
}

export type StreamPlan = Extract<BodyPlan, { kind: 'stream' }>

export function createBodyScanner (options: BodyScanOptions = {}): BodyScanner {
  const maxBytes = positive('maxBytes', options.maxBytes, DEFAULT_MAX_INSPECTED_BODY_BYTES)
  const maxPartHeaderBytes = positive('maxPartHeaderBytes', options.maxPartHeaderBytes, DEFAULT_MAX_PART_HEADER_BYTES)

  return {
    plan (headers, method = 'POST', inflated = false) {
      return planBody(headers, method, maxBytes, inflated)
    },

    async read (plan, body) {
      // A longer body is left paused and partly read: the answer closes the connection.
      const read = await readWithin(body)
      if (read === null) return { kind: 'rejected', code: 'BODY_BUDGET_EXHAUSTED' }
      if (!read.complete) return { kind: 'rejected', code: 'BODY_TOO_LARGE_TO_INSPECT' }
      const bytes = Buffer.concat(read.chunks, read.size)
      if (plan.gzip !== true) return inspectRead(plan, bytes)
      const inflated = inflate(bytes)
      if (typeof inflated === 'string') return { kind: 'rejected', code: inflated }
      // Inspected as GitLab reads it, forwarded as received: GitLab inflates it itself.
      const inspected = inspectRead(plan, inflated)
      return inspected.kind === 'buffered' ? { ...inspected, bytes } : inspected
    },

    async readFirst (body) {
      const head = await readWithin(body)
      if (head === null) return { kind: 'rejected', code: 'BODY_BUDGET_EXHAUSTED' }
      if (head.complete) return inspectRead({ kind: 'buffer', type: 'json' }, Buffer.concat(head.chunks, head.size))
      // What was read, then the rest: the guard sees every byte in order.
      const replay = new PassThrough()
      for (const chunk of head.chunks) replay.write(chunk)
      body.on('error', err => replay.destroy(err))
      body.pipe(replay)
      return { kind: 'longer', stream: replay }
    },

    guard (plan, allowedToken, refuseAnyCredential = false, refuseMethodOverride = false) {
      if (plan.type === 'json') return createJsonGuard({ allowedToken, refuseAnyCredential, untyped: plan.untyped === true, lenient: plan.lenient === true })
      return createMultipartGuard({ boundary: plan.boundary, allowedToken, refuseAnyCredential, refuseMethodOverride, refuseOperations: plan.refuseOperations === true, maxHeaderBytes: maxPartHeaderBytes })
    }
  }

  /** The body up to the limit; null past the budget. */
  async function readWithin (body: Readable): Promise<Awaited<ReturnType<typeof readUpTo>> | null> {
    try {
      return await readUpTo(body, maxBytes, options.budget)
    } catch (err) {
      if (err instanceof BodyBudgetExhausted) return null
      throw err
    }
  }

  function inspectRead (plan: Extract<BodyPlan, { kind: 'buffer' }>, bytes: Buffer): BodyInspection {
    try {
      return { kind: 'buffered', bytes, ...inspectBody(plan.type, bytes, plan.boundary ?? '', maxPartHeaderBytes, plan.untyped === true, plan.refuseOperations === true) }
    } catch (err) {
      if (err instanceof IdentityError) return { kind: 'rejected', code: err.code }
      return { kind: 'rejected', code: 'BODY_NOT_PARSEABLE' }
    }
  }
}

/** The credentials of a whole body of a known type. Throws on a body that does not parse or (JSON_TOO_DEEP) nests deeper than the JSON guard reads. */
export function bodyCredentials (type: BodyType, bytes: Buffer, boundary = '', maxPartHeaderBytes = DEFAULT_MAX_PART_HEADER_BYTES): Credential[] {
  return inspectBody(type, bytes, boundary, maxPartHeaderBytes).credentials
}

/**
 * The credentials and the `_method` of a whole body of a known type. Throws on a body that does
 * not parse. `untyped`: sent without a Content-Type, read as JSON too when it starts as a JSON
 * object (then it must parse), and not read as JSON otherwise. `refuseOperations`: a multipart
 * part Rack could read as `operations` throws (UPLOAD_OPERATIONS_PARAMETER).
 */
export function inspectBody (type: BodyType, bytes: Buffer, boundary = '', maxPartHeaderBytes = DEFAULT_MAX_PART_HEADER_BYTES, untyped = false, refuseOperations = false): { credentials: Credential[], methodParam: MethodParam } {
  switch (type) {
    case 'form': return { credentials: untyped && looksLikeJsonObject(bytes) ? [...formCredentials(bytes), ...jsonCredentials(bytes)] : formCredentials(bytes), methodParam: formMethodParam(bytes) }
    case 'json': return { credentials: jsonCredentials(bytes), methodParam: { kind: 'absent' } }
    case 'multipart': return scanMultipart(bytes, boundary, maxPartHeaderBytes, refuseOperations)
  }
}

/**
 * The names of the top-level parameters Grape takes from a whole body of a known type: a form's
 * as Rack reads them (`[id]`, `id[]` are `id`), a JSON object's members as they are (Grape merges
 * the object into params). Null where the gate does not read them (multipart) or cannot (a body
 * that does not parse): whoever needs them must then take any name as possible.
 */
export function bodyParamNames (type: BodyType, bytes: Buffer, untyped = false): ReadonlySet<string> | null {
  try {
    switch (type) {
      case 'form': {
        const names = new Set<string>()
        for (const [key] of queryPairs(withoutTrailingNul(bytes).toString('utf8'))) names.add(normalizeParamName(key))
        if (untyped && looksLikeJsonObject(bytes)) for (const name of jsonMemberNames(bytes)) names.add(name)
        return names
      }
      case 'json': return new Set(jsonMemberNames(bytes))
      case 'multipart': return null
    }
  } catch {
    return null
  }
}

/** The top-level member names of a JSON object body, repeats included; throws when it is not JSON. */
function jsonMemberNames (bytes: Buffer): string[] {
  const text = bytes.toString('utf8')
  if (text.trim() === '') return []
  const parsed: unknown = JSON.parse(text)
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return []
  return topLevelMembers(text).map(([key]) => key)
}

export function formCredentials (bytes: Buffer): Credential[] {
  const found: Credential[] = []
  for (const [key, value] of queryPairs(withoutTrailingNul(bytes).toString('utf8'))) {
    const c = paramCredential(key, value, 'body')
    if (c !== null) found.push(c)
  }
  return found
}

/**
 * Rack's media type (Rack::MediaType.type): null without a Content-Type or with an empty one,
 * else the text before the first ';' or ',' less the white space before it, lower-cased. Ruby's
 * `\s` is ASCII and Node leaves only spaces and tabs inside a header value: a no-break space
 * (0xA0, which String#trim drops) stays part of the type, as it does for Rack, which then
 * parses no body (`; charset=utf-8` is the type "", not none: no body either).
 */
export function rackMediaType (contentType: string | undefined): string | null {
  if (contentType === undefined || contentType === '') return null
  return trimEnds(contentType.split(/[;,]/, 1)[0]!, ' \t').toLowerCase()
}

/**
 * True when Rack::Request#POST parses this body, so that Rack::MethodOverride can find `_method`
 * in it: form_data? (a form, multipart/form-data, or no type at all on a POST) or
 * parseable_data? (multipart/related, multipart/mixed); or Workhorse reads it as multipart and
 * hands Rails the parts as multipart/form-data (goReadsMultipart).
 */
export function rackReadsPostBody (contentType: string | undefined, method: string): boolean {
  const media = rackMediaType(contentType)
  if (media === null) return method === 'POST'
  return RACK_POST_TYPES.has(media) || goReadsMultipart(contentType!)
}

/**
 * True when ActionDispatch::Request#params holds this body's members, on any method: Rails parses
 * a JSON body into parameters (GitLab's config/initializers/mime_types.rb registers
 * application/json and application/vnd.git-lfs+json; every JSON type is taken here).
 */
export function railsReadsJsonBody (contentType: string | undefined): boolean {
  const media = rackMediaType(contentType)
  return media !== null && isJsonMedia(media)
}

/** A media type (rackMediaType) the gate reads a body of as JSON. */
function isJsonMedia (media: string): boolean {
  return JSON_TYPES.has(media) || media.endsWith('+json')
}

/**
 * `_method` as Rack::Request#POST reads it from a form body (`parse_nested_query(body, '&')`).
 * Where Rack raises (a bad escape, too many parameters) MethodOverride falls back to the header:
 * absent. A body whose names Rack nests could raise on a conflict, or be read otherwise by Rack 3:
 * uncertain. Without any reading of a `_method` name (split on ';' too, decoded or not): absent.
 */
export function formMethodParam (bytes: Buffer): MethodParam {
  const text = withoutTrailingNul(bytes).toString('latin1')
  // Hot for every form body: a name that reads as `_method` holds `method` or an escape.
  if (!/method|%/.test(text)) return { kind: 'absent' }
  const named = text.split(/[&;]/).some(piece => {
    const eq = piece.indexOf('=')
    const key = eq === -1 ? piece : piece.slice(0, eq)
    return isMethodOverrideParam(key) || (/[%+]/.test(key) && isMethodOverrideParam(formLatin1(key)))
  })
  if (!named) return { kind: 'absent' }
  if (/%(?![0-9a-fA-F]{2})/.test(text) || text.split('&').length > RACK_PARAMS_LIMIT) return { kind: 'absent' }
  let value: string | null = null
  for (const piece of text.split(/& */)) {
    const eq = piece.indexOf('=')
    const key = formLatin1(eq === -1 ? piece : piece.slice(0, eq))
    if (/[[\]]/.test(key)) return { kind: 'uncertain' }
    // Rack keeps the last; a name without '=' is nil, which MethodOverride passes over.
    if (key === '_method') value = eq === -1 ? null : formBytes(piece.slice(eq + 1)).toString('utf8')
  }
  return value === null ? { kind: 'absent' } : { kind: 'present', value }
}

/**
 * The routes whose gzip JSON body GitLab's Rails middleware inflates before anything reads its
 * parameters (Gitlab::Middleware::CompressedJson: npm's audit endpoints, which `npm audit` and
 * `npm install` send compressed), up to INFLATED_MAX_BYTES (GitLab answers 413 beyond).
 */
export function inflatesGzipJson (route: CatalogRoute): boolean {
  return route.method === 'POST' && NPM_AUDITS.test(route.pattern)
}
const NPM_AUDITS = /\/packages\/npm\/-\/npm\/v1\/security\/(?:advisories\/bulk|audits\/quick)$/
/** Gitlab::Middleware::CompressedJson::MAXIMUM_BODY_SIZE. */
const INFLATED_MAX_BYTES = 200 * 1024

/**
 * A gzip body inflated, at most INFLATED_MAX_BYTES, or why not. Every member is read, where
 * GitLab's Zlib::GzipReader reads the first: more bytes can only make the JSON fail to parse or
 * show more credentials, never fewer.
 */
function inflate (bytes: Buffer): Buffer | ErrorCode {
  try {
    return gunzipSync(bytes, { maxOutputLength: INFLATED_MAX_BYTES })
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE' ? 'BODY_TOO_LARGE_TO_INSPECT' : 'BODY_ENCODING_NOT_INSPECTABLE'
  }
}

/** A Content-Encoding other than identity: neither the gate nor GitLab's parsers read through it. */
function encoded (headers: IncomingHttpHeaders): boolean {
  const encoding = headers['content-encoding']
  return encoding !== undefined && encoding.trim().toLowerCase() !== 'identity'
}

/** Top-level members of a JSON object body; throws SyntaxError when it is not JSON. */
export function jsonCredentials (bytes: Buffer): Credential[] {
  const text = bytes.toString('utf8')
  if (text.trim() === '') return []
  const parsed: unknown = JSON.parse(text)
  if (nestsDeeperThan(text)) throw new IdentityError('JSON_TOO_DEEP', `JSON body nested deeper than ${DEFAULT_MAX_JSON_DEPTH} levels`)
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return []
  const found: Credential[] = []
  // JSON.parse keeps the last of repeated keys; another parser may keep the first: read them all.
  for (const [key, raw] of topLevelMembers(text)) {
    const credentialOf = paramCredentials(key, 'body')
    for (const value of credentialTexts(JSON.parse(raw))) {
      const c = credentialOf(value)
      if (c !== null) found.push(c)
    }
  }
  return found
}

/**
 * Whether the route's API parses a PUT, PATCH or DELETE body sent without a Content-Type as JSON:
 * the APIs that declare Grape's `default_format :json` (NuGet, PyPI, Composer, Cargo, Terraform
 * state), whose members are then parameters. Elsewhere Grape reads none from it: it refuses it
 * (415), or Workhorse has taken it as the upload.
 */
export function parsesUntypedJson (route: CatalogRoute): boolean {
  return UNTYPED_JSON_FORMATS.has(route.packageFormat ?? '') || route.pattern.startsWith('/projects/:id/terraform/state')
}
const UNTYPED_JSON_FORMATS: ReadonlySet<string> = new Set(['nuget', 'pypi', 'composer', 'cargo'])

/**
 * Whether GitLab may read a credential from such a body on the route: where its API parses it,
 * and the route does not declare `authenticate_with` (whose credentials are read from the headers
 * and the query string only, Gitlab::APIAuthentication::TokenLocator).
 */
export function readsUntypedJson (route: CatalogRoute): boolean {
  return route.authenticateWith !== true && parsesUntypedJson(route)
}

// ---------------------------------------------------------------------------------------------

const JSON_TYPES = new Set(['application/json', 'text/x-json', 'application/jsonrequest'])
/** The methods whose bodies Grape reads (Grape::Middleware::Formatter#read_body_input?). */
const GRAPE_BODY_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE'])
/** Rack::Request's FORM_DATA_MEDIA_TYPES and PARSEABLE_DATA_MEDIA_TYPES. */
const RACK_POST_TYPES = new Set(['application/x-www-form-urlencoded', 'multipart/form-data', 'multipart/related', 'multipart/mixed'])
/** Rack's QueryParser params limit (rack/query_parser.rb, PARAMS_LIMIT): more raises. */
const RACK_PARAMS_LIMIT = 4096
/** Visible ASCII, spaces and tabs. */
const PLAIN_ASCII = /^[\t\x20-\x7e]*$/
/** RFC 2046 bchars without space and ',' (which parsers split on), 1 to 70 of them. */
const BOUNDARY_CHARS = /^[A-Za-z0-9'()+_\-./:=?]{1,70}$/

function planBody (headers: IncomingHttpHeaders, method: string, maxBytes: number, inflated: boolean): BodyPlan {
  const length = headers['content-length']
  const declared = length === undefined ? null : Number(length)
  if (headers['transfer-encoding'] === undefined && (declared === null || declared === 0)) return { kind: 'pass' }

  const contentType = headers['content-type'] ?? ''
  const media = rackMediaType(contentType) ?? ''
  const upper = method.toUpperCase()
  const untyped = contentType === ''
  let type: BodyType
  if ((untyped && upper === 'POST') || media === 'application/x-www-form-urlencoded') type = 'form'
  else if (isJsonMedia(media)) type = 'json'
  else if (media.startsWith('multipart/')) type = 'multipart'
  // A type Workhorse reads as multipart and Rack does not: Workhorse hands Rails its parts again
  // under a Content-Type of its own, so Rails reads what the gate would have passed unread.
  else if (goReadsMultipart(contentType)) return { kind: 'rejected', code: 'MULTIPART_BAD_BOUNDARY' }
  // Decided from the headers and streamed, as a `curl --upload-file` body always was. Whatever
  // its Content-Encoding: Grape parses the bytes as they came (only CompressedJson's routes are
  // inflated, and those are typed), so a gzip upload passes as no JSON and plain JSON is read.
  else if (untyped && GRAPE_BODY_METHODS.has(upper)) return { kind: 'stream', type: 'json', untyped: true }
  else return { kind: 'pass' }

  if (encoded(headers)) {
    // GitLab inflates a POST's `Content-Encoding: gzip` JSON on these routes (CompressedJson).
    if (inflated && upper === 'POST' && type === 'json' && headers['content-encoding'] === 'gzip') return { kind: 'buffer', type, gzip: true }
    return { kind: 'rejected', code: 'BODY_ENCODING_NOT_INSPECTABLE' }
  }

  if (type === 'form') {
    if (declared !== null && declared > maxBytes) return { kind: 'rejected', code: 'BODY_TOO_LARGE_TO_INSPECT' }
    return untyped ? { kind: 'buffer', type, untyped } : { kind: 'buffer', type }
  }
  if (type === 'json') {
    if (declared !== null && headers['transfer-encoding'] === undefined && declared <= maxBytes) return { kind: 'buffer', type }
    return declared === null || headers['transfer-encoding'] !== undefined ? { kind: 'stream', type, readFirst: true } : { kind: 'stream', type }
  }
  const boundary = parseMultipartBoundary(contentType)
  if (boundary === null) return { kind: 'rejected', code: 'MULTIPART_BAD_BOUNDARY' }
  if (declared !== null && headers['transfer-encoding'] === undefined && declared <= maxBytes) return { kind: 'buffer', type, boundary }
  return { kind: 'stream', boundary }
}

/**
 * The boundary of a multipart Content-Type, or null when parsers could read it differently:
 * Rack finds it with `/\Amultipart\/.*?boundary(\s*)=\"?([^\";,]+)\"?/ni` (older releases:
 * greedy, the LAST `boundary=`, even inside `xboundary=`), Go with a strict parameter parser. So
 * exactly one `boundary=` is allowed, as a real parameter, with characters both read the same
 * way, and nothing Rack reads otherwise than the gate: white space after the `=` is part of
 * Rack's boundary (`boundary= abc` is " abc"), white space before it a boundary Rack 2.2 now
 * refuses and older releases did not find (reading the body as a form), and a byte outside ASCII
 * is not white space to Ruby's `\s` as a no-break space is to JavaScript's.
 */
export function parseMultipartBoundary (contentType: string): string | null {
  if (!PLAIN_ASCII.test(contentType)) return null
  if ((contentType.match(/boundary\s*=/gi) ?? []).length !== 1) return null
  // `;`, spaces, `boundary=` then a quoted value or a token, white space, and the end or `;` and
  // anything: read step by step (as one expression it backtracked quadratically over white
  // space after the value, 114 ms for a 16 KiB header).
  const head = /;[ \t]*boundary=/i.exec(contentType)
  if (head === null) return null
  let rest = contentType.slice(head.index + head[0].length)
  let value: string
  if (rest.startsWith('"')) {
    const close = rest.indexOf('"', 1)
    if (close === -1) return null
    value = rest.slice(1, close)
    rest = rest.slice(close + 1)
  } else {
    value = /^[^\s;,"]*/.exec(rest)![0]
    rest = rest.slice(value.length)
  }
  const after = rest.trimStart()
  if (after !== '' && !after.startsWith(';')) return null
  if (!BOUNDARY_CHARS.test(value)) return null
  // Go's mime.ParseMediaType, which Workhorse reads its upload routes' bodies with (writing the
  // parts again for Rails under a boundary of its own), takes an RFC 2231 `boundary*=` or
  // `boundary*0=` over `boundary=`: another boundary there frames other parts.
  const go = goParseMediaType(contentType)
  if (go !== null && go.params.has('boundary') && go.params.get('boundary') !== value) return null
  return value
}

/**
 * Whether Workhorse reads the body as multipart on its upload routes: net/http's
 * MultipartReader() does where Go's mime.ParseMediaType of the Content-Type gives
 * `multipart/form-data` or `multipart/mixed`. Go trims Unicode white space around the type (a
 * no-break space sent as C2 A0, U+3000...) and lowers it rune by rune (`MULT\u0130PART` is
 * `multipart`); Rack trims ASCII white space and lowers ASCII letters only.
 */
export function goReadsMultipart (contentType: string): boolean {
  // The letters of `part` are ASCII in any spelling Go lowers to `multipart/...` (only U+0130 and
  // U+212A become ASCII, `i` and `k`): a JSON or octet-stream upload's type is not parsed.
  if (!MAY_BE_MULTIPART.test(contentType)) return false
  const go = goParseMediaType(contentType)
  return go !== null && (go.type === 'multipart/form-data' || go.type === 'multipart/mixed')
}

const MAY_BE_MULTIPART = /part/i

/** Rack drops one trailing NUL from a form body (rack/request.rb, "Safari Ajax postings"). */
function withoutTrailingNul (bytes: Buffer): Buffer {
  return bytes.length > 0 && bytes[bytes.length - 1] === 0 ? bytes.subarray(0, -1) : bytes
}

/** A form component's bytes, decoded once as Rack does ('+' is a space); `text` is latin1. */
function formBytes (text: string): Buffer {
  // In place, without a regular expression per byte: a 64 KiB form of escapes is read in well under a millisecond.
  const bytes = Buffer.from(text, 'latin1')
  let w = 0
  for (let i = 0; i < bytes.length; i++) {
    let b = bytes[i]!
    if (b === 0x2b) {
      b = 0x20
    } else if (b === 0x25 && i + 2 < bytes.length) {
      const hi = hexDigit(bytes[i + 1]!)
      const lo = hexDigit(bytes[i + 2]!)
      if (hi >= 0 && lo >= 0) {
        b = hi * 16 + lo
        i += 2
      }
    }
    bytes[w++] = b
  }
  return bytes.subarray(0, w)
}

/** formBytes as a latin1 string, without a Buffer: cheap for the many short names of a form. */
function formLatin1 (text: string): string {
  let out = ''
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c === 0x2b) {
      out += ' '
      continue
    }
    if (c === 0x25 && i + 2 < text.length) {
      const hi = hexDigit(text.charCodeAt(i + 1))
      const lo = hexDigit(text.charCodeAt(i + 2))
      if (hi >= 0 && lo >= 0) {
        out += String.fromCharCode(hi * 16 + lo)
        i += 2
        continue
      }
    }
    out += text[i]
  }
  return out
}

function positive (name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback
  if (!Number.isSafeInteger(value) || value <= 0) throw new TypeError(`${name} must be a positive integer, got ${String(value)}`)
  return value
}

/**
 * The texts a JSON credential value holds: none when blank (`.presence`), the value itself, or
 * every leaf of an array or object (`{"job_token": ["glcbt-..."]}`, as `job_token[]=` in a form).
 */
function credentialTexts (value: unknown): string[] {
  // Iterative: a body nested thousands of levels deep must not overflow the stack.
  const out: string[] = []
  const pending: unknown[] = [value]
  while (pending.length > 0) {
    const v = pending.pop()
    if (v === null || v === false || v === '') continue
    if (Array.isArray(v)) for (let i = v.length - 1; i >= 0; i--) pending.push(v[i])
    else if (typeof v === 'object') {
      const values = Object.values(v as object)
      for (let i = values.length - 1; i >= 0; i--) pending.push(values[i])
    }
    else out.push(String(v))
  }
  return out
}

/** [key, raw value text] of each member of a top-level JSON object, repeats included. Input is valid JSON. */
function topLevelMembers (text: string): Array<[string, string]> {
  const out: Array<[string, string]> = []
  let i = skipWs(text, 0)
  if (text[i] !== '{') return out
  i = skipWs(text, i + 1)
  while (text[i] === '"') {
    const keyEnd = stringEnd(text, i)
    const key = JSON.parse(text.slice(i, keyEnd)) as string
    i = skipWs(text, skipWs(text, keyEnd) + 1) // past ':'
    const valueEnd = jsonValueEnd(text, i)
    out.push([key, text.slice(i, valueEnd)])
    i = skipWs(text, valueEnd)
    if (text[i] !== ',') break
    i = skipWs(text, i + 1)
  }
  return out
}

function skipWs (t: string, i: number): number {
  while (i < t.length && (t[i] === ' ' || t[i] === '\t' || t[i] === '\n' || t[i] === '\r')) i++
  return i
}

/** Index after the closing quote of the string starting at i. */
function stringEnd (t: string, i: number): number {
  let j = i + 1
  while (j < t.length && t[j] !== '"') j += t[j] === '\\' ? 2 : 1
  return j + 1
}

function jsonValueEnd (t: string, i: number): number {
  const c = t[i]
  if (c === '"') return stringEnd(t, i)
  if (c === '{' || c === '[') {
    let depth = 0
    let j = i
    while (j < t.length) {
      const d = t[j]
      if (d === '"') { j = stringEnd(t, j); continue }
      if (d === '{' || d === '[') depth++
      else if (d === '}' || d === ']') {
        depth--
        if (depth === 0) return j + 1
      }
      j++
    }
    return j
  }
  let j = i
  while (j < t.length && t[j] !== ',' && t[j] !== '}' && t[j] !== ']' && t[j] !== ' ' && t[j] !== '\n' && t[j] !== '\r' && t[j] !== '\t') j++
  return j
}
