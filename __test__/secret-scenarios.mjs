// Error paths of ContainerAwsCredentialsSupplier with marker secrets present, shared by
// secrets.test.mjs (in-process) and fixtures/secrets-child.mjs (child process with
// AWS_WIF_SUPPLIER_LOG=debug). Markers are in what the emulator serves (secret key, session token),
// in the environment (authorization token, a FULL_URI query, a secret key without its key id) and in
// token files. No scenario sends a request anywhere but the loopback emulator.

import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { DEFAULT_CONFIG, makeProcessHermetic } from './emulator/index.mjs'
import { rfc3339 } from './emulator/wire.mjs'

/** The marker secrets of one run (`suffix` makes them unique). */
export function makeMarkers(suffix) {
  return {
    secretKey: `MARKER-SECRET-KEY-${suffix}`,
    sessionToken: `MARKER-SESSION-TOKEN-${suffix}`,
    containerAuth: `MARKER-CONTAINER-AUTH-${suffix}`,
    uriQuery: `MARKER-URI-QUERY-${suffix}`,
    webIdentity: `MARKER-WEB-IDENTITY-${suffix}`,
    envSecret: `MARKER-ENV-SECRET-KEY-${suffix}`,
  }
}

/** Names of the markers found in `text`. */
export function leakedMarkers(text, markers) {
  return Object.entries(markers)
    .filter(([, value]) => String(text).includes(value))
    .map(([name]) => name)
}

/**
 * The scenarios: {name, code, prepare({em, m, base, dir, port}) -> {vars?, options?}}.
 * `code` null means the call succeeds. `base` is a FULL_URI no other scenario uses.
 */
