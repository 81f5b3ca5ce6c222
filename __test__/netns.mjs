// Helpers for tests that must use the real AWS link-local addresses (169.254.170.2 ECS,
// 169.254.170.23 EKS Pod Identity, 169.254.169.254 IMDS). Such tests run a script inside a private
// network namespace (`unshare -n`) whose only interface is `lo`, carrying those three addresses, so no
// packet can leave the machine. Needs root (or user namespaces), util-linux `unshare` and iproute2 `ip`.
//
//   if (netnsAvailable()) {
//     const { code, stdout, stderr } = await runInNetns('__test__/fixtures/x.mjs', { env, args, timeoutMs })
//   }
//   // first line of any script run that way:
//   assertIsolated()

import { spawn, spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { networkInterfaces } from 'node:os'
import { hermeticEnv } from './emulator/hermetic-env.mjs'

export const LINK_LOCAL_ADDRESSES = ['169.254.170.2', '169.254.170.23', '169.254.169.254']

const SETUP = ['ip link set lo up', ...LINK_LOCAL_ADDRESSES.map((a) => `ip addr add ${a}/32 dev lo`)].join(' && ')

let unavailableReason

/** Why runInNetns cannot work here (missing tool, no privilege), or null when it can. */
export function netnsUnavailableReason() {
  if (unavailableReason === undefined) {
    const probe = (cmd, args) => spawnSync(cmd, args, { stdio: 'ignore', timeout: 10_000 }).status === 0
    if (process.platform !== 'linux') unavailableReason = 'network namespaces need Linux'
    else if (!probe('ip', ['-V'])) unavailableReason = '`ip` (iproute2) is not installed'
    else if (!probe('unshare', ['-n', 'true'])) unavailableReason = '`unshare -n` failed (needs root or user namespaces)'
    else unavailableReason = null
  }
  return unavailableReason
}

/** True when `unshare -n` and `ip` work here. */
export function netnsAvailable() {
  return netnsUnavailableReason() === null
}

/**
 * Run `node scriptPath ...args` in a fresh network namespace whose `lo` carries the link-local
 * addresses. Resolves {code, signal, stdout, stderr, timedOut}; the process is killed after timeoutMs.
 * `env` defaults to a hermetic environment in which IMDS is *not* disabled (it is safe in there).
 */
export function runInNetns(scriptPath, { env = hermeticEnv({ AWS_EC2_METADATA_DISABLED: undefined }), args = [], timeoutMs = 30_000 } = {}) {
  // unshare execs sh, which execs node: the child's pid is node's, so the kill on timeout reaches it.
  const child = spawn('unshare', ['-n', '--', 'sh', '-c', `${SETUP} && exec "$@"`, 'netns', process.execPath, scriptPath, ...args], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  return collectChild(child, timeoutMs)
}

/**
 * Collect a child process's stdout and stderr; SIGKILL it after `timeoutMs`.
 * Resolves {code, signal, stdout, stderr, timedOut}; rejects if it could not be started.
 */
export function collectChild(child, timeoutMs) {
  return new Promise((resolve, reject) => {
    let stdout = ''
    let stderr = ''
    let timedOut = false
    child.stdout.on('data', (d) => (stdout += d))
    child.stderr.on('data', (d) => (stderr += d))
    const timer = setTimeout(() => {
      timedOut = true
      child.kill('SIGKILL')
    }, timeoutMs)
    child.on('error', (err) => {
      clearTimeout(timer)
      reject(err)
    })
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      resolve({ code, signal, stdout, stderr, timedOut })
    })
  })
}

/** Names of the interfaces in this process's network namespace. */
function interfaceNames() {
  // /proc/self/net/dev follows the caller's namespace. /sys/class/net does NOT: it shows the namespace
  // that mounted sysfs, so after a bare `unshare -n` it still lists the host's eth0.
  return readFileSync('/proc/self/net/dev', 'utf8')
    .split('\n')
    .slice(2)
    .map((line) => line.split(':')[0].trim())
    .filter(Boolean)
}

/**
 * Throw unless this process is in a private namespace: only `lo`, carrying all three link-local
 * addresses. Call it first in any script run by runInNetns, and exit non-zero if it throws.
 */
export function assertIsolated() {
  const others = interfaceNames().filter((name) => name !== 'lo')
  if (others.length > 0) throw new Error(`not isolated: network interfaces besides lo are visible: ${others.join(', ')}`)
  const addresses = (networkInterfaces().lo ?? []).map((a) => a.address)
  const missing = LINK_LOCAL_ADDRESSES.filter((a) => !addresses.includes(a))
  if (missing.length > 0) throw new Error(`not isolated: lo lacks ${missing.join(', ')}`)
}
