// Every profile kind fromNodeProviderChain() resolves, through ContainerAwsCredentialsSupplier:
// SSO (sso_session and the legacy form, the cached token in ~/.aws/sso/cache, aws-config's SSO
// provider on the crate's HTTP layer) against an SSO portal on loopback reached through
// AWS_ENDPOINT_URL_SSO; login_session (`aws login`, aws-config's credentials-login provider: the
// cached session in ~/.aws/login/cache, refreshed against an AWS Sign-In mock on loopback reached
// through AWS_ENDPOINT_URL_SIGNIN); and credential_process (the crate's own link, src/aws/profile/process/).
//
// Each scenario runs in its own child process (the supplier caches process-wide, and aws-config
// reads HOME and AWS_ENDPOINT_URL_SSO from the process environment), with a hermetic env, a temp
// HOME, AWS_EC2_METADATA_DISABLED=true and nothing but loopback to talk to.
//
// Run: node --test __test__/profiles.test.mjs

import assert from 'node:assert/strict'
import { createHash, generateKeyPairSync } from 'node:crypto'
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { hermeticEnv, makeProcessHermetic, startEmulator } from './emulator/index.mjs'
import { CREDENTIAL_CODES, here, pollUntil, runNode } from './support.mjs'

makeProcessHermetic()

const CHILD = here('fixtures/profile-child.mjs')
const TEST_TIMEOUT = { timeout: 30_000 }
const ACCOUNT = '123456789012'
const FUTURE = '2099-01-01T00:00:00Z'
const PAST = '2020-01-01T00:00:00Z'
const MARKERS = ['MARKER-SSO-TOKEN', 'MARKER-STDERR', 'MARKER-STDOUT', 'MARKER-LOGIN-REFRESH', 'PRIVATE KEY']

/** SSO cache tokens the portal accepts, and the role each may assume. */
const PORTAL_TOKENS = new Map([
  ['MARKER-SSO-TOKEN-session', { role: 'Reader', accessKeyId: 'ASIASSOSESSIONEXAMPLE' }],
  ['MARKER-SSO-TOKEN-legacy', { role: 'Reader', accessKeyId: 'ASIASSOLEGACYEXAMPLE' }],
  ['MARKER-SSO-TOKEN-denied', { role: 'Denied' }],
  ['MARKER-SSO-TOKEN-refreshed', { role: 'Reader', accessKeyId: 'ASIASSOREFRESHEDEXAMPLE' }],
])

let home
let portal
let portalUrl
const portalRequests = []

function startPortal() {
  return new Promise((resolve) => {
    const server = createServer((req, res) => {
      const url = new URL(req.url, 'http://portal')
      const token = req.headers['x-amz-sso_bearer_token']
      portalRequests.push({ method: req.method, path: url.pathname, account: url.searchParams.get('account_id'), role: url.searchParams.get('role_name'), token })
      const grant = PORTAL_TOKENS.get(token)
      const send = (status, body, type) => {
        res.writeHead(status, { 'content-type': 'application/json', ...(type ? { 'x-amzn-errortype': type } : {}) })
        res.end(JSON.stringify(body))
      }
      if (req.method === 'POST' && url.pathname === '/v1/token') return signin(req, send)
      if (req.method === 'POST' && url.pathname === '/token') return oidc(req, send)
      if (req.method !== 'GET' || url.pathname !== '/federation/credentials') return send(404, { message: 'no such route' }, 'ResourceNotFoundException')
      if (!grant) return send(401, { message: 'Session token not found or invalid' }, 'UnauthorizedException')
      if (url.searchParams.get('account_id') !== ACCOUNT || grant.role === 'Denied' || url.searchParams.get('role_name') !== grant.role) {
        return send(403, { message: 'No access' }, 'ForbiddenException')
      }
      send(200, {
        roleCredentials: {
          accessKeyId: grant.accessKeyId,
          secretAccessKey: `MARKER-SSO-SECRET-${grant.accessKeyId}`,
          sessionToken: `MARKER-SSO-SESSION-${grant.accessKeyId}`,
          expiration: Date.now() + 3_600_000,
        },
      })
    })
    server.listen(0, '127.0.0.1', () => resolve(server))
  })
}

