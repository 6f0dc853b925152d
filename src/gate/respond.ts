// The one writer of the gate's own JSON answers: denies and failures of the proxy and the
// forward-auth endpoint, forward-auth's 200, and the health checks. An error answer is GitLab's
// API body (`message`) plus the gate's stable `code` and the request id, so a 5xx can be traced
// to its decision line.

import type { ServerResponse } from 'node:http'
import { errorBody, errors, type ErrorCode } from '../errors.ts'
import type { Deny } from './pipeline.ts'

/** A JSON answer that is not an error of the table. */
export interface JsonAnswer {
  readonly kind: 'json'
  readonly status: number
  readonly body: unknown
  readonly headers?: Readonly<Record<string, string>>
}

export type Answer = Deny | JsonAnswer | ErrorCode

/**
 * Writes `answer` as JSON. A code of the errors table, or a deny, is answered with its status,
 * `{message, code, request_id}` and, for a 503, `Retry-After`. `requestId` null (the health
 * listener) sends no request id. `closeConnection` ends the connection after the answer: a body
 * left unread is not drained. Once headers are sent nothing can be answered: the socket is
 * destroyed.
 */
export function respond (res: ServerResponse, requestId: string | null, answer: Answer, closeConnection = false): void {
  if (res.headersSent) {
    res.destroy()
    return
  }
  let status: number
  let body: string
  let extra: Readonly<Record<string, string>> | undefined
  if (typeof answer === 'string') {
    status = errors[answer].status
    body = JSON.stringify(requestId === null ? errorBody(answer) : { ...errorBody(answer), request_id: requestId })
  } else if (answer.kind === 'deny') {
    status = answer.status
    body = JSON.stringify(requestId === null ? errorBody(answer.code, answer.message) : { ...errorBody(answer.code, answer.message), request_id: requestId })
    extra = answer.headers
  } else {
    status = answer.status
    body = JSON.stringify(answer.body)
    extra = answer.headers
  }
  const isError = typeof answer === 'string' || answer.kind === 'deny'
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
    ...(requestId === null ? {} : { 'x-request-id': requestId }),
    ...(closeConnection ? { connection: 'close' } : {}),
    ...(isError && status === 503 ? { 'retry-after': '5' } : {}),
    ...extra
  })
  res.end(body)
}