export function secretScenarios() {
  const body = (m, extra = {}) => ({
    RoleArn: DEFAULT_CONFIG.roleArn,
    AccessKeyId: 'ASIAMARKERMARKER0001',
    SecretAccessKey: m.secretKey,
    Token: m.sessionToken,
    Expiration: rfc3339(Date.now() + 3_600_000),
    ...extra,
  })
  const echo = (m) => ({ code: 'InvalidToken', message: `Service account token ${m.containerAuth} cannot be validated` })
  return [
    { name: 'success (credentials carry the markers)', code: null, prepare: () => ({}) },
    {
      name: 'missing Expiration',
      code: 'INVALID_CREDENTIALS_RESPONSE',
      prepare: ({ em, m }) => em.fault('container', { status: 200, body: { AccessKeyId: 'ASIAMARKERMARKER0001', SecretAccessKey: m.secretKey, Token: m.sessionToken } }),
    },
    {
      name: 'malformed JSON around the secrets',
      code: 'INVALID_CREDENTIALS_RESPONSE',
      prepare: ({ em, m }) => em.fault('container', { status: 200, body: `{"SecretAccessKey":"${m.secretKey}","Token":"${m.sessionToken}",,}` }),
    },
    {
      name: 'an HTML body holding the secrets',
      code: 'INVALID_CREDENTIALS_RESPONSE',
      prepare: ({ em, m }) => em.fault('container', { status: 200, contentType: 'text/html', body: `<html>${m.secretKey} ${m.sessionToken}</html>` }),
    },
    { name: 'truncated credentials body', code: 'INVALID_CREDENTIALS_RESPONSE', prepare: ({ em }) => em.fault('container', { truncate: true }) },
    {
      name: 'non-RFC 3339 Expiration',
      code: 'INVALID_CREDENTIALS_RESPONSE',
      prepare: ({ em, m }) => em.fault('container', { status: 200, body: body(m, { Expiration: `soon ${m.secretKey}` }) }),
    },
    {
      name: 'AccessKeyId of the wrong type next to the secrets',
      code: 'INVALID_CREDENTIALS_RESPONSE',
      prepare: ({ em, m }) => em.fault('container', { status: 200, body: body(m, { AccessKeyId: 12345 }) }),
    },
    { name: 'expired credentials', code: 'CREDENTIALS_EXPIRED', prepare: ({ em, m }) => em.fault('container', { status: 200, body: body(m, { Expiration: rfc3339(Date.now() - 60_000) }) }) },
    {
      name: 'Code/Message error echoing the authorization token',
      code: 'CREDENTIALS_ENDPOINT_ERROR',
      prepare: ({ em, m }) => em.fault('container', { status: 200, body: { Code: 'CredentialsUninitialized', Message: `token ${m.containerAuth} not ready` } }),
    },
    ...[400, 401, 403, 404].map((status) => ({
      name: `HTTP ${status} echoing the authorization token`,
      code: 'CREDENTIALS_ENDPOINT_ERROR',
      prepare: ({ em, m }) => em.setAlways('container', { status, body: echo(m) }),
    })),
    { name: 'wrong authorization token (the emulator\'s own 400)', code: 'CREDENTIALS_ENDPOINT_ERROR', prepare: ({ em }) => void (em.config.containerAuthToken = 'some-other-token') },
    { name: 'HTTP 503 on every attempt, echoing the token', code: 'CREDENTIALS_ENDPOINT_ERROR', prepare: ({ em, m }) => em.setAlways('container', { status: 503, body: echo(m) }) },
    { name: 'endpoint hangs', code: 'TIMEOUT', prepare: ({ em }) => (em.setAlways('container', { hang: true }), { options: { timeoutMs: 500 } }) },
    {
      name: 'endpoint down, secret in the FULL_URI query',
      code: 'CREDENTIALS_ENDPOINT_ERROR',
      prepare: ({ m, port }) => ({ vars: { AWS_CONTAINER_CREDENTIALS_FULL_URI: `http://127.0.0.1:${port}/v1/credentials?sig=${m.uriQuery}` }, options: { timeoutMs: 1500 } }),
    },
    {
      name: 'connection reset, secret in the FULL_URI query',
      code: 'CREDENTIALS_ENDPOINT_ERROR',
      prepare: ({ em, m, base }) => (em.setAlways('container', { reset: true }), { vars: { AWS_CONTAINER_CREDENTIALS_FULL_URI: `${base}?sig=${m.uriQuery}` }, options: { timeoutMs: 1500 } }),
    },
    {
      name: 'endpoint answers 403, secret in the FULL_URI query',
      code: 'CREDENTIALS_ENDPOINT_ERROR',
      prepare: ({ em, m, base }) => (em.setAlways('container', { status: 403 }), { vars: { AWS_CONTAINER_CREDENTIALS_FULL_URI: `${base}?sig=${m.uriQuery}` } }),
    },
    {
      name: 'disallowed FULL_URI host, secret in its query',
      code: 'CONFIG_INVALID',
      // 0.0.0.0 is disallowed but reaches this host: a request that slipped through would hit the emulator.
      prepare: ({ m, emPort }) => ({ vars: { AWS_CONTAINER_CREDENTIALS_FULL_URI: `http://0.0.0.0:${emPort}/v1/credentials?sig=${m.uriQuery}` } }),
    },
    {
      name: 'FULL_URI with user information',
      code: 'CONFIG_INVALID',
      prepare: ({ m, emPort }) => ({ vars: { AWS_CONTAINER_CREDENTIALS_FULL_URI: `http://user:${m.uriQuery}@127.0.0.1:${emPort}/v1/credentials` } }),
    },
    {
      name: 'token file with CR LF around the token',
      code: 'CONFIG_INVALID',
      prepare: ({ m, dir, name }) => {
        const file = join(dir, `token-${name.replace(/\W+/g, '-')}`)
        writeFileSync(file, `${m.containerAuth}\r\nX-Injected: ${m.containerAuth}\n`)
        return { vars: { AWS_CONTAINER_AUTHORIZATION_TOKEN: undefined, AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE: file } }
      },
    },
    {
      name: 'AWS_CONTAINER_AUTHORIZATION_TOKEN with CR LF',
      code: 'CONFIG_INVALID',
      prepare: ({ m }) => ({ vars: { AWS_CONTAINER_AUTHORIZATION_TOKEN: `${m.containerAuth}\r\nX-Injected: y` } }),
    },
    {
      // Ignored, as the AWS SDKs do: the container endpoint answers, and the process warning names
      // the variables, never their values (the process-output test reads it).
      name: 'AWS_SECRET_ACCESS_KEY without AWS_ACCESS_KEY_ID (ignored with a warning)',
      code: null,
      prepare: ({ m }) => ({ vars: { AWS_SECRET_ACCESS_KEY: m.envSecret, AWS_SESSION_TOKEN: m.sessionToken } }),
    },
    {
      name: 'EKS IRSA token rejected by AWS STS',
      code: 'CREDENTIALS_ENDPOINT_ERROR',
      prepare: ({ em, m, dir, name }) => {
        em.config.webIdentityToken = 'not-the-marker'
        const file = join(dir, `web-identity-${name.replace(/\W+/g, '-')}`)
        writeFileSync(file, m.webIdentity)
        return {
          vars: {
            AWS_WEB_IDENTITY_TOKEN_FILE: file,
            AWS_ROLE_ARN: 'arn:aws:iam::123456789012:role/irsa-role',
            AWS_ENDPOINT_URL_STS: `${em.url}/aws-sts`,
            AWS_CONTAINER_AUTHORIZATION_TOKEN: undefined,
          },
        }
      },
    },
  ]
}

/**
 * Run one scenario in this process: reset the emulator (fixed marker credentials, the marker
 * authorization token required), make process.env hermetic plus the scenario's variables, construct
 * a supplier and call it. Returns {supplier, value?, error?}.
 */
export async function runSecretScenario(scenario, { em, m, dir, port, base, ContainerAwsCredentialsSupplier }) {
  em.reset()
  em.config = {
    ...DEFAULT_CONFIG,
    containerAuthToken: m.containerAuth,
    credentials: { accessKeyId: 'ASIAMARKERMARKER0001', secretAccessKey: m.secretKey, token: m.sessionToken },
  }
  const emPort = new URL(em.url).port
  const { vars = {}, options } = scenario.prepare({ em, m, dir, port, base, emPort, name: scenario.name }) ?? {}
  // makeProcessHermetic drops every AWS_ variable it is not given: keep the log level of the process.
  const log = process.env.AWS_WIF_SUPPLIER_LOG
  makeProcessHermetic({ AWS_CONTAINER_CREDENTIALS_FULL_URI: base, AWS_CONTAINER_AUTHORIZATION_TOKEN: m.containerAuth, AWS_REGION: 'us-east-1', AWS_WIF_SUPPLIER_LOG: log, ...vars })
  const supplier = new ContainerAwsCredentialsSupplier(options)
  try {
    return { supplier, value: await supplier.getAwsSecurityCredentials() }
  } catch (error) {
    return { supplier, error }
  }
}
