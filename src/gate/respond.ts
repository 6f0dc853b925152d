// The one writer of the gate's own JSON answers: denies and failures of the proxy, the
// forward-auth endpoint and the configuration API, their successful answers, and the health
// checks. An error answer is GitLab's API body (`message`) plus the gate's stable `code`, the
// fields at fault when there are any, and the request id, so a 5xx can be traced to its log line.
// Every error's status comes from the errors table (src/errors.ts), through a code, a deny of
// the pipeline or a GateError.

import { STATUS_CODES, type ServerResponse } from 'node:http'
import { errorBody, errors, GateError, type ErrorCode } from '../errors.ts'
import type { Deny } from './pipeline.ts'

/** A JSON answer that is not an error of the table; `body` undefined answers no body (204). */
export interface JsonAnswer {
  readonly kind: 'json'
  readonly status: number
  readonly body: unknown
  readonly headers?: Readonly<Record<string, string>>
}

export type Answer = Deny | JsonAnswer | ErrorCode | GateError

/**
 * Cache-Control as Rails' Rack::ETag sets it on every answer of GitLab's API: an error may not be
 * reused unchecked, an answer is for its caller only. The gate answers GitLab's own paths (the
 * configuration API, denies): without it a shared cache in front (an nginx `proxy_cache_valid`,
 * a CDN's default TTL) kept a Maintainer's allowlist and served it to anyone asking that URL.
 */
const NO_CACHE = 'no-cache'
const PRIVATE = 'max-age=0, private, must-revalidate'

/**
 * Writes `answer` as JSON. A code of the errors table, a deny or a GateError is answered with
 * its status, `{message, code, errors?, request_id}` and, for a 503, `Retry-After`; a GateError
 * says its public message, never its log message. `requestId` null (the health listener) sends
 * no request id. `closeConnection` ends the connection after the answer: a body left unread is
 * not drained. Once headers are sent nothing can be answered: the socket is destroyed.
 * `answerHeader`: an error's body is also sent as the header `X-Job-Token-Gate-Answer` (forward-auth:
 * nginx's auth_request keeps no body of a refusal, only headers it is told to read).
 */
export function respond (res: ServerResponse, requestId: string | null, answer: Answer, closeConnection = false, answerHeader = false): void {
  if (res.headersSent) {
    res.destroy()
    return
  }
  // Hot path (every deny): the body is built as a string in the order the fields always had, and
  // the headers as a flat list, instead of objects spread together and stringified.
  let status: number
  let body: string
  let extra: Readonly<Record<string, string>> | undefined
  let isError = true
  let code: ErrorCode | null = null
  if (typeof answer === 'string') {
    status = errors[answer].status
    code = answer
    body = errorJson(errors[answer].message, answer, '', requestId)
  } else if (answer instanceof GateError) {
    status = answer.status
    code = answer.code
    const issues = answer.issues.length === 0 ? '' : ',"errors":' + JSON.stringify(answer.issues.map(i => ({ field: i.path, message: i.message })))
    body = errorJson(errorBody(answer.code, answer.publicMessage).message, answer.code, issues, requestId)
    extra = answer.headers
  } else if (answer.kind === 'deny') {
    status = answer.status
    code = answer.code
    body = errorJson(answer.message, answer.code, answer.echoAsError === true ? ',"error":' + JSON.stringify(answer.message) : '', requestId)
    extra = answer.headers
  } else {
    isError = false
    status = answer.status
    body = answer.body === undefined ? '' : JSON.stringify(answer.body)
    extra = answer.headers
  }
  const headers: string[] = body === '' ? ['content-length', '0'] : ['content-type', 'application/json', 'content-length', String(Buffer.byteLength(body))]
  headers.push('cache-control', isError ? NO_CACHE : PRIVATE)
  if (requestId !== null) headers.push('x-request-id', requestId)
  if (closeConnection) headers.push('connection', 'close')
  if (isError && status === 503) headers.push('retry-after', '5')
  if (answerHeader && code !== null) headers.push('x-job-token-gate-answer', answerHeaderValue(body, status, code, requestId))
  if (extra !== undefined) {
    for (const name in extra) {
      // A header of the answer's own replaces one set above, as it always did.
      const lower = name.toLowerCase()
      for (let i = 0; i < headers.length; i += 2) {
        if (headers[i] === lower) {
          headers.splice(i, 2)
          break
        }
      }
      headers.push(name, extra[name]!)
    }
  }
  res.writeHead(status, headers)
  res.end(body)
}

/**
 * A whole HTTP/1.1 answer, to write on a socket, to a request that never became a request object
 * (Node's parser refused it, src/gate/server.ts): `code`'s status and JSON body, and the
 * connection closed after it.
 */
export function rawErrorAnswer (code: ErrorCode, requestId: string): string {
  const { status, message } = errors[code]
  const body = errorJson(message, code, '', requestId)
  return `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\ncache-control: ${NO_CACHE}\r\nx-request-id: ${requestId}\r\nconnection: close\r\n\r\n${body}`
}

/** Longest answer sent whole in X-Job-Token-Gate-Answer: nginx reads a decision's headers into one 4 KiB buffer. */
const MAX_ANSWER_HEADER = 2048

/**
 * An error body as a header value: every character past ASCII written as a JSON escape, so the
 * value is the same JSON text in bytes any proxy passes on; a body too long for a header (a
 * message naming a long path) is cut to its status, code and request id.
 */
function answerHeaderValue (body: string, status: number, code: ErrorCode, requestId: string | null): string {
  const ascii = asciiJson(body)
  return ascii.length <= MAX_ANSWER_HEADER ? ascii : asciiJson(errorJson(`${status} ${STATUS_CODES[status] ?? ''}`.trim(), code, '', requestId))
}

function asciiJson (json: string): string {
  return json.replace(/[\u007f-\uffff]/g, c => '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0'))
}

/** `{"message", "code", <more>, "request_id"}`: GitLab's body, the code, then the request id. */
function errorJson (message: string, code: ErrorCode, more: string, requestId: string | null): string {
  return '{"message":' + messageJson(message) + ',"code":"' + code + '"' + more + (requestId === null ? '}' : ',"request_id":' + JSON.stringify(requestId) + '}')
}

/**
 * Hot path (every deny): a message's JSON text, escaped once. Messages come from the errors
 * table and the denies built from it, a few hundred texts at most; past MESSAGES_KEPT the cache
 * starts over, so a message with variable parts cannot grow it.
 */
const MESSAGES_KEPT = 1000
let messages = new Map<string, string>()

function messageJson (message: string): string {
  let json = messages.get(message)
  if (json === undefined) {
    if (messages.size >= MESSAGES_KEPT) messages = new Map()
    json = JSON.stringify(message)
    messages.set(message, json)
  }
  return json
}
