'use strict'
// The GCE metadata server protocol, served from a GoogleTokenFetcher (issue 21): every Google client
// library, in any language, finds credentials there through GCE_METADATA_HOST (and Python's and
// Node's GCE detection through GCE_METADATA_IP), so code that only knows Application Default
// Credentials gets this workload's tokens without a change.
//
// Tokens come only from the native fetcher (its process-wide cache, one exchange for every client);
// nothing here talks to Google or AWS. Loaded lazily by `fetcher.serveMetadata()` (lib/fetcher.js) and by
// `aws-wif-supplier metadata-server` (bin/aws-wif-supplier.js).
//
// What is served, as GCE serves it (what gcp-metadata, google-auth for Python and the Go metadata
// client request):
//   /  /computeMetadata/  /computeMetadata/v1/  (directory listings)
//   /computeMetadata/v1/instance[/]              gcp-metadata's GCE detection asks without the slash
//   instance/service-accounts/[?recursive=true]  `default/` and `<email>/`
//   instance/service-accounts/{default|<email>}/[?recursive=true]   {aliases, email, scopes}
//     …/token[?scopes=a,b]                       {access_token, expires_in, token_type: 'Bearer'}
//     …/email   …/scopes (one per line)   …/identity?audience=A[&format=full]  (the ID token)
//   project/project-id   project/numeric-project-id (from the pool audience)   universe/universe-domain
// Rules: `Metadata-Flavor: Google` is required (else 403); a request with `X-Forwarded-For` gets 403
// (a request forged through a proxy must not reach tokens); GET only (else 405); anything else 404.
// Every answer carries `Metadata-Flavor: Google` and a Content-Type (Python's google-auth reads it):
// application/json for JSON, text/plain otherwise. `?alt=json|text` chooses between them where both
// make sense.
// Every answer also carries `Server: aws-wif-supplier/<version>` (SERVER below, the package's version):
// how `aws-wif-supplier doctor` tells that GCE_METADATA_HOST points at a server of ours
// (identifyMetadataServer below). It names the package and its version only, as any HTTP server does.

const http = require('node:http')
const { readFile } = require('node:fs/promises')

const PREFIX = '/computeMetadata/v1'
/** At most this many fetchers for scope sets other than the fetcher's own (least recently used evicted). */
const MAX_SCOPE_SETS = 16
const TAG = '[aws-wif-supplier]'
/** The Server header of every answer; doctor recognises it (identifyMetadataServer). */
const SERVER = `aws-wif-supplier/${require('../package.json').version}`

const debugOn = () => /^(debug|trace)$/i.test((process.env.AWS_WIF_SUPPLIER_LOG ?? '').trim())

/** The service account of a generateAccessToken URL (`…/serviceAccounts/<email>:generateAccessToken`), or null. */
function serviceAccountOf(url) {
  const m = /\/serviceAccounts\/([^/:]+):generateAccessToken$/.exec(url ?? '')
  if (!m) return null
  try {
    return decodeURIComponent(m[1])
  } catch {
    return null
  }
}

/** The project of a service account email (`name@PROJECT.iam.gserviceaccount.com`), or null. */
function projectOfEmail(email) {
  return /^[^@]+@([a-z][a-z0-9-]{4,28}[a-z0-9])\.iam\.gserviceaccount\.com$/.exec(email ?? '')?.[1] ?? null
}

/** The project number in a workload identity pool audience (`//iam.googleapis.com/projects/<N>/…`), or null. */
function projectNumberOf(audience) {
  return /\/projects\/(\d+)\/locations\//.exec(audience ?? '')?.[1] ?? null
}

/** The scopes of a `scopes=` parameter (comma- or space-separated), sorted and deduplicated. */
function parseScopes(value) {
  return [...new Set(value.split(/[\s,]+/).filter(Boolean))].sort()
}

/** An HTTP status for an error of the fetcher (src/error.rs codes), and the short text the client gets. */
function statusOf(err) {
  const code = typeof err?.code === 'string' ? err.code : 'INTERNAL'
  if (code === 'CONFIG_INVALID') return { status: 500, code }
  // TIMEOUT, an unreachable AWS endpoint, a Google 5xx: retryable, the client may try again.
  return { status: err?.retryable ? 503 : 500, code }
}

class MetadataError extends Error {
  constructor(status, text) {
    super(text)
    this.status = status
  }
}

const notFound = () => new MetadataError(404, 'Not Found')

