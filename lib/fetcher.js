'use strict'
// GoogleTokenFetcher: the native fetcher (src/binding/fetcher.rs) with this thread's memos in
// front (lib/memo.js), and its google-auth-library clients (lib/auth-client.js, loaded on first
// use) and metadata server (lib/metadata-server.js, loaded on first use). Every default, bound and
// check comes from the binding.

const { inspect } = require('node:util')
const { binding, construct, handOverTrust, warnIgnored } = require('./native.js')
const { memosFor } = require('./memo.js')

/** Set while a static factory wraps a native fetcher it already built (`{ native, origin }`). */
let adopting = null

/**
 * Google access tokens (and ID tokens) for this AWS workload, natively (no google-auth-library
 * needed). See index.d.ts for the documentation.
 */
class GoogleTokenFetcher {
  #native
  #memos
  #background
  #quota
  /** How it was made (`{ options }` or `{ config, options }`), for serveMetadata's fetchers of other scopes. */
  #origin

  constructor(options) {
    this.#native = adopting?.native ?? construct(() => new binding.GoogleTokenFetcher(options))
    this.#origin = adopting?.origin ?? { options }
    this.#memos = memosFor(this.#native)
    this.#background = this.#native.backgroundRefresh
    this.#quota = this.#native.quotaProjectId
    warnIgnored(this.#native)
    handOverTrust()
  }

  static fromCredentialConfig(pathOrObject, options) {
    return adopt(construct(() => binding.GoogleTokenFetcher.fromCredentialConfig(pathOrObject, options)), { config: pathOrObject, options })
  }

  static fromEnv(options) {
    const native = construct(() => binding.GoogleTokenFetcher.fromEnv(options))
    return adopt(native, { config: binding.__credentialsPath() ?? undefined, options })
  }

  /** The access token, refreshed in the background or not (default: the object's option). */
  #token(background = this.#background) {
    const memo = background ? this.#memos.background : this.#memos.wait
    return memo.get(() =>
      this.#native.tokenLease(background).then((lease) => ({ value: Object.freeze(lease.token), until: lease.refreshAt })),
    )
  }

  /** An API rejected `token`: whether to retry with another (the native core decides and bounds it). */
  #dropToken(token) {
    const retry = this.#native.invalidateToken(token)
    this.#memos.wait.dropIf(token)
    this.#memos.background.dropIf(token)
    return retry
  }

  #idToken(audience, includeEmail) {
    if (typeof audience !== 'string') {
      try {
        binding.__checkAudience(audience, 'getIdToken')
      } catch (e) {
        return Promise.reject(e)
      }
    }
    const email = Boolean(includeEmail)
    return this.#memos.id(`${email ? 1 : 0}${audience}`).get(() =>
      this.#native.idTokenLease(audience, email).then((lease) => ({ value: Object.freeze(lease.token), until: lease.refreshAt })),
    )
  }

  #dropIdToken(audience, includeEmail, token) {
    const email = Boolean(includeEmail)
    const retry = this.#native.invalidateIdToken(audience, email, token)
    this.#memos.peekId(`${email ? 1 : 0}${audience}`)?.dropIf(token)
    return retry
  }

  getAccessToken() {
    return this.#token()
  }

  getRequestHeaders() {
    const quota = this.#quota
    return this.#token().then((t) =>
      quota ? { authorization: `Bearer ${t.token}`, 'x-goog-user-project': quota } : { authorization: `Bearer ${t.token}` },
    )
  }

  getIdToken(audience, options) {
    return this.#idToken(audience, options?.includeEmail)
  }

  invalidate() {
    this.#native.invalidate()
    this.#memos.reset()
  }

  authClient(options) {
    const { loadGoogleAuthLibrary, clientClasses } = authClients()
    const gal = loadGoogleAuthLibrary(options?.googleAuthLibrary)
    const background = construct(() => binding.__authClientBackgroundRefresh(options?.backgroundRefresh))
    const { AccessClient } = clientClasses(gal)
    return new AccessClient(this.#native.clientInfo, {
      token: () => this.#token(background),
      drop: (token) => this.#dropToken(token),
      template: null,
    })
  }

  idTokenClient(audience, options) {
    binding.__checkAudience(audience, 'idTokenClient', true)
    const { loadGoogleAuthLibrary, clientClasses } = authClients()
    const gal = loadGoogleAuthLibrary(options?.googleAuthLibrary)
    const includeEmail = Boolean(options?.includeEmail)
    const { IdClient } = clientClasses(gal)
    return new IdClient(this.#native.clientInfo, audience, {
      token: () => this.#idToken(audience, includeEmail),
      drop: (token) => this.#dropIdToken(audience, includeEmail, token),
      template: null,
    })
  }

  get quotaProjectId() {
    return this.#quota
  }

  serveMetadata(options) {
    try {
      const background = binding.__metadataServerBackgroundRefresh()
      const source = { info: this.#native.clientInfo, origin: this.#origin, token: () => this.#token(background), idToken: (a, e) => this.#idToken(a, e) }
      return require('./metadata-server.js').serveMetadata(source, GoogleTokenFetcher, options)
    } catch (e) {
      return Promise.reject(e)
    }
  }

  diagnose() {
    return this.#native.diagnose()
  }

  toJSON() {
    return { type: 'GoogleTokenFetcher' }
  }

  [inspect.custom]() {
    return 'GoogleTokenFetcher {}'
  }
}

function adopt(native, origin) {
  adopting = { native, origin }
  try {
    return new GoogleTokenFetcher()
  } finally {
    adopting = null
  }
}

/** The package entry's module (index.js), whose `parent` is the module that required the package. */
let entry = null

/** Called once by index.js with its own `module`. */
function requiredThrough(module) {
  entry = module
}

/**
 * The module that required this package, for lib/auth-client.js to find the application's
 * google-auth-library: null when it is this package's own index.mjs, which requires index.js for
 * every ES module importer (the importer itself is out of sight; the main script stands for it).
 */
function requiredBy() {
  const parent = entry && entry.parent && entry.parent.filename
  return parent && parent !== require('node:path').join(__dirname, '..', 'index.mjs') ? parent : null
}

/** The google-auth-library clients (lib/auth-client.js), loaded on first use. */
let authClientsModule = null
function authClients() {
  authClientsModule ??= require('./auth-client.js')({ requiredBy: requiredBy() })
  return authClientsModule
}

module.exports = { GoogleTokenFetcher, requiredThrough }