/** AWS Sign-In CreateOAuth2Token (refresh_token grant), as `aws login` sessions refresh. */
const signinRequests = []
function signin(req, send) {
  let body = ''
  req.on('data', (chunk) => (body += chunk))
  req.on('end', () => {
    const input = JSON.parse(body || '{}')
    signinRequests.push({ dpop: typeof req.headers.dpop === 'string' && req.headers.dpop.split('.').length === 3, ...input })
    if (input.grantType !== 'refresh_token') return send(400, { error: 'INVALID_REQUEST', message: 'bad grant' }, 'ValidationException')
    if (input.refreshToken !== 'MARKER-LOGIN-REFRESH-good') return send(400, { error: 'TOKEN_EXPIRED', message: 'expired' }, 'AccessDeniedException')
    send(200, {
      accessToken: { accessKeyId: 'ASIALOGINREFRESHED', secretAccessKey: 'MARKER-LOGIN-SECRET-refreshed', sessionToken: 'MARKER-LOGIN-SESSION-refreshed' },
      tokenType: 'aws_sigv4',
      expiresIn: 900,
      refreshToken: 'MARKER-LOGIN-REFRESH-next',
    })
  })
}

/** SSO OIDC CreateToken (refresh_token grant), as an sso_session token about to expire is refreshed. */
const oidcRequests = []
function oidc(req, send) {
  let body = ''
  req.on('data', (chunk) => (body += chunk))
  req.on('end', () => {
    const input = JSON.parse(body || '{}')
    oidcRequests.push(input)
    if (input.grantType !== 'refresh_token' || input.refreshToken !== 'MARKER-SSO-TOKEN-refresh' || input.clientSecret !== 'MARKER-SSO-TOKEN-client-secret') {
      return send(400, { error: 'invalid_grant' }, 'InvalidGrantException')
    }
    send(200, { accessToken: 'MARKER-SSO-TOKEN-refreshed', expiresIn: 3600, refreshToken: 'MARKER-SSO-TOKEN-refresh2', tokenType: 'Bearer' })
  })
}

const sha1 = (text) => createHash('sha1').update(text).digest('hex')
const inAMinute = () => new Date(Date.now() + 60_000).toISOString().replace(/\.\d+Z$/, 'Z')
const sha256 = (text) => createHash('sha256').update(text).digest('hex')
const DPOP_KEY = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'sec1', format: 'pem' })

/** Write ~/.aws/login/cache/<sha256 of the session ARN>.json, as `aws login` leaves it. */
function cacheLogin(arn, { accessKeyId, expiresAt, refreshToken }) {
  const path = join(home, '.aws', 'login', 'cache', `${sha256(arn)}.json`)
  writeFileSync(
    path,
    JSON.stringify({
      accessToken: { accessKeyId, secretAccessKey: `MARKER-LOGIN-SECRET-${accessKeyId}`, sessionToken: `MARKER-LOGIN-SESSION-${accessKeyId}`, accountId: ACCOUNT, expiresAt },
      tokenType: 'aws_sigv4',
      refreshToken,
      clientId: 'arn:aws:signin:::devtools/same-device',
      dpopKey: DPOP_KEY,
    }),
  )
  return path
}
const LOGIN_ARN = (who) => `arn:aws:iam::${ACCOUNT}:user/${who}`
let refreshingCache

/** Write ~/.aws/sso/cache/<sha1 of key>.json. */
function cacheToken(key, accessToken, expiresAt, startUrl, refresh = {}) {
  const path = join(home, '.aws', 'sso', 'cache', `${sha1(key)}.json`)
  writeFileSync(path, JSON.stringify({ accessToken, expiresAt, region: 'us-east-1', startUrl, ...refresh }))
  return path
}
let refreshingSsoCache
let hangPidFile
let backgroundPidFile

