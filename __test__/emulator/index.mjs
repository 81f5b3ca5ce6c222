// Hermetic loopback emulator for aws-wif-supplier tests: every AWS and Google endpoint the addon (or
// google-auth-library) talks to, on plain HTTP, listening on 127.0.0.1 unless told otherwise.
//
//   const em = await startEmulator()                      // or {listen: [{host, port}, …], config: {…}}
//   em.url                                                // "http://127.0.0.1:41234"
//
// Routes (route name in brackets; wire formats in the header of the module named):
//   [container]    GET  /v2/credentials/<id>, GET /v1/credentials      aws.mjs   ECS / EKS Pod Identity
//   [imds]         PUT  /latest/api/token, GET /latest/meta-data/…     aws.mjs   EC2 IMDSv2
//   [taskMetadata] GET  /ecs-metadata/v4/<id>[/task]                   aws.mjs   ECS task metadata v4
//   [awsSts]       POST /aws-sts[/]                                    aws.mjs   AssumeRoleWithWebIdentity
//   [sts]          POST /v1/token (AWS subject tokens; and downscoping)   google.mjs + sigv4-oracle.mjs
//   [iam]          POST /v1/projects/-/serviceAccounts/<sa>:generateAccessToken   google.mjs
//   [iamIdToken]   POST /v1/projects/-/serviceAccounts/<sa>:generateIdToken       google.mjs
//   [iamSignBlob]  POST /v1/projects/-/serviceAccounts/<sa>:signBlob             google.mjs
//   [cloudRun]     GET|POST /run/<service>[/…] (accepts only an ID token for its URL)   google.mjs
//   [storage]      GET  /storage/v1/b/<bucket>/o/<object> (within access boundaries)   google.mjs
//   [bigquery]     /bigquery/v2/projects/<p>/{queries,jobs}[/<id>]     google.mjs
//   [unknown]      anything else -> 404 JSON
//
// Faults, queued per route and consumed one per request (em.fault), or persistent (em.setAlways):
//   {delayMs}   answer normally (or with the fault's status) after a delay
//   {status, body?, contentType?}   answer with that status; body defaults to a JSON error object
//   {hang: true}     never answer; the socket is destroyed by em.close()
//   {reset: true}    destroy the socket without answering
//   {truncate: true} answer with the first half of the body (well framed, Content-Length matches),
//                    so a client sees invalid JSON rather than an I/O error
//
// Nothing here ever connects anywhere: the emulator only accepts connections.

import { randomBytes } from 'node:crypto'
import http from 'node:http'
import https from 'node:https'
import { awsRoutes, issueAwsCredentials } from './aws.mjs'
import { GREETING, emulatorSignature, googleRoutes, verifyJwt } from './google.mjs'
import { json, readBody } from './wire.mjs'

export { hermeticEnv, makeProcessHermetic, HERMETIC_DEFAULTS } from './hermetic-env.mjs'
export { verifySubjectToken, decodeSubjectToken, REASONS } from './sigv4-oracle.mjs'
export { GREETING, emulatorSignature, verifyJwt }

export const DEFAULT_CONFIG = Object.freeze({
  region: 'us-east-1',
  accountId: '123456789012',
  roleArn: 'arn:aws:iam::123456789012:role/wif-demo-role', // container and IMDS role
  launchType: 'FARGATE', // ECS task metadata
  audience: '//iam.googleapis.com/projects/123456/locations/global/workloadIdentityPools/pool/providers/aws',
  containerAuthToken: null, // when set, container routes require Authorization === this
  credentialsTtlMs: 6 * 60 * 60 * 1000,
  credentials: null, // fixed {accessKeyId, secretAccessKey, token} instead of fresh random ones
  webIdentityToken: null, // when set, AssumeRoleWithWebIdentity requires WebIdentityToken === this
  serviceAccount: 'wif-demo@my-project.iam.gserviceaccount.com',
  allowedPrincipals: null, // null = any; else caller ARN prefixes STS accepts (attribute condition)
  clockSkewMs: 0, // added to the emulator's clock (em.now())
  stsTokenTtlSeconds: 3600, // expires_in of the federated tokens STS issues
  expireTimeMillis: false, // generateAccessToken's expireTime with milliseconds (else whole seconds)
})

const ROUTES = [...awsRoutes, ...googleRoutes]
export const ROUTE_NAMES = Object.freeze([...new Set(ROUTES.map((r) => r.route)), 'unknown'])

/** Find the route for a request: {spec?, route, params}. A known path with the wrong method has no spec. */
function matchRoute(method, pathname) {
  let pathMatch = null
  for (const spec of ROUTES) {
    const m = spec.pattern.exec(pathname)
    if (!m) continue
    if (spec.method === method) return { spec, route: spec.route, params: m.slice(1) }
    pathMatch ??= spec.route
  }
  return { spec: null, route: pathMatch ?? 'unknown', params: [] }
}

