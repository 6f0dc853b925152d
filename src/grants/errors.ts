// Typed failures of the grants layer. Each carries one of the stable codes of src/errors.ts, so
// the request path answers with that table's status and public message; `cause` and `detail`
// are for logs only.

import { errors, type ErrorCode } from '../errors.ts'

export class GrantsError extends Error {
  readonly code: ErrorCode
  readonly status: number

  constructor (code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'GrantsError'
    this.code = code
    this.status = errors[code].status
  }
}

/** The store cannot be read and no cached answer is recent enough: fail closed (503). */
export class GrantsStoreUnavailableError extends GrantsError {
  constructor (detail: string, options?: { cause?: unknown }) {
    super('GRANTS_STORE_UNAVAILABLE', `grants store unavailable: ${detail}`, options)
    this.name = 'GrantsStoreUnavailableError'
  }
}

export interface ValidationIssue {
  /** Where in the document, e.g. `entries[3].jobTokenPolicies[0]`; '' for the document. */
  readonly path: string
  readonly message: string
}

/** A ProjectGrants document (or instance settings) broke a rule; lists every problem found. */
export class GrantsValidationError extends GrantsError {
  readonly issues: readonly ValidationIssue[]

  constructor (issues: readonly ValidationIssue[]) {
    super('GRANTS_INVALID', 'invalid job token scope settings:\n' + issues.map(i => `  ${i.path === '' ? 'document' : i.path} ${i.message}`).join('\n'))
    this.name = 'GrantsValidationError'
    this.issues = issues
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