before(async () => {
  home = mkdtempSync(join(tmpdir(), 'aws-wif-profiles-'))
  mkdirSync(join(home, '.aws', 'sso', 'cache'), { recursive: true })
  mkdirSync(join(home, '.aws', 'login', 'cache'), { recursive: true })
  portal = await startPortal()
  portalUrl = `http://127.0.0.1:${portal.address().port}`

  const script = (name, body) => {
    const path = join(home, name)
    writeFileSync(path, `#!/bin/sh\n${body}\n`)
    chmodSync(path, 0o755)
    return path
  }
  const ok = script('cred helper ok.sh', `[ "$1" = "--account" ] || exit 9\necho '{"Version": 1, "AccessKeyId": "ASIAPROCESSEXAMPLE", "SecretAccessKey": "MARKER-STDOUT-SECRET", "SessionToken": "MARKER-STDOUT-TOKEN", "Expiration": "${FUTURE}"}'`)
  hangPidFile = join(home, 'hang.pid')
  script('cred-helper-hangs.sh', `echo $$ > '${hangPidFile}'\nexec sleep 30`)
  // Issue 18, defect 6: leaves `sleep 37` in the background, holding stdout open, prints its
  // credentials and exits.
  backgroundPidFile = join(home, 'background.pid')
  const background = script(
    'cred-helper-background.sh',
    `sleep 37 &\necho $! > '${backgroundPidFile}'\necho '{"Version": 1, "AccessKeyId": "ASIABACKGROUNDEXAMPLE", "SecretAccessKey": "MARKER-STDOUT-BACKGROUND", "Expiration": "${FUTURE}"}'\nexit 0`,
  )
  const fails = script('cred-helper-fails.sh', 'echo MARKER-STDOUT-partial\necho "MARKER-STDERR-SECRET login failed" >&2\nexit 1')

  writeFileSync(
    join(home, '.aws', 'config'),
    [
      '[profile sso-dev]',
      'sso_session = dev',
      `sso_account_id = ${ACCOUNT}`,
      'sso_role_name = Reader',
      '',
      '[sso-session dev]',
      'sso_region = us-east-1',
      'sso_start_url = https://d-session.awsapps.com/start',
      '',
      '[profile sso-legacy]',
      'sso_start_url = https://d-legacy.awsapps.com/start',
      'sso_region = us-east-1',
      `sso_account_id = ${ACCOUNT}`,
      'sso_role_name = Reader',
      '',
      '[profile sso-expired]',
      'sso_session = old',
      `sso_account_id = ${ACCOUNT}`,
      'sso_role_name = Reader',
      '',
      '[sso-session old]',
      'sso_region = us-east-1',
      'sso_start_url = https://d-old.awsapps.com/start',
      '',
      '[profile sso-denied]',
      'sso_session = denied',
      `sso_account_id = ${ACCOUNT}`,
      'sso_role_name = Denied',
      '',
      '[sso-session denied]',
      'sso_region = us-east-1',
      'sso_start_url = https://d-denied.awsapps.com/start',
      '',
      '[profile sso-refresh]',
      'sso_session = refresh',
      `sso_account_id = ${ACCOUNT}`,
      'sso_role_name = Reader',
      '',
      '[sso-session refresh]',
      'sso_region = us-east-1',
      'sso_start_url = https://d-refresh.awsapps.com/start',
      '',
      '[profile proc-hangs]',
      `credential_process = '${join(home, 'cred-helper-hangs.sh')}'`,
      '',
      '[profile login-dev]',
      `login_session = ${LOGIN_ARN('Valid')}`,
      '',
      '[profile login-refresh]',
      `login_session = ${LOGIN_ARN('Refresh')}`,
      '',
      '[profile login-expired]',
      `login_session = ${LOGIN_ARN('Expired')}`,
      '',
      '[profile proc]',
      `credential_process = "${ok}" --account ${ACCOUNT}`,
      '',
      '[profile proc-background]',
      `credential_process = ${background}`,
      '',
      '[profile proc-fails]',
      `credential_process = ${fails}`,
      '',
      '[profile sso-role]',
      `role_arn = arn:aws:iam::${ACCOUNT}:role/from-sso`,
      'source_profile = sso-dev',
      'role_session_name = sso-chain',
      '',
      '[profile login-role]',
      `role_arn = arn:aws:iam::${ACCOUNT}:role/from-login`,
      'source_profile = login-dev',
      'role_session_name = login-chain',
      '',
    ].join('\n'),
  )
  cacheToken('dev', 'MARKER-SSO-TOKEN-session', FUTURE, 'https://d-session.awsapps.com/start')
  cacheToken('https://d-legacy.awsapps.com/start', 'MARKER-SSO-TOKEN-legacy', FUTURE, 'https://d-legacy.awsapps.com/start')
  cacheToken('old', 'MARKER-SSO-TOKEN-old', PAST, 'https://d-old.awsapps.com/start')
  cacheToken('denied', 'MARKER-SSO-TOKEN-denied', FUTURE, 'https://d-denied.awsapps.com/start')
  refreshingSsoCache = cacheToken('refresh', 'MARKER-SSO-TOKEN-stale', inAMinute(), 'https://d-refresh.awsapps.com/start', {
    clientId: 'client-id',
    clientSecret: 'MARKER-SSO-TOKEN-client-secret',
    refreshToken: 'MARKER-SSO-TOKEN-refresh',
    registrationExpiresAt: FUTURE,
  })
  cacheLogin(LOGIN_ARN('Valid'), { accessKeyId: 'ASIALOGINCACHED', expiresAt: FUTURE, refreshToken: 'MARKER-LOGIN-REFRESH-good' })
  refreshingCache = cacheLogin(LOGIN_ARN('Refresh'), { accessKeyId: 'ASIALOGINOLD', expiresAt: inAMinute(), refreshToken: 'MARKER-LOGIN-REFRESH-good' })
  cacheLogin(LOGIN_ARN('Expired'), { accessKeyId: 'ASIALOGINEXPIRED', expiresAt: PAST, refreshToken: 'MARKER-LOGIN-REFRESH-revoked' })
})

