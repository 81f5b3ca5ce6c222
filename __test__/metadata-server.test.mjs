// The GCE metadata server (issue 21): `fetcher.serveMetadata()` and `aws-wif-supplier
// metadata-server`, against the loopback emulator, with real clients that no one here wrote.
//
//   1. Protocol: each rule (403 without Metadata-Flavor and with X-Forwarded-For, 405, 404,
//      Metadata-Flavor, Content-Type and `Server: aws-wif-supplier/<version>` on every answer), the
//      token, email, scopes, identity, project, numeric project, universe and recursive answers;
//      errors as a status and a short text, the code once on stderr; a debug line per request.
//   2. Node: with only GCE_METADATA_HOST / GCE_METADATA_IP set, `new GoogleAuth()` gets the Compute
//      client and an IAM-issued token; BigQuery without projectId finds the project and queries;
//      firebase-admin's applicationDefault().getAccessToken() gets the IAM-issued token (skipped
//      unless __test__/firebase is installed: .ci/run does it).
//   3. Python: google-auth's `google.auth.default()`, `refresh()`, an AuthorizedSession call and
//      `fetch_id_token()` (skipped unless __test__/python/site holds google-auth: .ci/run installs it).
//   4. Load: 4 client processes x 10 concurrent token requests: one STS and one IAM call.
//   5. The CLI's life cycle: ready line, SIGTERM, port in use, missing or bad configuration.
//
// The client processes run with --require fixtures/loopback-only.cjs (Python: the same guard in
// adc_check.py): a connection or lookup for anything but loopback is refused before a packet
// leaves and reported; the tests assert none was. The guard itself is checked inside a network
// namespace (where a packet could not leave even if it failed), when one can be made.
//
// Run: node --test __test__/metadata-server.test.mjs

import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, afterEach, before, beforeEach, describe, test } from 'node:test'
import { DEFAULT_CONFIG, hermeticEnv, makeProcessHermetic, startEmulator, verifyJwt } from './emulator/index.mjs'
import { netnsUnavailableReason, runInNetns } from './netns.mjs'
import { stackPaths } from './stack.mjs'
import { CLOUD_PLATFORM, QUERY, gcloudCredConfig, here, runCommand, runNode } from './support.mjs'

makeProcessHermetic()
const { GoogleTokenFetcher } = createRequire(import.meta.url)('../index.js')

const TEST_TIMEOUT = { timeout: 60_000 }
const SA = DEFAULT_CONFIG.serviceAccount
const BIGQUERY = 'https://www.googleapis.com/auth/bigquery'
const V1 = '/computeMetadata/v1'
const GUARD = here('fixtures/loopback-only.cjs')
const VERSION = JSON.parse(readFileSync(here('../package.json'), 'utf8')).version
const PYTHON_SITE = process.env.WIF_TEST_PYTHON_SITE ?? here('python/site')

let em
let dir
let seq = 0

before(async () => {
  em = await startEmulator()
  dir = mkdtempSync(join(tmpdir(), 'aws-wif-metadata-'))
  mkdirSync(join(dir, 'home'))
})
beforeEach(() => {
  em.reset()
  em.config = { ...DEFAULT_CONFIG }
})
afterEach(() => {
  for (const key of ['AWS_CONTAINER_CREDENTIALS_FULL_URI', 'AWS_REGION', 'AWS_WIF_SUPPLIER_LOG', 'GOOGLE_CLOUD_PROJECT']) delete process.env[key]
})
after(async () => {
  await em?.close()
  rmSync(dir, { recursive: true, force: true })
})

/** AWS variables no other test used (cold caches), as a map for a child and set in this process. */
function freshEnv() {
  const vars = { AWS_CONTAINER_CREDENTIALS_FULL_URI: `${em.url}/v2/credentials/metadata-${process.pid}-${++seq}`, AWS_REGION: 'us-east-1' }
  Object.assign(process.env, vars)
  return vars
}

