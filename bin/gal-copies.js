'use strict'
// `doctor`: the google-auth-library copies an application's client libraries resolve (issue 20,
// section 4). A client built on one copy is not an instance of another copy's classes, and the
// libraries recognise clients by `instanceof`: @google-cloud/storage 8.4 (which needs
// google-auth-library 11, so npm nests its own copy under an app on 10) wraps any authClient in its
// own GoogleAuth, whose getCredentials() then finds no credentials, and getSignedUrl() fails.
//
// "The application" is the working directory (`npx aws-wif-supplier doctor` run in the app's
// folder). From there: the copy the application itself resolves, and for every package in its
// node_modules that depends on google-auth-library (@google-cloud/*, firebase-admin, googleapis,
// google-gax, ...) the copy resolved from that package's own folder, as `require` does (Node's
// node_modules lookup from the package's real path: npm's nesting, pnpm's sibling links). Only
// package.json files are read, nothing is loaded; at most MAX_PACKAGES package folders are looked
// at, and an unreadable or odd node_modules (broken links, loops, files where folders belong,
// invalid JSON) is skipped, never fatal.

const { readdirSync, readFileSync, realpathSync } = require('node:fs')
const { basename, dirname, join, relative, sep } = require('node:path')

const NAME = 'google-auth-library'
/** Package folders looked at, at most (a large application has 1000 to 2000). */
const MAX_PACKAGES = 5000
const DEPENDENCY_FIELDS = ['dependencies', 'optionalDependencies', 'peerDependencies']
/** An npm package name, or null: what node_modules holds is printed, so nothing else passes. */
const PACKAGE_NAME = /^(?:@[a-z0-9][a-z0-9._~-]*\/)?[a-z0-9][a-z0-9._~-]*$/
const VERSION = /^[0-9A-Za-z.+-]{1,64}$/
/** The client libraries an application uses directly, preferred when naming a copy's user. */
const CLIENT_LIBRARY = /^(?:@google-cloud\/|firebase-admin$|googleapis$|@googleapis\/)/

function readJson(file) {
  try {
    const value = JSON.parse(readFileSync(file, 'utf8'))
    return value && typeof value === 'object' ? value : null
  } catch {
    return null
  }
}

function real(path) {
  try {
    return realpathSync(path)
  } catch {
    return null
  }
}

const nameOf = (pkg) => (typeof pkg.name === 'string' && PACKAGE_NAME.test(pkg.name) ? pkg.name : null)
const versionOf = (pkg) => (typeof pkg.version === 'string' && VERSION.test(pkg.version) ? pkg.version : 'unknown')

/**
 * The google-auth-library a module in `dir` resolves: `{ dir (real path), version }`, or null. As
 * Node looks it up: `<d>/node_modules/google-auth-library` for `dir` and each folder above it that
 * is not itself a node_modules folder (NODE_PATH and the global folders aside).
 */
function resolveFrom(dir) {
  for (let d = dir; ; d = dirname(d)) {
    if (basename(d) !== 'node_modules') {
      const candidate = join(d, 'node_modules', NAME)
      const pkg = readJson(join(candidate, 'package.json'))
      if (pkg) return { dir: real(candidate) ?? candidate, version: versionOf(pkg) }
    }
    if (dirname(d) === d) return null
  }
}

/** The package folders in one node_modules folder (`name` and `@scope/name`, in name order); [] when unreadable. */
function packageFolders(nodeModules) {
  const entries = (dir) => {
    try {
      return readdirSync(dir, { withFileTypes: true })
        .filter((e) => !e.name.startsWith('.') && (e.isDirectory() || e.isSymbolicLink()))
        .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    } catch {
      return []
    }
  }
  const folders = []
  for (const e of entries(nodeModules)) {
    if (e.name.startsWith('@')) for (const s of entries(join(nodeModules, e.name))) folders.push(join(nodeModules, e.name, s.name))
    else folders.push(join(nodeModules, e.name))
  }
  return folders
}

/** The node_modules folder that holds the package at `dir` (`x` or `@scope/x`), or null. */
function holderOf(dir) {
  const parent = dirname(dir)
  if (basename(parent) === 'node_modules') return parent
  return basename(parent).startsWith('@') && basename(dirname(parent)) === 'node_modules' ? dirname(parent) : null
}

/**
 * Every package under `appDir`'s node_modules that depends on google-auth-library: `{ users:
 * [{name, version, dir}], scanned, truncated }`. Breadth first over node_modules folders (nested
 * ones, and for pnpm the folder beside each package's real path), each real folder once.
 */
