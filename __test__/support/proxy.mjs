// A forward HTTP proxy for tests, on loopback: what a corporate egress proxy does, with no DNS.
//
//   const proxy = await startProxy({ routes: { 'sts.googleapis.com:443': { host: '127.0.0.1', port } } })
//   proxy.url                      // "http://127.0.0.1:41234"
//   proxy.tunnels                  // {'sts.googleapis.com:443': 1}: CONNECT tunnels opened, per target
//   proxy.requests                 // {'169.254.170.2:80': 1}: absolute-form requests, per target
//   proxy.total()                  // every CONNECT and absolute-form request received, answered or not
//
// * `CONNECT host:port` (what a client sends for an https URL) opens a tunnel to the route of
//   `host:port`; an absolute-form request (`GET http://host:port/path`, what a client sends for an
//   http URL) is forwarded to the route of its `host:port`. The proxy never resolves a name: a
//   target without a route gets 502, so a name only the proxy knows is unreachable any other way.
// * `auth: {user, password}` requires `Proxy-Authorization: Basic base64(user:password)`; anything
//   else gets 407 with `Proxy-Authenticate: Basic` (counted in `denied`, per target). The password
//   is never stored anywhere else and never written out.
// * A request that is neither CONNECT nor absolute-form (a client talking to the proxy as if it
//   were the server) gets 400 and is counted in `confused`.

import http from 'node:http'
import net from 'node:net'

const bump = (counts, key) => {
  counts[key] = (counts[key] ?? 0) + 1
}

class ForwardProxy {
  tunnels = {}
  requests = {}
  denied = {}
  unrouted = {}
  confused = 0
  url = null

  #server
  #sockets = new Set()
  #routes
  #expected

  constructor({ routes = {}, auth = null } = {}) {
    this.#routes = new Map(Object.entries(routes).map(([k, v]) => [k.toLowerCase(), v]))
    this.#expected = auth ? `Basic ${Buffer.from(`${auth.user}:${auth.password}`).toString('base64')}` : null
    this.#server = http.createServer((req, res) => this.#forward(req, res))
    this.#server.on('connect', (req, socket, head) => this.#tunnel(req, socket, head))
    this.#server.on('connection', (socket) => this.#track(socket))
  }

  /** Every CONNECT and absolute-form request received (answered, denied or unrouted). */
  total() {
    const sum = (counts) => Object.values(counts).reduce((a, b) => a + b, 0)
    return sum(this.tunnels) + sum(this.requests) + sum(this.denied) + sum(this.unrouted) + this.confused
  }

  /** Forget the counts. */
  reset() {
    this.tunnels = {}
    this.requests = {}
    this.denied = {}
    this.unrouted = {}
    this.confused = 0
  }

  /** A snapshot of the counts, as plain JSON. */
  counts() {
    const copy = (counts) => ({ ...counts })
    return { tunnels: copy(this.tunnels), requests: copy(this.requests), denied: copy(this.denied), unrouted: copy(this.unrouted), confused: this.confused, total: this.total() }
  }

  async listen(port = 0, host = '127.0.0.1') {
    await new Promise((resolve, reject) => {
      this.#server.once('error', reject)
      this.#server.listen(port, host, () => {
        this.#server.off('error', reject)
        resolve()
      })
    })
    this.url = `http://${host}:${this.#server.address().port}`
    return this
  }

  async close() {
    for (const s of this.#sockets) s.destroy()
    await new Promise((resolve) => this.#server.close(() => resolve()))
  }

  #track(socket) {
    this.#sockets.add(socket)
    socket.once('close', () => this.#sockets.delete(socket))
  }

  #authorized(req) {
    return this.#expected === null || req.headers['proxy-authorization'] === this.#expected
  }

  #tunnel(req, socket, head) {
    const target = String(req.url).toLowerCase()
    const refuse = (status, text, extra = '') => socket.end(`HTTP/1.1 ${status} ${text}\r\n${extra}Content-Length: 0\r\nConnection: close\r\n\r\n`)
    socket.on('error', () => {})
    if (!this.#authorized(req)) {
      bump(this.denied, target)
      return refuse(407, 'Proxy Authentication Required', 'Proxy-Authenticate: Basic realm="test proxy"\r\n')
    }
    const route = this.#routes.get(target)
    if (!route) {
      bump(this.unrouted, target)
      return refuse(502, 'Bad Gateway')
    }
    bump(this.tunnels, target)
    const upstream = net.connect(route.port, route.host, () => {
      socket.write('HTTP/1.1 200 Connection Established\r\n\r\n')
      if (head?.length) upstream.write(head)
      upstream.pipe(socket)
      socket.pipe(upstream)
    })
    this.#track(upstream)
    upstream.on('error', () => socket.destroy())
    socket.on('close', () => upstream.destroy())
  }

  #forward(req, res) {
    let url
    try {
      url = /^http:\/\//i.test(req.url) ? new URL(req.url) : null
    } catch {
      url = null
    }
    if (!url) {
      this.confused++
      res.writeHead(400, { 'content-type': 'text/plain', connection: 'close' })
      return res.end('not a proxy request')
    }
    const target = `${url.hostname}:${url.port || 80}`.toLowerCase()
    if (!this.#authorized(req)) {
      bump(this.denied, target)
      res.writeHead(407, { 'proxy-authenticate': 'Basic realm="test proxy"', 'content-length': 0, connection: 'close' })
      return res.end()
    }
    const route = this.#routes.get(target)
    if (!route) {
      bump(this.unrouted, target)
      res.writeHead(502, { 'content-length': 0, connection: 'close' })
      return res.end()
    }
    bump(this.requests, target)
    const headers = { ...req.headers }
    delete headers['proxy-authorization']
    delete headers['proxy-connection']
    const upstream = http.request({ host: route.host, port: route.port, method: req.method, path: `${url.pathname}${url.search}`, headers }, (up) => {
      res.writeHead(up.statusCode, up.headers)
      up.pipe(res)
    })
    upstream.on('error', () => {
      if (!res.headersSent) res.writeHead(502, { 'content-length': 0, connection: 'close' })
      res.end()
    })
    req.pipe(upstream)
  }
}

/** Start a proxy (see the header). Resolves once it listens; `proxy.url` is its address. */
export function startProxy({ routes, auth, host = '127.0.0.1', port = 0 } = {}) {
  return new ForwardProxy({ routes, auth }).listen(port, host)
}
