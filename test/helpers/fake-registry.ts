// A fake GitLab package registry for the real-client tests (test/clients/): the upstream answer
// of a test gate (test/helpers/gate.ts, `respond`), close enough to GitLab's API for npm, pip,
// twine, Maven, Composer and curl:
// - npm (lib/api/npm_project_packages.rb, npm_instance_packages.rb): project and instance
//   metadata with `dist.tarball` at the external URL, tarballs, publish (PUT with
//   `_attachments`), dist-tags GET/PUT/DELETE;
// - PyPI (lib/api/pypi_packages.rb): the simple page of a package, file downloads, and the
//   multipart upload twine sends (`content` file, `name`, `version`);
// - Maven (lib/api/maven_packages.rb): PUT and GET of any file under the package path
//   (jar, pom, checksums, maven-metadata.xml);
// - Composer (lib/api/composer_packages.rb): the group's `packages.json` and `p2` metadata, and
//   the project's archives;
// - generic packages (lib/api/generic_packages.rb): PUT and GET.
// Like GitLab's package endpoints of a private project, a request without any credential is
// answered 401 with `WWW-Authenticate: Basic` (Maven and pip send credentials only then).
// Absolute URLs point at `externalUrl`, as GitLab builds them from its external URL. Every
// accepted write is recorded in `writes`, so a test can assert nothing was written on a refusal.

import { createHash } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'

export interface RegistryWrite {
  readonly method: string
  readonly format: string
  readonly projectId: number
  /** The package path inside the format (`@acme/hello`, `com/acme/hello/1.0.0/hello-1.0.0.jar`, ...). */
  readonly path: string
  readonly bytes: number
}

interface NpmPackage {
  name: string
  versions: Record<string, Record<string, unknown>>
  'dist-tags': Record<string, string>
}

interface ComposerPackage {
  readonly name: string
  readonly version: string
  readonly projectId: number
  readonly groupId: number
  readonly sha: string
}

export interface FakeRegistry {
  /** Where GitLab's absolute URLs point: set it to the gate's URL. */
  externalUrl: string
  readonly writes: RegistryWrite[]
  /** Files by `<project id>/<format>/<path>`. */
  readonly files: Map<string, Buffer>
  readonly npm: Map<string, NpmPackage>
  /**
   * Downloads answered with a redirect, by file key (`<project id>/<format>/<path>`), as GitLab
   * does with object storage when it does not proxy downloads.
   */
  readonly redirects: Map<string, string>
  handle (req: IncomingMessage, res: ServerResponse, body: Buffer): void
  /** Adds an npm package version with its tarball (as `npm pack` makes it). */
  seedNpm (projectId: number, name: string, version: string, tarball: Buffer): void
  /** Adds a file (a wheel, a jar, ...); Maven files get their .sha1 and .md5 as GitLab serves them. */
  seedFile (projectId: number, format: string, path: string, content: Buffer): void
  seedComposer (projectId: number, groupId: number, name: string, version: string, zip: Buffer): void
}

const sha = (algorithm: string, data: Buffer): string => createHash(algorithm).update(data).digest('hex')

/** PEP 503 normalized name. */
const normalize = (name: string): string => name.toLowerCase().replace(/[-_.]+/g, '-')

function json (res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body)
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) })
  res.end(text)
}

function raw (res: ServerResponse, status: number, type: string, body: Buffer | string): void {
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body) })
  res.end(body)
}

const notFound = (res: ServerResponse): void => { json(res, 404, { message: '404 Not Found' }) }

function hasCredential (req: IncomingMessage, url: URL): boolean {
  return req.headers['job-token'] !== undefined || req.headers.authorization !== undefined ||
    req.headers['private-token'] !== undefined || req.headers['deploy-token'] !== undefined ||
    url.searchParams.has('job_token') || url.searchParams.has('private_token')
}

