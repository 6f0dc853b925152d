// Typed failures of the grants layer: GateErrors (src/errors.ts) with the grants codes, so every
// answer takes that table's status and public message; `message` (the cause, a file name, a
// Redis error) is for logs only.

import { errors, GateError, type ErrorCode, type FieldIssue } from '../errors.ts'

export class GrantsError extends GateError {
  constructor (code: ErrorCode, message: string, options?: { cause?: unknown, issues?: readonly FieldIssue[] }) {
    super(code, message, { ...options, publicMessage: errors[code].message })
    this.name = 'GrantsError'
  }
}

/** The store cannot be read and no cached answer is recent enough: fail closed (503). */
export class GrantsStoreUnavailableError extends GrantsError {
  /**
   * A write that failed so: whether the store is sure it wrote nothing (refused before the write,
   * a save that never replaced the file), as opposed to one whose outcome is unknown (a command
   * timeout after Redis may have run it). The audit trail says which (src/admin/service.ts).
   */
  unwritten: boolean
  constructor (detail: string, options?: { cause?: unknown, unwritten?: boolean }, code: 'GRANTS_STORE_UNAVAILABLE' | 'GRANTS_STORE_LOST' = 'GRANTS_STORE_UNAVAILABLE') {
    super(code, `grants store unavailable: ${detail}`, options?.cause === undefined ? undefined : { cause: options.cause })
    this.name = 'GrantsStoreUnavailableError'
    this.unwritten = options?.unwritten === true
  }
}

/** `err` marked as a failure the store is sure wrote nothing of (GrantsStoreUnavailableError.unwritten). */
export function nothingWritten<E extends GrantsError> (err: E): E {
  if (err instanceof GrantsStoreUnavailableError) err.unwritten = true
  return err
}

/**
 * Redis no longer holds the store's marker (src/grants/redis-marker.ts): what the gate wrote is
 * gone, and what is left must not be read as "nothing configured". Fails closed as an outage does.
 */
export class GrantsStoreLostError extends GrantsStoreUnavailableError {
  constructor (detail: string) {
    super(detail, undefined, 'GRANTS_STORE_LOST')
    this.name = 'GrantsStoreLostError'
  }
}

/** Where in the document (e.g. `entries[3].jobTokenPolicies[0]`; '' for the document) and what is wrong. */
export type ValidationIssue = FieldIssue

/** A ProjectGrants document (or instance settings) broke a rule; lists every problem found. */
export class GrantsValidationError extends GrantsError {
  constructor (issues: readonly ValidationIssue[]) {
    super('GRANTS_INVALID', 'invalid job token scope settings:\n' + issues.map(i => `  ${i.path === '' ? 'document' : i.path} ${i.message}`).join('\n'), { issues })
    this.name = 'GrantsValidationError'
  }
}

/** A conditional write found another version than the one it was based on. */
export class GrantsVersionConflictError extends GrantsError {
  readonly projectId: number
  readonly expected: number
  readonly actual: number

  constructor (projectId: number, expected: number, actual: number) {
    super('GRANTS_VERSION_CONFLICT', `project ${projectId} is at version ${actual}, not ${expected}`)
    this.name = 'GrantsVersionConflictError'
    this.projectId = projectId
    this.expected = expected
    this.actual = actual
  }
}
