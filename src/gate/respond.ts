// The one writer of the gate's own JSON answers: denies and failures of the proxy, the
// forward-auth endpoint and the configuration API, their successful answers, and the health
// checks. An error answer is GitLab's API body (`message`) plus the gate's stable `code`, the
// fields at fault when there are any, and the request id, so a 5xx can be traced to its log line.
// Every error's status comes from the errors table (src/errors.ts), through a code, a deny of
// the pipeline or a GateError.

import type { ServerResponse } from 'node:http'
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
 * Writes `answer` as JSON. A code of the errors table, a deny or a GateError is answered with
 * its status, `{message, code, errors?, request_id}` and, for a 503, `Retry-After`; a GateError
 * says its public message, never its log message. `requestId` null (the health listener) sends
 * no request id. `closeConnection` ends the connection after the answer: a body left unread is
 * not drained. Once headers are sent nothing can be answered: the socket is destroyed.
 */
export function respond (res: ServerResponse, requestId: string | null, answer: Answer, closeConnection = false): void {
  if (res.headersSent) {
    res.destroy()
    return
  }
  let status: number
  let body: string
  let extra: Readonly<Record<string, string>> | undefined
  let isError = true
  if (typeof answer === 'string') {
    status = errors[answer].status
    body = errorJson(errorBody(answer), requestId)
  } else if (answer instanceof GateError) {
    status = answer.status
    const issues = answer.issues.length === 0 ? {} : { errors: answer.issues.map(i => ({ field: i.path, message: i.message })) }
    body = errorJson({ ...errorBody(answer.code, answer.publicMessage), ...issues }, requestId)
    extra = answer.headers
  } else if (answer.kind === 'deny') {
    status = answer.status
    body = errorJson({ ...errorBody(answer.code, answer.message), ...(answer.echoAsError === true ? { error: answer.message } : {}) }, requestId)
    extra = answer.headers
  } else {
    isError = false
    status = answer.status
    body = answer.body === undefined ? '' : JSON.stringify(answer.body)
    extra = answer.headers
  }
  res.writeHead(status, {
    ...(body === '' ? {} : { 'content-type': 'application/json' }),
    'content-length': Buffer.byteLength(body),
    ...(requestId === null ? {} : { 'x-request-id': requestId }),
    ...(closeConnection ? { connection: 'close' } : {}),
    ...(isError && status === 503 ? { 'retry-after': '5' } : {}),
    ...extra
  })
  res.end(body)
}

function errorJson (body: Record<string, unknown>, requestId: string | null): string {
  return JSON.stringify(requestId === null ? body : { ...body, request_id: requestId })
}