/** The parts of a multipart/form-data body: field name → value, with the file name of file parts. */
export function parseMultipart (contentType: string, body: Buffer): Map<string, { filename?: string, data: Buffer }> {
  const boundary = /boundary="?([^";]+)"?/i.exec(contentType)?.[1]
  const parts = new Map<string, { filename?: string, data: Buffer }>()
  if (boundary === undefined) return parts
  const delimiter = Buffer.from(`--${boundary}`)
  let start = body.indexOf(delimiter)
  while (start !== -1) {
    const next = body.indexOf(delimiter, start + delimiter.length)
    if (next === -1) break
    const part = body.subarray(start + delimiter.length + 2, next - 2) // CRLF after the delimiter, before the next
    const headerEnd = part.indexOf('\r\n\r\n')
    if (headerEnd !== -1) {
      const headers = part.subarray(0, headerEnd).toString('latin1')
      const name = /name="([^"]*)"/i.exec(headers)?.[1]
      const filename = /filename="([^"]*)"/i.exec(headers)?.[1]
      if (name !== undefined) parts.set(name, { ...(filename === undefined ? {} : { filename }), data: part.subarray(headerEnd + 4) })
    }
    start = next
  }
  return parts
}

export function createFakeRegistry (): FakeRegistry {
  const files = new Map<string, Buffer>()
  const npm = new Map<string, NpmPackage>()
  const composer: ComposerPackage[] = []
  const writes: RegistryWrite[] = []
  const redirects = new Map<string, string>()

  const registry: FakeRegistry = {
    externalUrl: 'http://gitlab.invalid',
    writes,
    files,
    npm,
    redirects,
    handle,
    seedNpm (projectId, name, version, tarball) {
      const fileName = `${name}-${version}.tgz`
      files.set(`${projectId}/npm/${name}/-/${fileName}`, tarball)
      const doc = npm.get(`${projectId}/${name}`) ?? { name, versions: {}, 'dist-tags': {} }
      doc.versions[version] = {
        name,
        version,
        dist: { shasum: sha('sha1', tarball), integrity: `sha512-${createHash('sha512').update(tarball).digest('base64')}` }
      }
      doc['dist-tags'].latest = version
      npm.set(`${projectId}/${name}`, doc)
    },
    seedFile (projectId, format, path, content) {
      files.set(`${projectId}/${format}/${path}`, content)
      if (format === 'maven') {
        files.set(`${projectId}/maven/${path}.sha1`, Buffer.from(sha('sha1', content)))
        files.set(`${projectId}/maven/${path}.md5`, Buffer.from(sha('md5', content)))
      }
    },
    seedComposer (projectId, groupId, name, version, zip) {
      const digest = sha('sha1', zip)
      files.set(`${projectId}/composer/archives/${name}.zip?sha=${digest}`, zip)
      composer.push({ name, version, projectId, groupId, sha: digest })
    }
  }

  const api = (): string => `${registry.externalUrl}/api/v4`
  const record = (method: string, format: string, projectId: number, path: string, bytes: number): void => {
    writes.push({ method, format, projectId, path, bytes })
  }

  function npmMetadata (projectId: number, doc: NpmPackage): unknown {
    const versions = Object.fromEntries(Object.entries(doc.versions).map(([v, meta]) => [v, {
      ...meta,
      dist: { ...(meta.dist as object), tarball: `${api()}/projects/${projectId}/packages/npm/${doc.name}/-/${doc.name}-${v}.tgz` }
    }]))
    return { name: doc.name, versions, 'dist-tags': doc['dist-tags'] }
  }

  function handleNpm (req: IncomingMessage, res: ServerResponse, projectId: number, rest: string, body: Buffer): void {
    const method = req.method ?? 'GET'
    const tags = /^-\/package\/(.+?)\/dist-tags(?:\/([^/]+))?$/.exec(rest)
    if (tags !== null) {
      const name = decodeURIComponent(tags[1]!)
      const doc = npm.get(`${projectId}/${name}`)
      if (doc === undefined) { notFound(res); return }
      const tag = tags[2] === undefined ? undefined : decodeURIComponent(tags[2])
      if (method === 'GET' && tag === undefined) { json(res, 200, doc['dist-tags']); return }
      if (method === 'PUT' && tag !== undefined) {
        // npm sends the version as a JSON string.
        doc['dist-tags'][tag] = JSON.parse(body.toString('utf8')) as string
        record(method, 'npm', projectId, `${name} dist-tag ${tag}`, body.length)
        res.writeHead(204).end()
        return
      }
      if (method === 'DELETE' && tag !== undefined) {
        delete doc['dist-tags'][tag]
        record(method, 'npm', projectId, `${name} dist-tag ${tag}`, 0)
        res.writeHead(204).end()
        return
      }
      notFound(res)
      return
    }
    const tarball = /^(.+)\/-\/(.+\.tgz)$/.exec(rest)
    if (tarball !== null && (method === 'GET' || method === 'HEAD')) {
      const file = files.get(`${projectId}/npm/${decodeURIComponent(tarball[1]!)}/-/${decodeURIComponent(tarball[2]!)}`)
      if (file === undefined) { notFound(res); return }
      raw(res, 200, 'application/octet-stream', file)
      return
    }
    const name = decodeURIComponent(rest)
    if (method === 'GET') {
      const doc = npm.get(`${projectId}/${name}`)
      if (doc === undefined) { notFound(res); return }
      json(res, 200, npmMetadata(projectId, doc))
      return
    }
    if (method === 'PUT') {
      // npm publish: the package document with the tarball in `_attachments`.
      const published = JSON.parse(body.toString('utf8')) as { versions: Record<string, Record<string, unknown>>, 'dist-tags': Record<string, string>, _attachments: Record<string, { data: string }> }
      const doc = npm.get(`${projectId}/${name}`) ?? { name, versions: {}, 'dist-tags': {} }
      for (const [version, meta] of Object.entries(published.versions)) {
        if (doc.versions[version] !== undefined) { json(res, 403, { message: 'Package already exists.' }); return }
        const attachment = Object.values(published._attachments)[0]
        if (attachment === undefined) { json(res, 400, { message: '400 Bad request - attachment missing' }); return }
        files.set(`${projectId}/npm/${name}/-/${name}-${version}.tgz`, Buffer.from(attachment.data, 'base64'))
        doc.versions[version] = meta
      }
      Object.assign(doc['dist-tags'], published['dist-tags'])
      npm.set(`${projectId}/${name}`, doc)
      record(method, 'npm', projectId, name, body.length)
      json(res, 200, {})
      return
    }
    notFound(res)
  }

  function handlePypi (req: IncomingMessage, res: ServerResponse, projectId: number, rest: string, body: Buffer): void {
    const simple = /^simple\/([^/]+)\/?$/.exec(rest)
    if (simple !== null && req.method === 'GET') {
      const wanted = normalize(decodeURIComponent(simple[1]!))
      const links: string[] = []
      for (const [key, content] of files) {
        const m = new RegExp(`^${projectId}/pypi/files/([0-9a-f]{64})/(.+)$`).exec(key)
        if (m === null || normalize(m[2]!.split('-')[0]!) !== wanted) continue
        links.push(`<a href="${api()}/projects/${projectId}/packages/pypi/files/${m[1]}/${m[2]}#sha256=${sha('sha256', content)}" data-requires-python="">${m[2]}</a><br>`)
      }
      if (links.length === 0) { notFound(res); return }
      raw(res, 200, 'text/html', `<!DOCTYPE html>\n<html><head><title>Links for ${wanted}</title></head><body><h1>Links for ${wanted}</h1>${links.join('')}</body></html>\n`)
      return
    }
    const file = /^files\/([0-9a-f]{64})\/(.+)$/.exec(rest)
    if (file !== null && req.method === 'GET') {
      const content = files.get(`${projectId}/pypi/files/${file[1]}/${decodeURIComponent(file[2]!)}`)
      if (content === undefined) { notFound(res); return }
      raw(res, 200, 'application/octet-stream', content)
      return
    }
    if (rest === '' && req.method === 'POST') {
      const parts = parseMultipart(String(req.headers['content-type'] ?? ''), body)
      const content = parts.get('content')
      const name = parts.get('name')?.data.toString('utf8')
      if (content?.filename === undefined || name === undefined || parts.get('version') === undefined) {
        json(res, 400, { message: '400 Bad request - content, name or version missing' })
        return
      }
      registry.seedFile(projectId, 'pypi', `files/${sha('sha256', content.data)}/${content.filename}`, content.data)
      record('POST', 'pypi', projectId, content.filename, content.data.length)
      json(res, 201, { message: '201 Created' })
      return
    }
    notFound(res)
  }

  function handleStored (req: IncomingMessage, res: ServerResponse, format: string, projectId: number, rest: string, body: Buffer): void {
    const key = `${projectId}/${format}/${decodeURIComponent(rest)}`
    if (req.method === 'PUT') {
      files.set(key, body)
      record('PUT', format, projectId, decodeURIComponent(rest), body.length)
      if (format === 'generic') json(res, 201, { message: '201 Created' })
      else res.writeHead(200, { 'content-length': 0 }).end()
      return
    }
    if (req.method === 'GET' || req.method === 'HEAD') {
      const location = redirects.get(key)
      if (location !== undefined) { res.writeHead(302, { location, 'content-length': 0 }).end(); return }
      const content = files.get(key)
      if (content === undefined) { notFound(res); return }
      const type = rest.endsWith('.xml') || rest.endsWith('.pom') ? 'application/xml' : 'application/octet-stream'
      res.writeHead(200, { 'content-type': type, 'content-length': content.length })
      res.end(req.method === 'HEAD' ? undefined : content)
      return
    }
    notFound(res)
  }

  function handleComposerGroup (req: IncomingMessage, res: ServerResponse, groupId: number, rest: string): void {
    const inGroup = composer.filter(p => p.groupId === groupId)
    if (rest === 'packages.json' || rest === 'packages') {
      json(res, 200, {
        packages: [],
        'metadata-url': `/api/v4/group/${groupId}/-/packages/composer/p2/%package%.json`,
        'available-packages': [...new Set(inGroup.map(p => p.name))]
      })
      return
    }
    const p2 = /^p2\/(.+?)(~dev)?\.json$/.exec(rest)
    if (p2 !== null) {
      const name = decodeURIComponent(p2[1]!)
      const versions = inGroup.filter(p => p.name === name && p2[2] === undefined)
      if (versions.length === 0 && p2[2] === undefined) { notFound(res); return }
      json(res, 200, {
        packages: {
          [name]: versions.map(p => ({
            name: p.name,
            version: p.version,
            version_normalized: `${p.version}.0`,
            type: 'library',
            dist: { type: 'zip', url: `${api()}/projects/${p.projectId}/packages/composer/archives/${p.name}.zip?sha=${p.sha}`, reference: p.sha, shasum: '' }
          }))
        }
      })
      return
    }
    notFound(res)
  }

  function handle (req: IncomingMessage, res: ServerResponse, body: Buffer): void {
    const url = new URL(req.url ?? '/', 'http://registry')
    if (!hasCredential(req, url)) {
      res.writeHead(401, { 'www-authenticate': 'Basic realm="GitLab Packages Registry"', 'content-type': 'application/json' })
      res.end(JSON.stringify({ message: '401 Unauthorized' }))
      return
    }
    const project = /^\/api\/v4\/projects\/(\d+)\/packages\/(npm|pypi|maven|composer|generic)(?:\/(.*))?$/.exec(url.pathname)
    if (project !== null) {
      const projectId = Number(project[1])
      const rest = project[3] ?? ''
      switch (project[2]) {
        case 'npm': handleNpm(req, res, projectId, rest, body); return
        case 'pypi': handlePypi(req, res, projectId, rest, body); return
        case 'composer': {
          const file = files.get(`${projectId}/composer/${decodeURIComponent(rest)}${url.search}`)
          if (req.method !== 'GET' || file === undefined) { notFound(res); return }
          raw(res, 200, 'application/zip', file)
          return
        }
        default: handleStored(req, res, project[2]!, projectId, rest, body); return
      }
    }
    // The instance-level npm metadata (lib/api/npm_instance_packages.rb): the package of that
    // name, with tarballs at its project's endpoint.
    const instanceNpm = /^\/api\/v4\/packages\/npm\/(@[^/]+(?:\/|%2f)[^/]+)$/i.exec(url.pathname)
    if (instanceNpm !== null && req.method === 'GET') {
      const name = decodeURIComponent(instanceNpm[1]!)
      const found = [...npm.entries()].find(([key]) => key.slice(key.indexOf('/') + 1) === name)
      if (found === undefined) { notFound(res); return }
      json(res, 200, npmMetadata(Number(found[0].split('/')[0]), found[1]))
      return
    }
    const group = /^\/api\/v4\/group\/(\d+)\/-\/packages\/composer\/(.+)$/.exec(url.pathname)
    if (group !== null && req.method === 'GET') { handleComposerGroup(req, res, Number(group[1]), group[2]!); return }
    notFound(res)
  }

  return registry
}