const credConfig = (overrides) => gcloudCredConfig(em.url, { audience: DEFAULT_CONFIG.audience, serviceAccount: SA, ...overrides })

function configFile(overrides) {
  const path = join(dir, `config-${++seq}.json`)
  writeFileSync(path, JSON.stringify(credConfig(overrides)))
  return path
}

/** A fresh fetcher (from a configuration file) and its metadata server; closed by the caller. */
async function serve(serverOptions, overrides) {
  freshEnv()
  const fetcher = GoogleTokenFetcher.fromCredentialConfig(configFile(overrides))
  return { fetcher, server: await fetcher.serveMetadata(serverOptions) }
}

/** GET `path` on the server with Metadata-Flavor (unless headers say otherwise); every answer must carry the flavor and a Content-Type. */
async function get(server, path, { headers = { 'Metadata-Flavor': 'Google' }, method = 'GET' } = {}) {
  const res = await fetch(`${server.url}${path}`, { headers, method })
  const body = await res.text()
  assert.equal(res.headers.get('metadata-flavor'), 'Google', `${method} ${path}: Metadata-Flavor`)
  assert.equal(res.headers.get('server'), `aws-wif-supplier/${VERSION}`, `${method} ${path}: Server (how doctor recognises us)`)
  const type = res.headers.get('content-type')
  assert.match(type ?? '', /^(application\/json|text\/plain; charset=utf-8)$/, `${method} ${path}: Content-Type ${type}`)
  const json = type === 'application/json' ? JSON.parse(body) : undefined
  return { status: res.status, type, body, json }
}

const exchanges = () => [em.count('sts'), em.count('iam')]

/** Collect what this process writes to stderr while `fn` runs. */
async function capturingStderr(fn) {
  const write = process.stderr.write
  let text = ''
  process.stderr.write = (chunk, ...rest) => {
    text += chunk
    return write.call(process.stderr, chunk, ...rest)
  }
  try {
    await fn()
  } finally {
    process.stderr.write = write
  }
  return text
}

/** The env of a client process: hermetic, a home of its own, both metadata variables on the server. */
function clientEnv(server, extra = {}) {
  const hostPort = `${server.host}:${server.port}`
  return hermeticEnv({ HOME: join(dir, 'home'), GCE_METADATA_HOST: hostPort, GCE_METADATA_IP: hostPort, ...extra })
}

// ---------------------------------------------------------------------------------------------

