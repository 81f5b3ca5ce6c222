'use strict'
// aws-wif-supplier: the google-auth-library clients of GoogleTokenFetcher (authClient(),
// idTokenClient()). Loaded by lib/fetcher.js only when one of them is first asked for, so that an
// import of the package does not pay for code most applications never run.
//
// lib/fetcher.js calls this module's export once with `requiredBy`, the filename of the module that
// required the package (null for an ES module importer, whose module is out of sight).

const { inspect } = require('node:util')
const { binding, configInvalid } = require('./native.js')

module.exports = function authClients({ requiredBy }) {
  // google-auth-library clients on the native fetcher (authClient(), idTokenClient())
  //
  // The classes extend the APPLICATION's google-auth-library, resolved the way the application
  // resolves it (this package's own folder may hold another version, e.g. as a devDependency, or in
  // an npm workspace), or the module passed as `googleAuthLibrary`. google-auth-library is an
  // optional peer dependency: nothing here runs unless one of these two methods is called.

  let defaultGoogleAuthLibrary = null

  /**
   * Where the application is, the one place that decides it: the module that required this package
   * (CommonJS), then the main script (for an ES module importer, the main script alone). Never the
   * working directory (Node never resolves a require from there, and a planted
   * node_modules/google-auth-library would run), and never this package's own folder on its own
   * account (index.mjs is not the importer).
   */
  function applicationFolders() {
    const { dirname, resolve } = require('node:path')
    const folders = []
    if (requiredBy) folders.push(dirname(requiredBy))
    if (require.main && require.main.filename) folders.push(dirname(require.main.filename))
    if (process.argv[1]) folders.push(dirname(resolve(process.argv[1])))
    return [...new Set(folders)]
  }

  /** The version in the package.json of the google-auth-library whose entry point is `entry` (or undefined). */
  function versionAt(entry) {
    const { dirname, join } = require('node:path')
    const { readFileSync } = require('node:fs')
    for (let dir = dirname(entry), up = dirname(dir); dir !== up; dir = up, up = dirname(dir)) {
      try {
        const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'))
        if (pkg.name === 'google-auth-library') return typeof pkg.version === 'string' ? pkg.version : undefined
      } catch {}
    }
    return undefined
  }

  /** The version of a google-auth-library module the application loaded and passed in. */
  function versionOfLoaded(gal) {
    const mod = Object.values(require.cache).find((m) => m && m.exports === gal && m.filename)
    return mod ? versionAt(mod.filename) : undefined
  }

  /** The version of each google-auth-library module this file loaded itself, for the "too old" message. */
  const versions = new WeakMap()

  function loadGoogleAuthLibrary(explicit) {
    if (explicit != null) {
      if (typeof explicit.AuthClient !== 'function') throw configInvalid('googleAuthLibrary must be the google-auth-library module (it has no AuthClient class)', "pass require('google-auth-library')")
      return explicit
    }
    if (defaultGoogleAuthLibrary) return defaultGoogleAuthLibrary
    for (const folder of applicationFolders()) {
      let path
      try {
        path = require.resolve('google-auth-library', { paths: [folder] })
      } catch {
        continue
      }
      const gal = require(path)
      if (gal && (typeof gal === 'object' || typeof gal === 'function')) versions.set(gal, versionAt(path))
      defaultGoogleAuthLibrary = gal
      return defaultGoogleAuthLibrary
    }
    throw configInvalid(
      'authClient() and idTokenClient() return google-auth-library clients, and google-auth-library could not be found from the application (the module that required aws-wif-supplier, or the main script)',
      "install google-auth-library (10 or later) in the application, or pass it: fetcher.authClient({ googleAuthLibrary: require('google-auth-library') })",
    )
  }

  const classCache = new WeakMap()
  /** The subject token type of the native flow (the binding's). */
  const SUBJECT_TOKEN_TYPE = binding.__subjectTokenType()

  // Node loads `Headers` (undici) lazily: 10-15 ms of synchronous work, which the first request of
  // a process needs. It is paid when the event loop is next idle after the first client is built,
  // so that a client built at start-up and used later never waits for it; and if a request comes
  // first, after that request's native fetch has started, so that the two overlap (the fetch runs
  // on the native threads).
  let headersLoaded = false
  let headersLoadScheduled = false

  function loadHeaders() {
    if (headersLoaded) return
    headersLoaded = true
    // Never throw from here (it also runs as an immediate, where a throw would end the process):
    // where `Headers` is missing, the request that needs it reports that itself.
    try {
      void new Headers()
    } catch {}
  }

  function scheduleHeadersLoad() {
    if (headersLoaded || headersLoadScheduled) return
    headersLoadScheduled = true
    setImmediate(loadHeaders).unref()
  }

  /** `source.token()`, then (the first time) the load of `Headers` while the fetch runs. */
  function tokenOverlappingHeadersLoad(source) {
    const pending = source.token()
    loadHeaders()
    return pending
  }

  /** Whether a request body is a stream (never replayed, as google-auth-library does not). */
  function isStream(data) {
    const { Readable } = require('node:stream')
    return data instanceof Readable || (typeof ReadableStream === 'function' && data instanceof ReadableStream)
  }

  /** The client classes built on one google-auth-library module. */
  function clientClasses(gal) {
    const cached = classCache.get(gal)
    if (cached) return cached
    const { AuthClient } = gal
    const mergeHeaders = gal.gaxios && gal.gaxios.Gaxios && gal.gaxios.Gaxios.mergeHeaders
    if (typeof AuthClient.prototype.addUserProjectAndAuthHeaders !== 'function' || typeof mergeHeaders !== 'function') {
      const own = versions.get(gal)
      const given = own ? undefined : versionOfLoaded(gal)
      const found = own ? `; the application's is ${own}` : given ? `; the one given is ${given}` : ''
      throw configInvalid(
        `authClient() and idTokenClient() need google-auth-library 10 or later${found}`,
        'upgrade google-auth-library to 10 or later, or use ContainerAwsCredentialsSupplier with its AwsClient',
      )
    }
    const Base = typeof gal.BaseExternalAccountClient === 'function' ? gal.BaseExternalAccountClient : AuthClient

    /**
     * `Headers` with `authorization: Bearer <token>` (and `x-goog-user-project: <quota>` when given),
     * copied from a template kept per client for its current token and quota project (copying a
     * Headers object is about 4× cheaper than building one). The template is never handed out.
     */
    function headersFrom(holder, token, quota) {
      let template = holder.template
      if (template === null || template.token !== token || template.quota !== quota) {
        const headers = new Headers({ authorization: `Bearer ${token}` })
        if (quota) headers.set('x-goog-user-project', quota)
        template = { token, quota, headers }
        holder.template = template
      }
      return new Headers(template.headers)
    }

    /**
     * One request with `Authorization: Bearer <token>` (plus the quota project, if any); on a 401,
     * report the token as rejected and retry once with a fresh one if the native core allows it
     * (forced refreshes are bounded in time, process-wide), unless the body is a stream.
     */
    async function send(client, current, source, opts, quota) {
      for (let retried = false; ; retried = true) {
        const { token } = await current()
        opts.headers = mergeHeaders(opts.headers)
        client.addUserProjectAndAuthHeaders(opts.headers, headersFrom(source, token, quota))
        try {
          return await client.transporter.request(opts)
        } catch (e) {
          const res = e && e.response
          if (retried || !res || res.status !== 401 || isStream(opts.data) || isStream(res.config && res.config.data)) throw e
          if (!source.drop(token)) throw e
        }
      }
    }

    function callbackOr(promise, callback) {
      if (!callback) return promise
      promise.then(
        (r) => callback(null, r),
        (e) => callback(e, e && e.response),
      )
    }

    /** Access tokens from the native fetcher: an instance of the application's google-auth-library client. */
    class AccessClient extends Base {
      #source
      /** The last token this client handed out (announced by a 'tokens' event). */
      #seen = null

      constructor(info, source) {
        super({
          type: 'external_account',
          audience: info.audience,
          subject_token_type: SUBJECT_TOKEN_TYPE,
          token_url: info.tokenUrl,
          service_account_impersonation_url: info.serviceAccountImpersonationUrl ?? undefined,
          universe_domain: info.universeDomain,
          quota_project_id: info.quotaProjectId ?? undefined,
          scopes: info.scopes,
        })
        this.#source = source
        scheduleHeadersLoad()
        // google-auth-library's `credentials`, kept off the enumerable properties so that no
        // inspection of the object (Object.values, a logger's serializer) shows the token.
        Object.defineProperty(this, 'credentials', { enumerable: false })
      }

      /**
       * `t`, the token about to be handed out. A token this client has not handed out before is
       * announced as google-auth-library's external-account clients do: kept in `credentials` and
       * emitted as a 'tokens' event (`{ access_token, expiry_date, token_type: 'Bearer',
       * refresh_token: null, id_token: null }`), once per client and token. (Synchronous, so that
       * the cached path costs no extra promise.)
       */
      #handOut(t) {
        if (t.token !== this.#seen) {
          this.#seen = t.token
          this.credentials = { ...this.credentials, access_token: t.token, expiry_date: t.expiresAt }
          this.emit('tokens', { refresh_token: null, expiry_date: t.expiresAt, access_token: t.token, token_type: 'Bearer', id_token: null })
        }
        return t
      }

      async getAccessToken() {
        const { token } = this.#handOut(await tokenOverlappingHeadersLoad(this.#source))
        return { token, res: null }
      }

      async getRequestHeaders() {
        const { token } = this.#handOut(await tokenOverlappingHeadersLoad(this.#source))
        return headersFrom(this.#source, token, this.quotaProjectId || undefined)
      }

      request(opts, callback) {
        return callbackOr(this.requestAsync(opts), callback)
      }

      requestAsync(opts) {
        return send(this, () => tokenOverlappingHeadersLoad(this.#source).then((t) => this.#handOut(t)), this.#source, opts, this.quotaProjectId || undefined)
      }

      /** google-auth-library's own refresh path, answered by the native fetcher. */
      async refreshAccessTokenAsync() {
        const t = this.#handOut(await tokenOverlappingHeadersLoad(this.#source))
        return { access_token: t.token, expiry_date: t.expiresAt, res: null }
      }

      /** Never called: the native fetcher builds the AWS subject token itself. */
      async retrieveSubjectToken() {
        throw configInvalid('the native authClient() builds its AWS subject token natively; retrieveSubjectToken() is not available')
      }

      toJSON() {
        return { type: 'GoogleTokenFetcher.authClient' }
      }

      [inspect.custom]() {
        return 'GoogleTokenFetcher.authClient {}'
      }
    }

    /** ID tokens for one audience from the native fetcher, for Cloud Run and IAP. */
    class IdClient extends AuthClient {
      #source

      constructor(info, audience, source) {
        super({ universe_domain: info.universeDomain })
        this.#source = source
        scheduleHeadersLoad()
        this.targetAudience = audience
      }

      /** `{ token }`: the ID token this client sends as its bearer. */
      async getAccessToken() {
        const { token } = await this.#source.token()
        return { token, res: null }
      }

      async getRequestHeaders() {
        const { token } = await tokenOverlappingHeadersLoad(this.#source)
        return headersFrom(this.#source, token, undefined)
      }

      /** google-auth-library's `IdTokenProvider` shape, for this client's audience. */
      async fetchIdToken(targetAudience) {
        if (targetAudience !== undefined && targetAudience !== this.targetAudience) {
          throw configInvalid(`this ID token client is for the audience ${this.targetAudience}; use fetcher.idTokenClient(audience) for another`)
        }
        return (await this.#source.token()).token
      }

      request(opts, callback) {
        return callbackOr(this.requestAsync(opts), callback)
      }

      requestAsync(opts) {
        return send(this, () => tokenOverlappingHeadersLoad(this.#source), this.#source, opts, undefined)
      }

      toJSON() {
        return { type: 'GoogleTokenFetcher.idTokenClient' }
      }

      [inspect.custom]() {
        return 'GoogleTokenFetcher.idTokenClient {}'
      }
    }

    const classes = { AccessClient, IdClient }
    classCache.set(gal, classes)
    return classes
  }

  return { loadGoogleAuthLibrary, clientClasses }
}