function noRouteReply(route, method, path) {
  if (route === 'unknown') return json(404, { code: 'NotFound', message: `No emulated route for ${method} ${path}` })
  return json(405, { code: 'MethodNotAllowed', message: `${method} is not supported on ${path}` })
}

function faultReply(fault) {
  const body = fault.body ?? { code: 'EmulatedFault', message: `fault injected: HTTP ${fault.status}` }
  return {
    status: fault.status,
    contentType: fault.contentType ?? 'application/json',
    body: typeof body === 'string' ? body : JSON.stringify(body),
  }
}

function truncateReply(reply) {
  const bytes = Buffer.from(reply.body)
  return { ...reply, body: bytes.subarray(0, Math.floor(bytes.length / 2)) }
}

function writeReply(res, reply) {
  const bytes = Buffer.isBuffer(reply.body) ? reply.body : Buffer.from(reply.body ?? '')
  res.writeHead(reply.status, { ...reply.headers, 'content-type': reply.contentType, 'content-length': bytes.length })
  res.end(bytes)
}

class Emulator {
  /** Request log: {route, method, path, headers, body, at, listener, status?, verdict?, query?, error?}. */
  requests = []
  /** accessKeyId -> {secretAccessKey, token, expiration, expiresAt, arn, source} of every AWS key handed out. */
  issued = new Map()
  /** Google access token -> {kind: 'sts'|'sa'|'downscoped', principal, scopes, expiresAt, accessBoundary?}. */
  googleTokens = new Map()
  /** IMDSv2 session token -> expiry (ms). */
  imdsTokens = new Map()
  /** BigQuery jobId -> {projectId, jobId, location, query, principal}. */
  bigqueryJobs = new Map()
  /** The HS256 key of the ID tokens the emulator issues. */
  idTokenKey = randomBytes(32)
  /** ID token -> its claims, for every ID token issued. */
  idTokens = new Map()
  /** ID tokens the Cloud Run stand-in refuses (as if revoked). */
  revokedIdTokens = new Set()
  urls = []

  #faults = new Map()
  #always = new Map()
  #waiters = new Set()
  #servers = []
  #sockets = new Set()
  #delays = new Set()
  #closing = null

  constructor(config) {
    this.config = { ...DEFAULT_CONFIG, ...config }
  }

  /** Base URL of the first listener. */
  get url() {
    return this.urls[0]
  }

  /** The emulator's clock (ms), skewed by config.clockSkewMs. */
  now() {
    return Date.now() + this.config.clockSkewMs
  }

  count(route) {
    return this.requests.filter((r) => r.route === route).length
  }