describe('protocol', () => {
  test('403 without Metadata-Flavor: Google or with X-Forwarded-For; 405 for other methods; 404 for unknown paths; nothing fetched', TEST_TIMEOUT, async () => {
    const { server } = await serve()
    try {
      const token = `${V1}/instance/service-accounts/default/token`
      assert.equal((await get(server, token, { headers: {} })).status, 403)
      assert.equal((await get(server, token, { headers: { 'Metadata-Flavor': 'google' } })).status, 403)
      assert.equal((await get(server, token, { headers: { 'Metadata-Flavor': 'Google', 'X-Forwarded-For': '10.0.0.1' } })).status, 403)
      assert.equal((await get(server, token, { method: 'POST' })).status, 405)
      assert.equal((await get(server, token, { method: 'PUT' })).status, 405)
      for (const path of ['/nope', `${V1}/instance/nope`, `${V1}/instance/service-accounts/other@p.iam.gserviceaccount.com/token`, `${V1}/instance/service-accounts/default/token/`, '/computeMetadata/v2/']) {
        assert.equal((await get(server, path)).status, 404, path)
      }
      assert.deepEqual(em.requests, [], 'no refused request reached AWS or Google')
    } finally {
      await server.close()
    }
  })

  test('directories, with and without the trailing slash (gcp-metadata detects GCE with /instance)', TEST_TIMEOUT, async () => {
    const { server } = await serve()
    try {
      assert.deepEqual(await get(server, '/'), { status: 200, type: 'text/plain; charset=utf-8', body: 'computeMetadata/\n', json: undefined })
      assert.equal((await get(server, `${V1}/`)).body, 'instance/\nproject/\nuniverse/\n')
      assert.equal((await get(server, `${V1}/instance`)).status, 200)
      assert.equal((await get(server, `${V1}/instance/`)).body, 'service-accounts/\n')
      assert.equal((await get(server, `${V1}/instance/service-accounts/`)).body, `default/\n${SA}/\n`)
      assert.deepEqual((await get(server, `${V1}/instance/service-accounts/default/`)).body.split('\n'), ['aliases', 'email', 'identity', 'scopes', 'token', ''])
    } finally {
      await server.close()
    }
  })

  test('token: {access_token, expires_in, token_type} from the fetcher (the IAM token), for default and the email; one exchange', TEST_TIMEOUT, async () => {
    const { fetcher, server } = await serve()
    try {
      const a = await get(server, `${V1}/instance/service-accounts/default/token`)
      assert.equal(a.status, 200)
      assert.equal(a.type, 'application/json')
      assert.deepEqual(Object.keys(a.json).sort(), ['access_token', 'expires_in', 'token_type'])
      assert.equal(a.json.token_type, 'Bearer')
      const record = em.googleTokens.get(a.json.access_token)
      assert.equal(record?.kind, 'sa')
      assert.equal(record.principal, SA)
      assert.ok(a.json.expires_in > 3500 && a.json.expires_in <= 3600, `expires_in ${a.json.expires_in}`)
      const b = await get(server, `${V1}/instance/service-accounts/${SA}/token`)
      assert.equal(b.json.access_token, a.json.access_token)
      assert.equal((await fetcher.getAccessToken()).token, a.json.access_token, 'the fetcher and the server share one cache')
      assert.deepEqual(exchanges(), [1, 1])
    } finally {
      await server.close()
    }
  })

  test('token?scopes=: the fetcher\'s own scopes share its token; other scopes get a token of those scopes, one exchange per scope set', TEST_TIMEOUT, async () => {
    const { server } = await serve()
    try {
      const own = (await get(server, `${V1}/instance/service-accounts/default/token`)).json.access_token
      assert.equal((await get(server, `${V1}/instance/service-accounts/default/token?scopes=${CLOUD_PLATFORM}`)).json.access_token, own)
      assert.deepEqual(exchanges(), [1, 1])
      const path = `${V1}/instance/service-accounts/default/token?scopes=${BIGQUERY},${CLOUD_PLATFORM}`
      const answers = await Promise.all(Array.from({ length: 5 }, () => get(server, path)))
      const tokens = new Set(answers.map((a) => a.json.access_token))
      assert.equal(tokens.size, 1)
      const [scoped] = tokens
      assert.notEqual(scoped, own)
      assert.deepEqual(em.googleTokens.get(scoped).scopes, [BIGQUERY, CLOUD_PLATFORM])
      // The same set in another order and separator is the same set.
      assert.equal((await get(server, `${V1}/instance/service-accounts/default/token?scopes=${CLOUD_PLATFORM}%20${BIGQUERY}`)).json.access_token, scoped)
      assert.deepEqual(exchanges(), [2, 2])
    } finally {
      await server.close()
    }
  })

  test('token?scopes= on a fetcher made from options or from a configuration object: a fetcher of the same options with those scopes', TEST_TIMEOUT, async () => {
    for (const make of [
      () => new GoogleTokenFetcher({ audience: DEFAULT_CONFIG.audience, tokenUrl: `${em.url}/v1/token`, serviceAccountImpersonationUrl: credConfig().service_account_impersonation_url }),
      () => GoogleTokenFetcher.fromCredentialConfig(credConfig()),
    ]) {
      em.reset()
      freshEnv()
      const server = await make().serveMetadata()
      try {
        const t = await get(server, `${V1}/instance/service-accounts/default/token?scopes=${BIGQUERY}`)
        assert.equal(t.status, 200, t.body)
        assert.deepEqual(em.googleTokens.get(t.json.access_token).scopes, [BIGQUERY])
        assert.equal(em.googleTokens.get(t.json.access_token).principal, SA)
      } finally {
        await server.close()
      }
    }
  })

  test('email, scopes (one per line), recursive and alt= forms, project, numeric project (from the pool audience), universe', TEST_TIMEOUT, async () => {
    const { server } = await serve()
    try {
      const sa = `${V1}/instance/service-accounts/default`
      assert.equal((await get(server, `${sa}/email`)).body, SA)
      assert.equal((await get(server, `${sa}/email?alt=json`)).json, SA)
      assert.equal((await get(server, `${sa}/scopes`)).body, `${CLOUD_PLATFORM}\n`)
      assert.deepEqual((await get(server, `${sa}/scopes?alt=json`)).json, [CLOUD_PLATFORM])
      const summary = { aliases: ['default'], email: SA, scopes: [CLOUD_PLATFORM] }
      assert.deepEqual((await get(server, `${sa}/?recursive=true`)).json, summary)
      assert.deepEqual((await get(server, `${V1}/instance/service-accounts/${SA}/?recursive=true`)).json, summary)
      assert.deepEqual((await get(server, `${V1}/instance/service-accounts/?recursive=true`)).json, { default: summary, [SA]: summary })
      assert.equal((await get(server, `${sa}/?recursive=true&alt=text`)).body, `aliases/0 default\nemail ${SA}\nscopes/0 ${CLOUD_PLATFORM}\n`)
      assert.equal((await get(server, `${V1}/project/project-id`)).body, 'my-project')
      const numeric = await get(server, `${V1}/project/numeric-project-id`)
      assert.equal(numeric.body, '123456')
      assert.equal((await get(server, `${V1}/project/numeric-project-id?alt=json`)).json, 123456)
      assert.deepEqual((await get(server, `${V1}/project/?recursive=true`)).json, { numericProjectId: 123456, projectId: 'my-project' })
      assert.equal((await get(server, `${V1}/universe/universe-domain`)).body, 'googleapis.com')
      assert.equal((await get(server, `${V1}/instance/?recursive=true`)).json.serviceAccounts.default.email, SA)
      assert.equal((await get(server, `${sa}/email?alt=yaml`)).status, 400)
      assert.deepEqual(em.requests, [], 'no token was needed')
    } finally {
      await server.close()
    }
  })

  test('project: the projectId option, else GOOGLE_CLOUD_PROJECT, else the email\'s; without impersonation none (404)', TEST_TIMEOUT, async () => {
    const option = await serve({ projectId: 'from-option' })
    assert.equal((await get(option.server, `${V1}/project/project-id`)).body, 'from-option')
    await option.server.close()
    process.env.GOOGLE_CLOUD_PROJECT = 'from-env'
    const env = await serve()
    assert.equal((await get(env.server, `${V1}/project/project-id`)).body, 'from-env')
    await env.server.close()
    delete process.env.GOOGLE_CLOUD_PROJECT
    const none = await serve({}, { service_account_impersonation_url: undefined, service_account_impersonation: undefined })
    try {
      assert.equal((await get(none.server, `${V1}/project/project-id`)).status, 404)
      assert.equal((await get(none.server, `${V1}/instance/service-accounts/`)).body, 'default/\n')
      const t = await get(none.server, `${V1}/instance/service-accounts/default/token`)
      assert.equal(em.googleTokens.get(t.json.access_token)?.kind, 'sts', 'the federated token')
      assert.equal((await get(none.server, `${V1}/instance/service-accounts/default/identity?audience=x`)).status, 404, 'ID tokens need a service account')
    } finally {
      await none.server.close()
    }
  })

  test('identity?audience=: a JWT the emulator issued for that audience; format=full adds the email; cached; no audience: 400', TEST_TIMEOUT, async () => {
    const { server } = await serve()
    try {
      const audience = `${em.url}/run/svc`
      const path = `${V1}/instance/service-accounts/default/identity?audience=${encodeURIComponent(audience)}`
      const standard = await get(server, path)
      assert.equal(standard.status, 200)
      assert.equal(standard.type, 'text/plain; charset=utf-8')
      const claims = verifyJwt(em.idTokenKey, standard.body)
      assert.equal(claims?.aud, audience)
      assert.equal(claims.email, undefined)
      const full = await get(server, `${path}&format=full&licenses=FALSE`)
      assert.equal(verifyJwt(em.idTokenKey, full.body)?.email, SA)
      assert.equal((await get(server, path)).body, standard.body, 'cached per audience')
      assert.equal(em.count('iamIdToken'), 2)
      assert.equal((await get(server, `${V1}/instance/service-accounts/default/identity`)).status, 400)
      assert.equal((await get(server, `${path}&format=other`)).status, 400)
    } finally {
      await server.close()
    }
  })

  test('errors: a status and a short text to the client, the code and hint once per code on stderr, no secret', TEST_TIMEOUT, async () => {
    const { server } = await serve()
    try {
      em.setAlways('sts', { status: 400, body: { error: 'invalid_grant', error_description: 'The given credential is rejected by the attribute condition.' } })
      let answers
      const stderr = await capturingStderr(async () => {
        answers = [await get(server, `${V1}/instance/service-accounts/default/token`), await get(server, `${V1}/instance/service-accounts/default/token`)]
      })
      for (const a of answers) {
        assert.equal(a.status, 500)
        assert.match(a.body, /^STS_EXCHANGE_FAILED: /)
      }
      const lines = stderr.split('\n').filter((l) => l.includes('metadata server'))
      assert.equal(lines.length, 1, stderr)
      assert.match(lines[0], /^\[aws-wif-supplier\] error: metadata server: STS_EXCHANGE_FAILED/)
      const awsSecret = [...em.issued.values()].map((r) => r.secretAccessKey)
      for (const secret of awsSecret) assert.ok(!stderr.includes(secret) && !answers.some((a) => a.body.includes(secret)))

      em.setAlways('sts', { status: 503 })
      const retryable = await get(server, `${V1}/instance/service-accounts/default/token`)
      assert.equal(retryable.status, 503, retryable.body)
    } finally {
      await server.close()
    }
  })

  test('AWS_WIF_SUPPLIER_LOG=debug: one line per request (method, path without the query, status, time)', TEST_TIMEOUT, async () => {
    const { server } = await serve()
    try {
      process.env.AWS_WIF_SUPPLIER_LOG = 'debug'
      const stderr = await capturingStderr(async () => {
        await get(server, `${V1}/project/project-id`)
        await get(server, `${V1}/instance/service-accounts/default/identity?audience=secret-audience`, { headers: {} })
      })
      const lines = stderr.split('\n').filter((l) => l.includes('debug: metadata '))
      assert.equal(lines.length, 2, stderr)
      assert.match(lines[0], /^\[aws-wif-supplier\] debug: metadata GET \/computeMetadata\/v1\/project\/project-id 200 \d+\.\d ms$/)
      assert.match(lines[1], / 403 /)
      assert.ok(!stderr.includes('secret-audience'), 'no query in the log')
    } finally {
      await server.close()
    }
  })
})

