// A GitLab for `import-allowlists` tests on port 0: it answers the service token only (401
// otherwise), hands each request's path and body to the test, and answers 404 to what the test
// leaves unanswered.

import { createServer, type ServerResponse } from 'node:http'
import type { TestContext } from 'node:test'

/** `answer` ends `res` (sendJson) for the paths it knows; anything it leaves is 404. */
export async function startImportGitlab (t: TestContext, serviceToken: string, answer: (path: string, body: string, res: ServerResponse) => void): Promise<string> {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      if (req.headers['private-token'] !== serviceToken) { res.writeHead(401).end('{}'); return }
      answer(new URL(req.url ?? '/', 'http://fake').pathname, Buffer.concat(chunks).toString('utf8'), res)
      if (!res.headersSent) res.writeHead(404).end('{}')
    })
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.after(() => server.close())
  return `http://127.0.0.1:${(server.address() as { port: number }).port}`
}