after(async () => {
  await new Promise((resolve) => portal.close(resolve))
  rmSync(home, { recursive: true, force: true })
})

/** Run the child for `profile` with HOME and the SSO endpoint; the default file locations under HOME. */
async function supplierFor(profile, extra = {}) {
  const env = hermeticEnv({
    ...extra,
    HOME: home,
    AWS_PROFILE: profile,
    AWS_REGION: 'us-east-1',
    AWS_ENDPOINT_URL_SSO: portalUrl,
    AWS_ENDPOINT_URL_SIGNIN: portalUrl,
    AWS_ENDPOINT_URL_SSO_OIDC: portalUrl,
    AWS_CONFIG_FILE: undefined,
    AWS_SHARED_CREDENTIALS_FILE: undefined,
  })
  assert.equal(env.AWS_EC2_METADATA_DISABLED, 'true')
  const run = await runNode(CHILD, { env, timeoutMs: 20_000 })
  assert.equal(run.timedOut, false, run.stderr)
  assert.equal(run.code, 0, run.stderr)
  assert.ok(run.result, `no JSON result\nstdout: ${run.stdout}\nstderr: ${run.stderr}`)
  for (const m of MARKERS) assert.ok(!run.stderr.includes(m), `marker ${m} on the child's stderr: ${run.stderr}`)
  return run.result
}

/** Whether `pid` no longer runs: gone, or a zombie waiting for its (new) parent to reap it. */
function stopped(pid) {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').split(')').at(-1).trim().startsWith('Z')
  } catch {
    return true
  }
}

/** Whether `pid` is gone: `kill(pid, 0)` fails with ESRCH (or it is a zombie: it no longer runs). */
function gone(pid) {
  try {
    process.kill(pid, 0)
  } catch (e) {
    if (e.code === 'ESRCH') return true
    throw e
  }
  return stopped(pid)
}