// ---------------------------------------------------------------------------------------------

describe('clients', () => {
  const netnsReason = netnsUnavailableReason()
  test('the loopback guard of the client processes refuses other addresses (checked inside a network namespace)', { ...TEST_TIMEOUT, skip: netnsReason ?? false }, async () => {
    const script = join(dir, 'guard-probe.mjs')
    writeFileSync(script, `try { await fetch('http://169.254.169.254/computeMetadata/v1/instance', { headers: { 'Metadata-Flavor': 'Google' } }); console.log('reached') } catch (e) { console.log('refused', e.cause?.code ?? e.code) }\n`)
    // The script must lie where the namespace sees it: any path works for runInNetns (no chroot).
    const run = await runInNetns(script, { env: hermeticEnv({ NODE_OPTIONS: `--require ${GUARD}` }) })
    assert.match(run.stderr, /LOOPBACK-GUARD 169\.254\.169\.254/)
    assert.match(run.stdout, /^refused ENETUNREACH/)
  })

  test(`Node: new GoogleAuth() with only GCE_METADATA_HOST/IP gets the Compute client and an IAM token; BigQuery without projectId finds the project and queries`, TEST_TIMEOUT, async () => {
    const { fetcher, server } = await serve()
    try {
      const run = await runNode(here('fixtures/metadata-adc.mjs'), {
        args: [stackPaths.googleAuthLibrary, stackPaths.bigquery, em.url, QUERY],
        env: clientEnv(server, { NODE_OPTIONS: `--require ${GUARD}` }),
      })
      assert.equal(run.code, 0, run.stderr)
      assert.doesNotMatch(run.stderr, /LOOPBACK-GUARD/)
      const r = run.result
      assert.equal(r.compute, true, r.clientName)
      assert.equal(r.token, (await fetcher.getAccessToken()).token)
      assert.equal(em.googleTokens.get(r.token).kind, 'sa')
      assert.deepEqual([r.projectId, r.bigqueryProject, r.email, r.principal], ['my-project', 'my-project', SA, SA])
      assert.deepEqual(em.requests.filter((q) => q.route === 'bigquery').map((q) => q.path.split('?')[0]), ['/bigquery/v2/projects/my-project/queries'])
    } finally {
      await server.close()
    }
  })

  // firebase-admin 14 needs Node 22 and google-auth-library 11: its own stack, run on that stack's Node.
  const FIREBASE = here('firebase')
  const firebaseNode = join(FIREBASE, 'node_modules', '.bin', 'node')
  const FIREBASE_SCOPES = [CLOUD_PLATFORM, ...['firebase.database', 'firebase.messaging', 'identitytoolkit', 'userinfo.email'].map((s) => `https://www.googleapis.com/auth/${s}`)]
  const firebaseSkip = !existsSync(join(FIREBASE, 'node_modules', 'firebase-admin', 'package.json')) || !existsSync(firebaseNode)
    ? `the firebase-admin stack is not installed (npm ci --prefix __test__/firebase --omit=optional; .ci/run does it)`
    : false
  test('firebase-admin: applicationDefault().getAccessToken() with only GCE_METADATA_HOST/IP gets the IAM-issued token', { ...TEST_TIMEOUT, skip: firebaseSkip }, async () => {
    const { server } = await serve()
    try {
      const run = await runCommand(firebaseNode, ['--require', GUARD, here('fixtures/metadata-firebase.cjs'), join(FIREBASE, 'package.json')], { env: clientEnv(server) })
      assert.equal(run.code, 0, run.stderr)
      assert.doesNotMatch(run.stderr, /LOOPBACK-GUARD/)
      const r = run.result
      assert.match(r.version, /^14\./)
      // firebase-admin asks for its own scopes (gal's Compute client sends them as ?scopes=): a token of those scopes.
      const record = em.googleTokens.get(r.access_token)
      assert.deepEqual([record?.kind, record?.principal], ['sa', SA])
      assert.deepEqual([...record.scopes].sort(), FIREBASE_SCOPES)
      assert.ok(Number.isInteger(r.expires_in) && r.expires_in > 3500 && r.expires_in <= 3600, `expires_in ${r.expires_in}`)
      assert.deepEqual([r.compute, r.projectId], [true, 'my-project'])
      assert.deepEqual(exchanges(), [1, 1])
    } finally {
      await server.close()
    }
  })

  const python = spawnSync('python3', ['--version'], { stdio: 'ignore' }).status === 0
  const pythonSkip = !python
    ? 'python3 is not installed'
    : !existsSync(join(PYTHON_SITE, 'google', 'auth'))
      ? `google-auth for Python is not installed in ${PYTHON_SITE} (python3 -m pip install --target __test__/python/site -r __test__/python/requirements.txt; .ci/run does it)`
      : false
  test('Python google-auth: default() gives compute credentials and the project; refresh, an AuthorizedSession call, fetch_id_token for the Cloud Run stand-in', { ...TEST_TIMEOUT, skip: pythonSkip }, async () => {
    const { fetcher, server } = await serve()
    try {
      const service = `${em.url}/run/svc`
      const run = await runCommand('python3', [here('python/adc_check.py'), em.url, service], { env: clientEnv(server, { PYTHONPATH: PYTHON_SITE, PYTHONNOUSERSITE: '1', PYTHONDONTWRITEBYTECODE: '1' }) })
      assert.equal(run.code, 0, run.stderr)
      assert.doesNotMatch(run.stderr, /LOOPBACK-GUARD/)
      const r = run.result
      assert.deepEqual([r.compute, r.project, r.email], [true, 'my-project', SA])
      assert.equal(r.token, (await fetcher.getAccessToken()).token)
      assert.equal(em.googleTokens.get(r.token).kind, 'sa')
      assert.deepEqual([r.bigqueryStatus, r.principal], [200, SA])
      assert.equal(verifyJwt(em.idTokenKey, r.idToken)?.aud, service)
      assert.equal(r.runStatus, 200)
      assert.equal(r.run.aud, service)
      assert.deepEqual(exchanges(), [1, 1])
    } finally {
      await server.close()
    }
  })

  test('load: 4 client processes x 10 concurrent token requests, one STS and one IAM call, one token', { timeout: 90_000 }, async () => {
    const { server } = await serve()
    try {
      const script = join(dir, 'load-client.mjs')
      writeFileSync(
        script,
        `const url = process.env.GCE_METADATA_HOST
const answers = await Promise.all(Array.from({ length: 10 }, () => fetch('http://' + url + '/computeMetadata/v1/instance/service-accounts/default/token', { headers: { 'Metadata-Flavor': 'Google' } }).then(async (r) => [r.status, (await r.json()).access_token])))
console.log(JSON.stringify(answers))
`,
      )
      const runs = await Promise.all(Array.from({ length: 4 }, () => runNode(script, { env: clientEnv(server, { NODE_OPTIONS: `--require ${GUARD}` }) })))
      const answers = runs.flatMap((run) => {
        assert.equal(run.code, 0, run.stderr)
        assert.doesNotMatch(run.stderr, /LOOPBACK-GUARD/)
        return run.result
      })
      assert.equal(answers.length, 40)
      assert.ok(answers.every(([status]) => status === 200))
      assert.equal(new Set(answers.map(([, token]) => token)).size, 1)
      assert.deepEqual(exchanges(), [1, 1])
    } finally {
      await server.close()
    }
  })
})