/**
 * The server's view of the fetcher: `source` is what lib/fetcher.js hands over (`info` = clientInfo,
 * `token()`, `idToken(audience, includeEmail)`, `origin` = how the fetcher was made), `Fetcher` the
 * GoogleTokenFetcher class (to build one for other scopes).
 */
class Tokens {
  #source
  #Fetcher
  #own
  /** sorted scopes joined by ' ' → Promise<GoogleTokenFetcher> */
  #sets = new Map()

  constructor(source, Fetcher) {
    this.#source = source
    this.#Fetcher = Fetcher
    this.#own = [...source.info.scopes].sort().join(' ')
  }

  /** The access token for `scopes` (null: the fetcher's own). */
  async token(scopes) {
    if (scopes === null || scopes.length === 0 || scopes.join(' ') === this.#own) return this.#source.token()
    const fetcher = await this.#forScopes(scopes)
    return fetcher.getAccessToken()
  }

  idToken(audience, includeEmail) {
    return this.#source.idToken(audience, includeEmail)
  }

  #forScopes(scopes) {
    const key = scopes.join(' ')
    let entry = this.#sets.get(key)
    if (entry) {
      this.#sets.delete(key)
    } else {
      entry = this.#build(scopes)
      entry.catch(() => this.#sets.get(key) === entry && this.#sets.delete(key))
      if (this.#sets.size >= MAX_SCOPE_SETS) this.#sets.delete(this.#sets.keys().next().value)
    }
    this.#sets.set(key, entry)
    return entry
  }

  /** A fetcher of the same configuration with other scopes (its own process-wide cache: one exchange for all clients). */
  async #build(scopes) {
    const { options, config } = this.#source.origin
    const { binding } = require('./native.js')
    const runtime = { ...options, backgroundRefresh: binding.__metadataServerBackgroundRefresh() }
    if (config === undefined) return new this.#Fetcher({ ...runtime, scopes })
    let object = config
    if (typeof config === 'string') {
      try {
        object = JSON.parse(await readFile(config, 'utf8'))
      } catch {
        throw binding.__configInvalid('the credential configuration could not be read again for a fetcher of other scopes', 'keep the credential configuration file in place while the metadata server runs')
      }
    }
    return this.#Fetcher.fromCredentialConfig({ ...object, scopes }, runtime)
  }
}

/** `name` → its value, with the JSON and text renderings. A directory is a Map of children. */
function dir(entries) {
  return new Map(entries)
}

/**
 * Start serving. Resolves with `{ url, host, port, close() }` once listening; rejects (with the
 * listen error, `code` EADDRINUSE etc.) when it cannot listen.
 */
function serveMetadata(source, Fetcher, { host = '127.0.0.1', port = 0, projectId } = {}) {
  const info = source.info
  const email = serviceAccountOf(info.serviceAccountImpersonationUrl)
  const project = projectId || process.env.GOOGLE_CLOUD_PROJECT || projectOfEmail(email) || null
  const numericProject = projectNumberOf(info.audience)
  const scopes = [...info.scopes]
  const tokens = new Tokens(source, Fetcher)
  const logged = new Set()

  /** The coded error of the fetcher, once per distinct code on stderr (code and hint: no secret). */
  function logError(err, code) {
    if (logged.has(code)) return
    logged.add(code)
    const hint = typeof err?.hint === 'string' && err.hint ? ` (fix: ${err.hint})` : ''
    process.stderr.write(`${TAG} error: metadata server: ${code}${hint}\n`)
  }

  // The tree of what is served. A leaf is an async function of the request's query returning
  // { json } or { text } or { value } (value: JSON by default, text when alt=text).
  const account = () =>
    dir([
      ['aliases', () => ({ value: ['default'], list: true })],
      ['email', () => ({ value: email ?? 'default' })],
      ['identity', identity],
      ['scopes', () => ({ value: scopes, list: true })],
      ['token', token],
    ])
  const accountSummary = { aliases: ['default'], email: email ?? 'default', scopes }
  const accounts = dir([['default', account()], ...(email ? [[email, account()]] : [])])

  async function token(query) {
    const requested = query.has('scopes') ? parseScopes(query.get('scopes')) : null
    const t = await tokens.token(requested)
    const expiresIn = Math.max(0, Math.floor((t.expiresAt - Date.now()) / 1000))
    return { json: { access_token: t.token, expires_in: expiresIn, token_type: 'Bearer' } }
  }

  async function identity(query) {
    const audience = query.get('audience')
    if (!audience) throw new MetadataError(400, 'non-empty audience parameter required')
    if (!email) throw new MetadataError(404, 'no service account: the credential configuration does not impersonate one, and ID tokens need one')
    const format = query.get('format') ?? 'standard'
    if (format !== 'standard' && format !== 'full') throw new MetadataError(400, 'format must be standard or full')
    const t = await tokens.idToken(audience, format === 'full')
    return { value: t.token, text: true }
  }

  const root = dir([
    [
      'instance',
      dir([
        ['service-accounts', accounts],
      ]),
    ],
    [
      'project',
      dir([
        ['numeric-project-id', () => (numericProject ? { value: Number(numericProject), raw: numericProject } : null)],
        ['project-id', () => (project ? { value: project } : null)],
      ]),
    ],
    ['universe', dir([['universe-domain', () => ({ value: info.universeDomain })]])],
  ])

  /** The JSON of a directory for `?recursive=true` (GCE's names: camelCase keys, no tokens). */
  function recursive(node) {
    if (node === accounts) return Object.fromEntries([...accounts.keys()].map((k) => [k, accountSummary]))
    if (node instanceof Map && [...accounts.values()].includes(node)) return accountSummary
    if (node === root.get('instance')) return { serviceAccounts: recursive(accounts) }
    if (node === root.get('project')) return { ...(numericProject ? { numericProjectId: Number(numericProject) } : {}), ...(project ? { projectId: project } : {}) }
    if (node === root.get('universe')) return { universeDomain: info.universeDomain }
    if (node === root) return { instance: recursive(root.get('instance')), project: recursive(root.get('project')), universe: recursive(root.get('universe')) }
    return null
  }

  /** `a/b c` lines of a JSON value, as GCE's `alt=text` renders a recursive answer. */
  function flatten(value, prefix = '', out = []) {
    if (value !== null && typeof value === 'object') {
      for (const [k, v] of Object.entries(value)) flatten(v, prefix ? `${prefix}/${k}` : k, out)
    } else out.push(`${prefix} ${value}`)
    return out
  }

  /** The answer `{ status, type, body }` to a GET of `pathname` with `query`. */
  async function answer(pathname, query) {
    const alt = query.get('alt')
    if (alt !== null && alt !== 'json' && alt !== 'text') throw new MetadataError(400, 'alt must be json or text')
    if (pathname === '/') return text('computeMetadata/\n')
    if (pathname === '/computeMetadata' || pathname === '/computeMetadata/') return text('v1/\n')
    if (pathname !== PREFIX && !pathname.startsWith(`${PREFIX}/`)) throw notFound()
    const rest = pathname.slice(PREFIX.length)
    const trailing = rest.endsWith('/')
    const parts = rest.split('/').filter(Boolean)
    let node = root
    for (const part of parts) {
      if (!(node instanceof Map) || !node.has(part)) throw notFound()
      node = node.get(part)
    }
    if (node instanceof Map) {
      if (query.get('recursive') === 'true') {
        const value = recursive(node)
        return alt === 'text' ? text(`${flatten(value).join('\n')}\n`) : json(value)
      }
      const names = [...node.entries()].map(([k, v]) => (v instanceof Map ? `${k}/` : k))
      return alt === 'json' ? json(names) : text(`${names.join('\n')}\n`)
    }
    if (trailing) throw notFound()
    const leaf = await node(query)
    if (leaf === null) throw notFound()
    if (leaf.json !== undefined) return json(leaf.json)
    if (alt === 'json') return json(leaf.value)
    if (leaf.list) return text(`${leaf.value.join('\n')}\n`)
    return text(String(leaf.raw ?? leaf.value))
  }

  const server = http.createServer((req, res) => {
    const started = performance.now()
    const pathname = (req.url ?? '/').split('?')[0]
    const done = (status, type, body) => {
      res.writeHead(status, {
        'metadata-flavor': 'Google',
        'content-type': type,
        'content-length': Buffer.byteLength(body),
        'cache-control': 'no-store',
        server: SERVER,
      })
      res.end(body)
      if (debugOn()) process.stderr.write(`${TAG} debug: metadata ${req.method} ${pathname} ${status} ${(performance.now() - started).toFixed(1)} ms\n`)
    }
    const fail = (status, message) => done(status, 'text/plain; charset=utf-8', `${message}\n`)
    if (req.headers['metadata-flavor'] !== 'Google') return fail(403, 'Missing Metadata-Flavor:Google header.')
    if (req.headers['x-forwarded-for'] !== undefined) return fail(403, 'Request had an X-Forwarded-For header: requests through a proxy are refused.')
    if (req.method !== 'GET') return fail(405, 'Method Not Allowed')
    let query
    try {
      query = new URL(req.url, 'http://metadata.invalid').searchParams
    } catch {
      return fail(400, 'Bad Request')
    }
    answer(pathname, query).then(
      (a) => done(200, a.type, a.body),
      (err) => {
        if (err instanceof MetadataError) return fail(err.status, err.message)
        const { status, code } = statusOf(err)
        logError(err, code)
        fail(status, `${code}: the token could not be obtained (the metadata server's log says why)`)
      },
    )
  })

  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => {
      server.off('error', reject)
      server.on('error', () => {}) // after listening, errors are per connection (Node handles them)
      const address = server.address()
      const shownHost = address.family === 'IPv6' ? `[${address.address}]` : address.address
      let closing = null
      resolve({
        url: `http://${shownHost}:${address.port}`,
        host: address.address,
        port: address.port,
        close() {
          closing ??= new Promise((done) => {
            server.close(() => done())
            server.closeAllConnections?.() // Node 18.2+
          })
          return closing
        },
      })
    })
  })
}

