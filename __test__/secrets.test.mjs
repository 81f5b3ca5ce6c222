// No secret may leak through an error, the supplier object, or the process output.
//
// Marker secrets (MARKER-SECRET-KEY-…, MARKER-SESSION-TOKEN-…, MARKER-CONTAINER-AUTH-…, a marker in a
// FULL_URI query, in a web identity token file, in AWS_SECRET_ACCESS_KEY) are served by the emulator
// or placed in the environment and token files. For every error path we can trigger with them
// present (secret-scenarios.mjs), the markers must not appear in err.message, err.stack,
// util.inspect(err), JSON.stringify(err), String(err), nor in util.inspect / JSON.stringify / String
// of the supplier; and, in a child process with AWS_WIF_SUPPLIER_LOG=debug, nowhere in its stdout or
// stderr.
//
// Leaks these scenarios once found were fixed; the scenarios stay as regression tests.
//
// Run: node --test __test__/secrets.test.mjs

import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { inspect } from 'node:util'
import { hermeticEnv, makeProcessHermetic, startEmulator } from './emulator/index.mjs'
import { leakedMarkers, makeMarkers, runSecretScenario, secretScenarios } from './secret-scenarios.mjs'
import { assertSupplierError, here, runNode, unusedPort } from './support.mjs'

makeProcessHermetic()
const { ContainerAwsCredentialsSupplier } = createRequire(import.meta.url)('../index.js')

const TEST_TIMEOUT = { timeout: 30_000 }
const m = makeMarkers(randomBytes(6).toString('hex'))
let em
let dir
let port
let seq = 0

before(async () => {
  em = await startEmulator()
  dir = mkdtempSync(join(tmpdir(), 'aws-wif-secrets-'))
  port = await unusedPort()
})
after(async () => {
  await em.close()
  rmSync(dir, { recursive: true, force: true })
})

/** Every rendering of an error an application or a logger might produce. */
function errorRenderings(err) {
  return {
    message: err.message,
    stack: err.stack,
    inspect: inspect(err),
    inspectHidden: inspect(err, { showHidden: true, depth: 10 }),
    json: JSON.stringify(err),
    string: String(err),
    ownValues: JSON.stringify(Object.getOwnPropertyNames(err).map((k) => String(err[k]))),
  }
}

function supplierRenderings(supplier) {
  return {
    inspect: inspect(supplier),
    inspectHidden: inspect(supplier, { showHidden: true, depth: 10 }),
    json: JSON.stringify(supplier),
    string: String(supplier),
    template: `${supplier}`,
    keys: JSON.stringify(Object.keys(supplier)),
  }
}

function leaks(renderings) {
  return Object.entries(renderings)
    .map(([where, text]) => [where, leakedMarkers(text, m)])
    .filter(([, found]) => found.length > 0)
}

describe('errors and the supplier never show a secret', () => {
  for (const scenario of secretScenarios()) {
    const outcome = {}
    test(`${scenario.name}: ${scenario.code ?? 'resolves'}`, TEST_TIMEOUT, async () => {
      const base = `${em.url}/v2/credentials/secrets-${++seq}`
      Object.assign(outcome, await runSecretScenario(scenario, { em, m, dir, port, base, ContainerAwsCredentialsSupplier }))
      if (scenario.code === null) {
        assert.equal(outcome.error, undefined, outcome.error?.message)
        // The markers were really in play: served as the credentials, sent as the authorization token.
        assert.equal(outcome.value.secretAccessKey, m.secretKey)
        assert.equal(outcome.value.token, m.sessionToken)
        assert.deepEqual(em.requests.map((r) => [r.route, r.headers.authorization]), [['container', m.containerAuth]])
      } else {
        assertSupplierError(outcome.error, scenario.code)
      }
      assert.deepEqual(leaks(supplierRenderings(outcome.supplier)), [], 'the supplier object shows a secret')
      if (outcome.error) assert.deepEqual(leaks(errorRenderings(outcome.error)), [], `leak in: ${outcome.error.message}`)
    })
  }
})

describe('process output with AWS_WIF_SUPPLIER_LOG=debug', () => {
  /** Run the secrets child over every scenario. */
  async function runChild() {
    const env = hermeticEnv({ AWS_WIF_SUPPLIER_LOG: 'debug', WIF_SCENARIO: JSON.stringify({ suffix: m.secretKey.split('-').at(-1), dir }) })
    const run = await runNode(here('fixtures/secrets-child.mjs'), { env, timeoutMs: 50_000 })
    assert.equal(run.timedOut, false)
    assert.equal(run.code, 0, run.stderr)
    const expected = secretScenarios().map((s) => [s.name, s.code === null, s.code])
    expected.push(['reference flow with marker credentials', true, null])
    assert.deepEqual(run.result.outcomes.map((o) => [o.name, o.ok, o.code]), expected)
    return run
  }

  test('no marker in the stdout or stderr of a process running every scenario', { timeout: 60_000 }, async () => {
    const run = await runChild()
    assert.deepEqual(leakedMarkers(run.stdout, m), [], 'marker on stdout')
    assert.deepEqual(leakedMarkers(run.stderr, m), [], 'marker on stderr')
  })

})