/** A coded supplier error whose message names the profile and holds no marker secret. */
function assertProfileError(result, profile, code) {
  assert.equal(result.ok, false, JSON.stringify(result))
  assert.equal(result.isError, true)
  assert.ok(CREDENTIAL_CODES.includes(result.code), `undocumented code ${result.code}`)
  assert.equal(result.code, code, result.message)
  assert.equal(typeof result.retryable, 'boolean')
  assert.ok(result.message.includes(profile), `the message does not name the profile ${profile}: ${result.message}`)
  for (const m of MARKERS) assert.ok(!result.message.includes(m), `marker ${m} in the message: ${result.message}`)
}

describe('SSO profiles (aws-config SSO provider on our HTTP layer)', () => {
  test('sso_session profile: the cached token is sent to the portal, the role credentials come back', TEST_TIMEOUT, async () => {
    const before = portalRequests.length
    const r = await supplierFor('sso-dev')
    assert.equal(r.ok, true, JSON.stringify(r))
    assert.equal(r.creds.accessKeyId, 'ASIASSOSESSIONEXAMPLE')
    assert.equal(r.creds.secretAccessKey, 'MARKER-SSO-SECRET-ASIASSOSESSIONEXAMPLE')
    assert.equal(r.creds.token, 'MARKER-SSO-SESSION-ASIASSOSESSIONEXAMPLE')
    const sent = portalRequests.slice(before).filter((p) => p.path === '/federation/credentials')
    assert.equal(sent.length, 1, JSON.stringify(sent))
    assert.deepEqual(sent[0], { method: 'GET', path: '/federation/credentials', account: ACCOUNT, role: 'Reader', token: 'MARKER-SSO-TOKEN-session' })
  })

  test('legacy profile (sso_start_url in the profile): token cached under the start URL', TEST_TIMEOUT, async () => {
    const r = await supplierFor('sso-legacy')
    assert.equal(r.ok, true, JSON.stringify(r))
    assert.equal(r.creds.accessKeyId, 'ASIASSOLEGACYEXAMPLE')
    assert.equal(r.creds.token, 'MARKER-SSO-SESSION-ASIASSOLEGACYEXAMPLE')
  })

  test('a token about to expire is refreshed through SSO OIDC first, and the cache is rewritten', TEST_TIMEOUT, async () => {
    const before = { oidc: oidcRequests.length, portal: portalRequests.length }
    const r = await supplierFor('sso-refresh')
    assert.equal(r.ok, true, JSON.stringify(r))
    assert.equal(r.creds.accessKeyId, 'ASIASSOREFRESHEDEXAMPLE')
    assert.equal(oidcRequests.length - before.oidc, 1)
    assert.deepEqual(
      portalRequests
        .slice(before.portal)
        .filter((p) => p.path === '/federation/credentials')
        .map((p) => p.token),
      ['MARKER-SSO-TOKEN-refreshed'],
    )
    const cached = JSON.parse(readFileSync(refreshingSsoCache, 'utf8'))
    assert.equal(cached.accessToken, 'MARKER-SSO-TOKEN-refreshed')
    assert.equal(cached.refreshToken, 'MARKER-SSO-TOKEN-refresh2')
  })

  test('an expired cached token is a coded error naming the profile; the portal is not called', TEST_TIMEOUT, async () => {
    const before = portalRequests.length
    const r = await supplierFor('sso-expired')
    assertProfileError(r, 'sso-expired', 'CREDENTIALS_EXPIRED')
    assert.equal(oidcRequests.length, 1, 'only the refreshable token was refreshed')
    assert.equal(r.retryable, false)
    assert.match(r.message, /aws sso login/)
    assert.equal(portalRequests.length, before)
  })

  test('the portal refusing the role (403) is a coded error naming the profile', TEST_TIMEOUT, async () => {
    const r = await supplierFor('sso-denied')
    assertProfileError(r, 'sso-denied', 'CREDENTIALS_ENDPOINT_ERROR')
    assert.equal(r.retryable, false)
    assert.match(r.message, /ForbiddenException/)
  })
})