/** How long doctor waits for the server named by GCE_METADATA_HOST (connection and headers). */
const PROBE_TIMEOUT_MS = 1000

/**
 * What the value of GCE_METADATA_HOST (`host[:port]`, an `http://` prefix allowed as gcp-metadata
 * allows it) points at, for doctor: one GET of `/computeMetadata/v1/` with `Metadata-Flavor: Google`,
 * directly (never through a proxy), settled within `timeoutMs`. Resolves (never rejects) with
 * `{ host, verdict, version, httpStatus, detail }`: verdict `ours` (our Server header and the
 * metadata flavor), `not-ours` (an HTTP answer of anything else), `no-answer`, or `invalid` (a value
 * that is not host[:port]; then host is null and the value is not repeated).
 */
function identifyMetadataServer(value, { timeoutMs = PROBE_TIMEOUT_MS } = {}) {
  const name = 'GCE_METADATA_HOST'
  let url = null
  try {
    const raw = String(value).trim()
    url = new URL(/^https?:\/\//i.test(raw) ? raw : `http://${raw}`)
  } catch {}
  if (!url || url.protocol !== 'http:' || url.username || url.password || url.pathname !== '/' || url.search || url.hash || !url.hostname) {
    const detail = `${name} is set but is not host[:port] (its value is not shown): metadata clients cannot use it`
    return Promise.resolve({ host: null, verdict: 'invalid', version: null, httpStatus: null, detail })
  }
  const host = url.host
  const result = (verdict, { version = null, httpStatus = null, why } = {}) => {
    const detail =
      verdict === 'ours'
        ? `${name}=${host} is aws-wif-supplier's metadata server (version ${version})`
        : verdict === 'not-ours'
          ? `${name}=${host} answers (HTTP ${httpStatus}) but is not aws-wif-supplier's metadata server`
          : `${name}=${host} does not answer (${why})`
    return { host, verdict, version, httpStatus, detail }
  }
  return new Promise((resolve) => {
    let settled = false
    let timer = null
    let req = null
    const settle = (value) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      req?.destroy()
      resolve(value)
    }
    try {
      req = http.request(
        {
          host: url.hostname.replace(/^\[(.*)\]$/, '$1'),
          port: url.port || 80,
          path: `${PREFIX}/`,
          headers: { 'Metadata-Flavor': 'Google' },
          agent: false, // a fresh agent: no keep-alive, no proxy of the global agent
        },
        (res) => {
          res.resume()
          const ours = /^aws-wif-supplier\/(\S+)$/.exec(res.headers.server ?? '')
          if (ours && res.headers['metadata-flavor'] === 'Google') settle(result('ours', { version: ours[1], httpStatus: res.statusCode }))
          else settle(result('not-ours', { httpStatus: res.statusCode }))
        },
      )
    } catch (e) {
      return settle(result('no-answer', { why: typeof e?.code === 'string' ? e.code : 'the request could not be made' }))
    }
    timer = setTimeout(() => settle(result('no-answer', { why: `no answer within ${timeoutMs} ms` })), timeoutMs)
    req.on('error', (e) => settle(result('no-answer', { why: typeof e?.code === 'string' ? e.code : 'connection failed' })))
    req.end()
  })
}

const json = (value) => ({ type: 'application/json', body: JSON.stringify(value) })
const text = (body) => ({ type: 'text/plain; charset=utf-8', body })

module.exports = { serveMetadata, identifyMetadataServer, SERVER, projectOfEmail, projectNumberOf, serviceAccountOf }
