// Ports for tests: one to bind a program that cannot be told port 0, and one nothing listens on.

import { createServer } from 'node:net'

/**
 * A port free when probed. Another test's server, in another process, may be given it before
 * the program it is meant for binds it: that program must fail to bind it, and its start be
 * checked as its own (a pid it reports, a file it writes once bound), not taken from whatever
 * answers on the port. Servers of this process listen on port 0 instead.
 */
export async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = createServer()
    server.unref()
    server.on('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number }
      server.close(() => resolve(port))
    })
  })
}

/**
 * A port nothing listens on, for a connection that must be refused: tcpmux's, below the range
 * port 0 is given from, so no test's server is ever on it. A port found free and closed again is
 * not one: another test's server may be given it the next moment and answer in its place.
 */
export const REFUSED_PORT = 1