describe('login_session profiles (aws login; aws-config credentials-login provider on our HTTP layer)', () => {
  test('a cached session that is still valid gives its credentials without a call', TEST_TIMEOUT, async () => {
    const before = signinRequests.length
    const r = await supplierFor('login-dev')
    assert.equal(r.ok, true, JSON.stringify(r))
    assert.equal(r.creds.accessKeyId, 'ASIALOGINCACHED')
    assert.equal(r.creds.secretAccessKey, 'MARKER-LOGIN-SECRET-ASIALOGINCACHED')
    assert.equal(r.creds.token, 'MARKER-LOGIN-SESSION-ASIALOGINCACHED')
    assert.equal(signinRequests.length, before)
  })

  test('a session about to expire is refreshed with a DPoP-signed call, and the cache is rewritten', TEST_TIMEOUT, async () => {
    const before = signinRequests.length
    const r = await supplierFor('login-refresh')
    assert.equal(r.ok, true, JSON.stringify(r))
    assert.equal(r.creds.accessKeyId, 'ASIALOGINREFRESHED')
    assert.equal(r.creds.token, 'MARKER-LOGIN-SESSION-refreshed')
    const sent = signinRequests.slice(before)
    assert.equal(sent.length, 1, JSON.stringify(sent))
    assert.equal(sent[0].dpop, true, 'DPoP proof header')
    assert.equal(sent[0].grantType, 'refresh_token')
    const cached = JSON.parse(readFileSync(refreshingCache, 'utf8'))
    assert.equal(cached.accessToken.accessKeyId, 'ASIALOGINREFRESHED')
    assert.equal(cached.refreshToken, 'MARKER-LOGIN-REFRESH-next')
  })

  test('an expired session whose refresh is refused is a coded error naming the profile', TEST_TIMEOUT, async () => {
    const r = await supplierFor('login-expired')
    assertProfileError(r, 'login-expired', 'CREDENTIALS_EXPIRED')
    assert.equal(r.retryable, false)
    assert.match(r.message, /aws login/)
  })
})

describe('credential_process profiles (our own link)', () => {
  test('the command runs through the shell and its credentials come back', TEST_TIMEOUT, async () => {
    const r = await supplierFor('proc')
    assert.equal(r.ok, true, JSON.stringify(r))
    assert.equal(r.creds.accessKeyId, 'ASIAPROCESSEXAMPLE')
    assert.equal(r.creds.secretAccessKey, 'MARKER-STDOUT-SECRET')
    assert.equal(r.creds.token, 'MARKER-STDOUT-TOKEN')
  })

  test('a command that hangs is killed at the deadline: TIMEOUT naming the profile', TEST_TIMEOUT, async () => {
    const started = performance.now()
    const r = await supplierFor('proc-hangs', { PROFILE_TIMEOUT_MS: '700' })
    assert.ok(performance.now() - started < 10_000, 'the child process ended long before the command would have')
    assertProfileError(r, 'proc-hangs', 'TIMEOUT')
    const pid = Number(readFileSync(hangPidFile, 'utf8'))
    assert.ok(pid > 0)
    await pollUntil(() => stopped(pid), { timeoutMs: 2_000, what: `the command (pid ${pid}) to stop` })
  })

  // Issue 18, defect 6: the shell exits first, a process it left behind keeps stdout open.
  test('a command that leaves a process in the background: its credentials come back, and the process is killed', TEST_TIMEOUT, async () => {
    const started = performance.now()
    const r = await supplierFor('proc-background', { PROFILE_TIMEOUT_MS: '8000' })
    assert.equal(r.ok, true, JSON.stringify(r))
    assert.equal(r.creds.accessKeyId, 'ASIABACKGROUNDEXAMPLE')
    assert.ok(performance.now() - started < 8_000, 'the credentials came back before the deadline')
    const pid = Number(readFileSync(backgroundPidFile, 'utf8'))
    assert.ok(pid > 0)
    await pollUntil(() => gone(pid), { timeoutMs: 10_000, what: `the background process (pid ${pid}) to be gone` })
  })

  test('a command that exits 1 is a coded error naming the profile, without its stderr', TEST_TIMEOUT, async () => {
    assertProfileError(await supplierFor('proc-fails'), 'proc-fails', 'CREDENTIALS_ENDPOINT_ERROR')
  })
})

