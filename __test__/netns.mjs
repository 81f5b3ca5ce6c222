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
//
// runInSandbox adds a private mount namespace and a chroot, for tests that must also place files at
// fixed absolute paths (/home/.aws/config, /token.jwt): see its doc comment.

import { spawn, spawnSync } from 'node:child_process'
import { lstatSync, mkdtempSync, readFileSync, readlinkSync, realpathSync, rmdirSync } from 'node:fs'
import { networkInterfaces, tmpdir } from 'node:os'
import { dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
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

// ---------------------------------------------------------------------------------------------
// Network + mount namespace with a chroot (runInSandbox)

/** The project checkout (the directory of package.json and index.js). */
export const PROJECT_ROOT = realpathSync(fileURLToPath(new URL('..', import.meta.url)))

/** Directories of the host bound read-only into every sandbox root (besides the project and node's own). */
const SANDBOX_BINDS = ['/usr', '/etc', '/dev', '/proc']
/** Top-level names that merged-/usr systems make symlinks (bin -> usr/bin); a real directory is bound instead. */
const SANDBOX_TOP_LEVEL = ['/bin', '/sbin', '/lib', '/lib32', '/lib64', '/libx32']

/** Quote for sh. */
const shq = (s) => `'${String(s).replaceAll("'", `'\\''`)}'`

let sandboxReason

/** Why runInSandbox cannot work here, or null when it can. */
export function sandboxUnavailableReason() {
  if (sandboxReason === undefined) {
    sandboxReason = netnsUnavailableReason()
    if (sandboxReason === null) {
      const probe = (cmd, args) => spawnSync(cmd, args, { stdio: 'ignore', timeout: 10_000 }).status === 0
      const dir = mkdtempSync(join(tmpdir(), 'aws-wif-sandbox-probe-'))
      if (!probe('chroot', ['--version'])) sandboxReason = '`chroot` (coreutils) is not installed'
      else if (!probe('unshare', ['-n', '-m', '--propagation', 'private', '--', 'sh', '-c', `mount -t tmpfs probe ${shq(dir)} && mkdir ${shq(`${dir}/usr`)} && mount --bind -o ro /usr ${shq(`${dir}/usr`)}`]))
        sandboxReason = '`unshare -m` with tmpfs and bind mounts failed (needs root)'
      rmdirSync(dir)
    }
  }
  return sandboxReason
}

/**
 * Run `node scriptPath ...args` in fresh network and mount namespaces (`unshare -n -m`), chrooted
 * into a root built for this run:
 *
 * - a tmpfs (mounted in the private mount namespace on an empty temp directory, so nothing reaches the
 *   real filesystem), into which the directory `tree` is copied first: `tree/home/.aws/config` is
 *   `/home/.aws/config` inside;
 * - read-only binds of /usr, /etc, /dev, /proc, the project checkout and node's own directory, at
 *   their own paths; /bin, /lib… as the host has them (symlinks into /usr, or read-only binds);
 * - `hosts` (a file path) bound over /etc/hosts when given;
 * - /tmp is a directory of the tmpfs (writable, discarded).
 *
 * `lo` is up and carries the link-local addresses, as in runInNetns. `env` is node's exact
 * environment; `execEnv` is added for node only (not for the setup commands: LD_PRELOAD and the
 * like). `scriptPath` must lie inside the project. Resolves as runInNetns.
 */
export function runInSandbox(scriptPath, { env, execEnv = {}, args = [], tree, hosts, timeoutMs = 30_000 } = {}) {
  const script = realpathSync(scriptPath)
  if (relative(PROJECT_ROOT, script).startsWith('..')) throw new Error(`${script} is outside the project, which is all the sandbox sees of it`)
  const node = realpathSync(process.execPath)
  const binds = [...SANDBOX_BINDS, PROJECT_ROOT]
  if (!binds.some((b) => !relative(b, node).startsWith('..'))) binds.push(dirname(node))
  const mountpoint = mkdtempSync(join(tmpdir(), 'aws-wif-sandbox-'))
  const root = (path) => shq(join(mountpoint, path))
  const lines = [
    'set -eu',
    SETUP,
    `mount -t tmpfs -o mode=0755 aws-wif-sandbox ${shq(mountpoint)}`,
    ...(tree ? [`cp -R ${shq(`${tree}/.`)} ${shq(mountpoint)}`] : []),
  ]
  for (const top of SANDBOX_TOP_LEVEL) {
    let st
    try {
      st = lstatSync(top)
    } catch {
      continue
    }
    if (st.isSymbolicLink()) lines.push(`ln -s ${shq(readlinkSync(top))} ${root(top)}`)
    else if (st.isDirectory()) binds.push(top)
  }
  for (const dir of binds) lines.push(`mkdir -p ${root(dir)}`, `mount --rbind ${shq(dir)} ${root(dir)}`, `mount -o remount,bind,ro ${root(dir)}`)
  if (hosts) lines.push(`mount --bind ${shq(hosts)} ${root('/etc/hosts')}`)
  lines.push(`mkdir -p ${root('/tmp')}`, `chmod 1777 ${root('/tmp')}`, 'cd /', 'exec "$@"')
  // The setup commands need a PATH; node gets exactly `env` (+ execEnv).
  const outer = { ...env, PATH: env.PATH ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' }
  const command = ['chroot', mountpoint, 'env', ...(env.PATH === undefined ? ['-u', 'PATH'] : []), ...Object.entries(execEnv).map(([k, v]) => `${k}=${v}`), node, script, ...args]
  const child = spawn('unshare', ['-n', '-m', '--propagation', 'private', '--', 'sh', '-c', lines.join('\n'), 'sandbox', ...command], {
    env: outer,
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  // Not recursive: outside the namespace the mount point is an empty directory, and should it ever
  // not be (a mount that leaked out), nothing under it may be deleted.
  return collectChild(child, timeoutMs).finally(() => rmdirSync(mountpoint))
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