// ---------------------------------------------------------------------------------------------

const CLI = here('../bin/aws-wif-supplier.js')

/** Start the CLI; resolves once it printed its ready line (`{ child, url, exited }`), or when it exited first. */
function startCli(args, env) {
  const child = spawn(process.execPath, [CLI, 'metadata-server', ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  const exited = new Promise((resolve) => child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr })))
  child.stderr.on('data', (d) => (stderr += d))
  const ready = new Promise((resolve) => {
    child.stdout.on('data', (d) => {
      stdout += d
      const m = /listening on (http:\/\/\S+)/.exec(stdout)
      if (m) resolve({ child, url: m[1], exited })
    })
    exited.then((run) => resolve({ child, url: null, exited, run }))
  })
  const timer = setTimeout(() => child.kill('SIGKILL'), 30_000)
  exited.then(() => clearTimeout(timer))
  return ready
}

const cliEnv = (extra = {}) => hermeticEnv({ ...freshEnv(), ...extra })

describe('CLI: aws-wif-supplier metadata-server', () => {
  for (const signal of ['SIGTERM', 'SIGINT']) {
    test(`ready line, serves tokens, ${signal}: exit 0`, TEST_TIMEOUT, async () => {
      const { child, url, exited, run } = await startCli(['--config', configFile(), '--port', '0', '--project', 'cli-project'], cliEnv())
      assert.ok(url, run?.stderr)
      assert.match(url, /^http:\/\/127\.0\.0\.1:\d+$/)
      const server = { url }
      assert.equal((await get(server, `${V1}/project/project-id`)).body, 'cli-project')
      const t = await get(server, `${V1}/instance/service-accounts/default/token`)
      assert.equal(em.googleTokens.get(t.json.access_token)?.kind, 'sa')
      child.kill(signal)
      const done = await exited
      assert.deepEqual([done.code, done.signal], [0, null], done.stderr)
      assert.equal(done.stdout.trim().split('\n').length, 1)
      assert.equal(done.stderr, '')
    })
  }

  test('GOOGLE_APPLICATION_CREDENTIALS and GOOGLE_CLOUD_PROJECT when no --config and --project', TEST_TIMEOUT, async () => {
    const { child, url, exited } = await startCli([], cliEnv({ GOOGLE_APPLICATION_CREDENTIALS: configFile(), GOOGLE_CLOUD_PROJECT: 'env-project' }))
    assert.equal((await get({ url }, `${V1}/project/project-id`)).body, 'env-project')
    assert.equal((await get({ url }, `${V1}/instance/service-accounts/default/email`)).body, SA)
    child.kill('SIGTERM')
    assert.equal((await exited).code, 0)
  })

  test('a port in use: exit 1, one line on stderr naming it, no stack', TEST_TIMEOUT, async () => {
    const holder = createServer()
    await new Promise((resolve) => holder.listen(0, '127.0.0.1', resolve))
    try {
      const { port } = holder.address()
      const { url, run } = await startCli(['--config', configFile(), '--port', String(port)], cliEnv())
      assert.equal(url, null)
      assert.equal(run.code, 1)
      assert.equal(run.stdout, '')
      const lines = run.stderr.trim().split('\n')
      assert.equal(lines.length, 1, run.stderr)
      assert.match(lines[0], new RegExp(`^aws-wif-supplier metadata-server: cannot listen on 127\\.0\\.0\\.1:${port}: the address is in use \\(EADDRINUSE\\)$`))
    } finally {
      holder.close()
    }
  })

  test('no configuration, an unreadable or invalid one, a bad flag: non-zero, one line, nothing fetched', TEST_TIMEOUT, async () => {
    const bad = join(dir, 'bad.json')
    writeFileSync(bad, '{ not json')
    const cases = [
      [[], 1, /no credential configuration: pass --config FILE or set GOOGLE_APPLICATION_CREDENTIALS/],
      [['--config', join(dir, 'missing.json')], 1, /the credential configuration cannot be used: CONFIG_INVALID/],
      [['--config', bad], 1, /the credential configuration cannot be used: CONFIG_INVALID/],
      [['--port', 'eighty'], 2, /--port must be a number/],
      [['--bogus'], 2, /^usage: /],
      [['--config='], 2, /--config needs a value, and its value is empty/],
    ]
    for (const [args, code, pattern] of cases) {
      const { url, run } = await startCli(args, cliEnv())
      assert.equal(url, null, JSON.stringify(args))
      assert.equal(run.code, code, `${JSON.stringify(args)}: ${run.stderr}`)
      assert.match(run.stderr.trim().split('\n')[0], pattern)
      if (code === 1) assert.equal(run.stderr.trim().split('\n').length, 1, run.stderr)
      assert.doesNotMatch(run.stderr, /\n\s+at /, 'no stack trace')
    }
    assert.deepEqual(em.requests, [])
  })
})