function dependents(appDir) {
  const queue = [join(appDir, 'node_modules')]
  const seenFolders = new Set()
  // The application itself, should a link lead back to it, is 'the application', not a package.
  const seenPackages = new Set([real(appDir) ?? appDir])
  const users = []
  let scanned = 0
  let truncated = false
  while (queue.length > 0 && !truncated) {
    const folder = real(queue.shift())
    if (folder === null || seenFolders.has(folder)) continue
    seenFolders.add(folder)
    for (const candidate of packageFolders(folder)) {
      const dir = real(candidate)
      if (dir === null || seenPackages.has(dir)) continue
      if (scanned >= MAX_PACKAGES) {
        truncated = true
        break
      }
      seenPackages.add(dir)
      scanned++
      const pkg = readJson(join(dir, 'package.json'))
      if (pkg === null) continue
      const name = nameOf(pkg)
      if (name && name !== NAME && DEPENDENCY_FIELDS.some((f) => pkg[f] && typeof pkg[f] === 'object' && Object.hasOwn(pkg[f], NAME))) {
        users.push({ name, version: versionOf(pkg), dir })
      }
      queue.push(join(dir, 'node_modules'))
      const holder = holderOf(dir)
      if (holder !== null) queue.push(holder)
    }
  }
  return { users, scanned, truncated }
}

/** Compare two versions by their leading major.minor.patch numbers. */
function compareVersions(a, b) {
  const parts = (v) => (/^(\d+)\.(\d+)\.(\d+)/.exec(v) ?? [0, -1, -1, -1]).slice(1).map(Number)
  const [x, y] = [parts(a), parts(b)]
  for (let i = 0; i < 3; i++) if (x[i] !== y[i]) return x[i] - y[i]
  return 0
}

/**
 * The copies of google-auth-library the application at `appDir` and its client libraries resolve:
 *   { application: { dir, name }, copies: [{ version, path, usedBy: [...] }], scanned, truncated, warning }
 * `path` is relative to `appDir`; `usedBy` names 'the application' and `name@version` of each
 * dependent package; the application's copy comes first. `warning` (more than one copy) is
 * `{ message, fixes: [...] }`, else null.
 */
function googleAuthLibraryCopies(appDir) {
  const appPkg = readJson(join(appDir, 'package.json'))
  const copies = new Map()
  const add = (resolved, user, top) => {
    if (resolved === null) return
    let copy = copies.get(resolved.dir)
    if (!copy) copies.set(resolved.dir, (copy = { version: resolved.version, dir: resolved.dir, users: [], top: [] }))
    copy.users.push(user)
    if (top) copy.top.push(top)
  }
  const own = resolveFrom(appDir)
  add(own, 'the application')
  const { users, scanned, truncated } = dependents(appDir)
  for (const u of users) {
    // A package the application can require by name (its real folder is what the application resolves).
    const top = real(join(appDir, 'node_modules', u.name)) === u.dir ? u.name : null
    add(resolveFrom(u.dir), `${u.name}@${u.version}`, top)
  }
  const list = [...copies.values()].sort((a, b) => (a.dir === own?.dir ? -1 : b.dir === own?.dir ? 1 : a.dir < b.dir ? -1 : 1))
  for (const c of list) c.users = [...new Set(c.users)].sort((a, b) => (a === 'the application' ? -1 : b === 'the application' ? 1 : a < b ? -1 : 1))
  return {
    application: { dir: appDir, name: appPkg ? nameOf(appPkg) : null },
    copies: list.map((c) => ({ version: c.version, path: relative(appDir, c.dir) || '.', usedBy: c.users })),
    scanned,
    truncated,
    warning: list.length > 1 ? warningFor(list, own, appDir) : null,
  }
}

function warningFor(list, own, appDir) {
  const newest = list.map((c) => c.version).sort(compareVersions).at(-1)
  const fixes = []
  for (const c of list) {
    if (own && c.dir === own.dir) continue
    const lib = [...c.top].sort((a, b) => Number(CLIENT_LIBRARY.test(b)) - Number(CLIENT_LIBRARY.test(a)) || (a < b ? -1 : 1))[0]
    const path = relative(appDir, c.dir).split(sep).join('/')
    const from = lib ? `require('node:module').createRequire(require.resolve('${lib}'))('${NAME}')` : `require('${path.startsWith('..') ? path : `./${path}`}')`
    const where = lib ? '' : ' in a file of the application folder'
    fixes.push(`for ${lib ?? c.users[0]} (${NAME} ${c.version}): fetcher.authClient({ googleAuthLibrary: ${from} })${where}; with the drop-in supplier, build the AwsClient from that copy`)
  }
  fixes.push(`or one copy for all: in package.json, "${NAME}": "^${newest}" (a version every library accepts) and "overrides": { "${NAME}": "$${NAME}" }, then npm install`)
  return {
    message: `${list.length} copies of ${NAME}: a client built on one copy is not an instance of another copy's classes, so a library on another copy does not recognise it (e.g. @google-cloud/storage: getCredentials() finds no credentials, getSignedUrl() fails)`,
    fixes,
  }
}

module.exports = { googleAuthLibraryCopies, MAX_PACKAGES }