// A role chain whose base is an SSO or `aws login` profile: aws-config loads the base profile, and
// its credentials sign our AWS STS AssumeRole (src/aws/sts.rs), which the emulator verifies.
describe('role chains on an SSO or aws login base', () => {
  let em
  before(async () => {
    em = await startEmulator()
  })
  after(() => em?.close())

  for (const [profile, key, role] of [
    ['sso-role', { accessKeyId: 'ASIASSOSESSIONEXAMPLE', secretAccessKey: 'MARKER-SSO-SECRET-ASIASSOSESSIONEXAMPLE', token: 'MARKER-SSO-SESSION-ASIASSOSESSIONEXAMPLE' }, 'from-sso'],
    ['login-role', { accessKeyId: 'ASIALOGINCACHED', secretAccessKey: 'MARKER-LOGIN-SECRET-ASIALOGINCACHED', token: 'MARKER-LOGIN-SESSION-ASIALOGINCACHED' }, 'from-login'],
  ]) {
    test(`${profile}: the base profile's credentials sign AssumeRole, the role's credentials come back`, TEST_TIMEOUT, async () => {
      em.reset()
      em.registerAwsKey({ ...key, arn: `arn:aws:sts::${ACCOUNT}:assumed-role/Reader/base` })
      const r = await supplierFor(profile, { AWS_ENDPOINT_URL_STS: `${em.url}/aws-sts` })
      assert.equal(r.ok, true, JSON.stringify(r))
      const sts = em.requests.filter((q) => q.route === 'awsSts')
      assert.equal(sts.length, 1)
      const form = Object.fromEntries(new URLSearchParams(sts[0].body))
      assert.deepEqual([form.Action, form.RoleArn, form.RoleSessionName, form.DurationSeconds], ['AssumeRole', `arn:aws:iam::${ACCOUNT}:role/${role}`, role.replace('from-', '') + '-chain', '3600'])
      assert.deepEqual([sts[0].status, sts[0].verdict.ok, sts[0].verdict.accessKeyId, sts[0].verdict.region], [200, true, key.accessKeyId, 'us-east-1'])
      assert.match(em.issued.get(r.creds.accessKeyId)?.arn ?? '', new RegExp(`assumed-role/${role}/`))
    })
  }
})

describe('AWS_PROFILE beside environment keys (the JavaScript chain, not aws-config)', () => {
  test('the profile is used, the keys are ignored, and a process warning says so once', TEST_TIMEOUT, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'aws-wif-profile-over-env-'))
    try {
      writeFileSync(join(dir, 'credentials'), '[dev]\naws_access_key_id = AKIAPROFILEOVERENV01\naws_secret_access_key = profile/over/env/secret\n')
      const script = join(dir, 'child.cjs')
      writeFileSync(
        script,
        `const warnings = []
        process.on('warning', (w) => warnings.push(w.code))
        const { ContainerAwsCredentialsSupplier } = require(${JSON.stringify(here('../index.js'))})
        Promise.all([new ContainerAwsCredentialsSupplier().getAwsSecurityCredentials(), new ContainerAwsCredentialsSupplier().getAwsSecurityCredentials()])
          .then(([c]) => setImmediate(() => console.log(JSON.stringify({ accessKeyId: c.accessKeyId, warnings }))))`,
      )
      const env = hermeticEnv({
        AWS_PROFILE: 'dev',
        AWS_SHARED_CREDENTIALS_FILE: join(dir, 'credentials'),
        AWS_CONFIG_FILE: join(dir, 'no-config'),
        AWS_ACCESS_KEY_ID: 'AKIAENVIRONMENTKEY01',
        AWS_SECRET_ACCESS_KEY: 'environment/secret',
        AWS_REGION: 'us-east-1',
      })
      const run = await runNode(script, { env })
      assert.equal(run.code, 0, run.stderr)
      assert.deepEqual(run.result, { accessKeyId: 'AKIAPROFILEOVERENV01', warnings: ['AWS_WIF_SUPPLIER_PROFILE_OVER_ENV_KEYS'] })
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