  /** Resolves with the n-th request (1-based) to `route` once it has arrived. */
  waitFor(route, n = 1) {
    const found = this.requests.filter((r) => r.route === route)[n - 1]
    if (found) return Promise.resolve(found)
    if (this.#closing) return Promise.reject(new Error('emulator closed'))
    return new Promise((resolve, reject) => this.#waiters.add({ route, n, resolve, reject }))
  }

  /** Clear the request log and all queued and persistent faults. */
  reset() {
    this.requests.length = 0
    this.#faults.clear()
    this.#always.clear()
  }

  /** Queue faults for `route`, consumed one per request in order. */
  fault(route, ...faults) {
    this.#checkRoute(route)
    this.#faults.set(route, [...(this.#faults.get(route) ?? []), ...faults])
  }

  /** A fault applied to every request to `route` once the queue is empty; null removes it. */
  setAlways(route, fault) {
    this.#checkRoute(route)
    if (fault) this.#always.set(route, fault)
    else this.#always.delete(route)
  }

  /** Trust a key the emulator did not issue (e.g. static AWS_ACCESS_KEY_ID tests). */
  registerAwsKey({ accessKeyId, secretAccessKey, token = null, expiresAt = null, arn }) {
    const record = {
      secretAccessKey,
      token,
      expiresAt,
      expiration: expiresAt == null ? null : new Date(expiresAt).toISOString(),
      arn: arn ?? `arn:aws:iam::${this.config.accountId}:user/static-test-user`,
      source: 'registered',
    }
    this.issued.set(accessKeyId, record)
    return record
  }

  /** Hand out AWS credentials as the container endpoint would, without an HTTP request. */
  issueAwsCredentials(source = 'direct') {
    return issueAwsCredentials(this, { source, arn: `arn:aws:sts::${this.config.accountId}:assumed-role/${this.config.roleArn.split('/').pop()}/${source}` })
  }

  /**
   * Listen on host:port; with `tls: {key, cert}` (PEM), as an HTTPS front with that certificate
   * (`em.urls` then gets an https:// URL; use `hostname` to name it by a host name in that URL).
   */
  async listen({ host = '127.0.0.1', port = 0, tls = null, hostname = null } = {}) {
    const handler = (req, res) => this.#dispatch(req, res)
    const server = tls ? https.createServer({ key: tls.key, cert: tls.cert }, handler) : http.createServer(handler)
    server.on('connection', (socket) => {
      this.#sockets.add(socket)
      socket.once('close', () => this.#sockets.delete(socket))
    })
    await new Promise((resolve, reject) => {
      server.once('error', reject)
      server.listen(port, host, () => {
        server.off('error', reject)
        resolve()
      })
    })
    this.#servers.push(server)
    const address = server.address()
    const hostPart = hostname ?? (address.family === 'IPv6' ? `[${address.address}]` : address.address)
    this.urls.push(`${tls ? 'https' : 'http'}://${hostPart}:${address.port}`)
  }

  /**
   * Close every keep-alive connection that is not serving a request, as a server does with idle
   * connections while a Lambda process is frozen. Returns how many connections were open.
   */
  closeIdleConnections() {
    const open = this.#sockets.size
    for (const server of this.#servers) server.closeIdleConnections()
    return open
  }

  /** Stop listening, destroy every open socket (keep-alive and hanging ones), cancel delays. */
  close() {
    this.#closing ??= this.#shutdown()
    return this.#closing
  }

  async #shutdown() {
    for (const delay of this.#delays) delay.cancel()
    for (const waiter of this.#waiters) waiter.reject(new Error('emulator closed'))
    this.#waiters.clear()
    const closed = Promise.all(this.#servers.map((server) => new Promise((resolve) => server.close(resolve))))
    for (const socket of this.#sockets) socket.destroy()
    await closed
  }

  #checkRoute(route) {
    if (!ROUTE_NAMES.includes(route)) throw new Error(`unknown route "${route}"; expected one of ${ROUTE_NAMES.join(', ')}`)
  }

  #takeFault(route) {
    const queue = this.#faults.get(route)
    return queue?.length ? queue.shift() : this.#always.get(route)
  }

  /** Resolves true after `ms`, or false if the emulator closes first. */
  #delay(ms) {
    return new Promise((resolve) => {
      const delay = {
        timer: setTimeout(() => {
          this.#delays.delete(delay)
          resolve(true)
        }, ms),
        cancel: () => {
          clearTimeout(delay.timer)
          resolve(false)
        },
      }
      this.#delays.add(delay)
    })
  }

  #record(entry) {
    this.requests.push(entry)
    for (const waiter of this.#waiters) {
      const arrived = this.requests.filter((r) => r.route === waiter.route)
      if (arrived.length >= waiter.n) {
        this.#waiters.delete(waiter)
        waiter.resolve(arrived[waiter.n - 1])
      }
    }
  }

  async #dispatch(req, res) {
    let body
    try {
      body = await readBody(req)
    } catch {
      req.socket.destroy()
      return
    }
    const url = new URL(req.url, 'http://emulator.invalid')
    const { spec, route, params } = matchRoute(req.method, url.pathname)
    const listener = `${req.socket.localAddress}:${req.socket.localPort}`
    const entry = { route, method: req.method, path: req.url, headers: { ...req.headers }, body, at: Date.now(), listener }
    this.#record(entry)

    const fault = this.#takeFault(route)
    if (fault?.delayMs && !(await this.#delay(fault.delayMs))) return
    if (fault?.hang) return
    if (fault?.reset) {
      entry.status = 'reset'
      req.socket.destroy()
      return
    }
    let reply = fault?.status ? faultReply(fault) : await this.#handle(spec, { em: this, req, url, headers: req.headers, body, params, entry })
    reply ??= noRouteReply(route, req.method, url.pathname)
    if (fault?.truncate) reply = truncateReply(reply)
    entry.status = reply.status
    if (!res.destroyed) writeReply(res, reply)
  }

  async #handle(spec, ctx) {
    if (!spec) return null
    try {
      return await spec.handle(ctx)
    } catch (err) {
      ctx.entry.error = err
      return json(500, { code: 'EmulatorError', message: String(err?.stack ?? err) })
    }
  }
}

/**
 * Start the emulator. `opts.listen`: [{host, port}] (default [{host: '127.0.0.1', port: 0}]);
 * `opts.config`: overrides of DEFAULT_CONFIG (em.config stays mutable afterwards).
 */
export async function startEmulator(opts = {}) {
  const em = new Emulator(opts.config)
  try {
    for (const address of opts.listen ?? [{ host: '127.0.0.1', port: 0 }]) await em.listen(address)
  } catch (err) {
    await em.close()
    throw err
  }
  return em
}
