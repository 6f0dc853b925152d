// Reading a request body up to a limit, shared by the identity stage's body scan and the
// configuration API's readers.

import type { Readable } from 'node:stream'

/**
 * The body's chunks up to its end (`complete`), or up to the first chunk that makes it longer than
 * max, that chunk included; the stream is then left paused with nothing of it lost, so a caller
 * can replay what was read and pipe the rest. Rejects when the body fails or closes before either.
 */
export function readUpTo (body: Readable, max: number): Promise<{ readonly complete: boolean, readonly chunks: Buffer[], readonly size: number }> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    const cleanup = (): void => {
      body.off('data', onData)
      body.off('end', onEnd)
      body.off('error', onError)
      body.off('close', onClose)
    }
    const onData = (chunk: Buffer | string): void => {
      const b = typeof chunk === 'string' ? Buffer.from(chunk) : chunk
      size += b.length
      chunks.push(b)
      if (size > max) {
        cleanup()
        body.pause()
        resolve({ complete: false, chunks, size })
      }
    }
    const onEnd = (): void => {
      cleanup()
      resolve({ complete: true, chunks, size })
    }
    const onError = (err: Error): void => {
      cleanup()
      reject(err)
    }
    const onClose = (): void => {
      cleanup()
      reject(new Error('the client closed the request before its body was read'))
    }
    body.on('data', onData)
    body.on('end', onEnd)
    body.on('error', onError)
    body.on('close', onClose)
  })
}
