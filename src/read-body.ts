// Reading a request body up to a limit, shared by the identity stage's body scan and the
// configuration API's readers, and the budget all of them read within.

import type { Readable } from 'node:stream'

/**
 * Bytes of request bodies held while their clients send them, across every request of a gate
 * (GATE_BODY_BUDGET_BYTES). A body read to be inspected waits for its client: without a bound,
 * clients that send most of a body and stall hold it in memory for as long as they keep their
 * connections, 1 MiB each at /api/graphql. Past the budget such a read is refused (503) rather
 * than the process growing until it is killed, with every other request.
 */
export interface BodyBudget {
  /** Bytes held now by reads in progress. */
  readonly held: number
  /** The most that may be held; 0: no bound. */
  readonly max: number
  /** Takes n bytes if they fit (always, without a bound). */
  take (n: number): boolean
  give (n: number): void
}

export function createBodyBudget (max: number): BodyBudget {
  let held = 0
  return {
    get held () { return held },
    max,
    take (n) {
      if (max > 0 && held + n > max) return false
      held += n
      return true
    },
    give (n) { held -= n }
  }
}

/** A read that would have taken the budget past its bound: nothing of it is held any longer. */
export class BodyBudgetExhausted extends Error {
  constructor () {
    super('the request bodies being read would take the gate past its body budget')
    this.name = 'BodyBudgetExhausted'
  }
}

/** The client went away before a body being read had ended: nothing of the gate's went wrong. */
export class BodyReadAborted extends Error {
  constructor (cause?: Error) {
    super('the client closed the request before its body was read', cause === undefined ? undefined : { cause })
    this.name = 'BodyReadAborted'
  }
}

/**
 * The body's chunks up to its end (`complete`), or up to the first chunk that makes it longer than
 * max, that chunk included; the stream is then left paused with nothing of it lost, so a caller
 * can replay what was read and pipe the rest. Rejects when the body fails or closes before either
 * (BodyReadAborted when its client went away), and with BodyBudgetExhausted (the stream paused)
 * when a chunk does not fit the budget. The bytes are counted against the budget while the client
 * is sending them, and given back once the read ends: what a caller does with them next goes at
 * the gate's and GitLab's pace. `onChunk` sees each chunk as it is read, and `onEnd` the end of
 * the body: whatever either throws rejects the read (the stream paused), so a bound on what the
 * body holds refuses it at the chunk that passes it.
 */
export function readUpTo (body: Readable, max: number, budget?: BodyBudget, onChunk?: (chunk: Buffer) => void, onEnd?: () => void): Promise<{ readonly complete: boolean, readonly chunks: Buffer[], readonly size: number }> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    let taken = 0
    const cleanup = (): void => {
      body.off('data', onData)
      body.off('end', ended)
      body.off('error', onError)
      body.off('close', onClose)
      budget?.give(taken)
      taken = 0
    }
    const onData = (chunk: Buffer | string): void => {
      const b = typeof chunk === 'string' ? Buffer.from(chunk) : chunk
      if (budget !== undefined) {
        if (!budget.take(b.length)) {
          cleanup()
          body.pause()
          reject(new BodyBudgetExhausted())
          return
        }
        taken += b.length
      }
      size += b.length
      chunks.push(b)
      try {
        onChunk?.(b)
      } catch (err) {
        cleanup()
        body.pause()
        reject(err)
        return
      }
      if (size > max) {
        cleanup()
        body.pause()
        resolve({ complete: false, chunks, size })
      }
    }
    const ended = (): void => {
      cleanup()
      try {
        onEnd?.()
      } catch (err) {
        reject(err)
        return
      }
      resolve({ complete: true, chunks, size })
    }
    const onError = (err: Error & { code?: string }): void => {
      cleanup()
      // Node's request fails with `aborted` (ECONNRESET) when its client closes mid-body.
      reject(err.code === 'ECONNRESET' ? new BodyReadAborted(err) : err)
    }
    const onClose = (): void => {
      cleanup()
      reject(new BodyReadAborted())
    }
    body.on('data', onData)
    body.on('end', ended)
    body.on('error', onError)
    body.on('close', onClose)
  })
}
