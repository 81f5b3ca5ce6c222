// A private certificate authority for HTTPS tests, made with the openssl command line:
// a CA certificate and a server certificate it signs, for `localhost`, 127.0.0.1 and any extra
// host names. Nothing here is trusted by the machine: tests hand the CA over through
// NODE_EXTRA_CA_CERTS or a private mount namespace's system store.

import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

/** Why makePki cannot work here, or null. */
export function pkiUnavailableReason() {
  return spawnSync('openssl', ['version'], { stdio: 'ignore' }).status === 0 ? null : 'the openssl command is not installed'
}

function openssl(args, cwd) {
  const r = spawnSync('openssl', args, { cwd, encoding: 'utf8' })
  if (r.status !== 0) throw new Error(`openssl ${args[0]} failed: ${r.stderr}`)
}

/**
 * Make a CA and a server certificate in a new temp directory. Returns
 * {dir, caPath, caPem, keyPem, certPem}.
 */
export function makePki({ hostnames = [], name = 'aws-wif-supplier test CA' } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'aws-wif-pki-'))
  openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem',
    '-days', '2', '-subj', `/CN=${name}`, '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], dir)
  const san = ['DNS:localhost', 'IP:127.0.0.1', ...hostnames.map((h) => `DNS:${h}`)].join(',')
  writeFileSync(join(dir, 'ext.cnf'), `subjectAltName=${san}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\nkeyUsage=digitalSignature\n`)
  openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=localhost'], dir)
  openssl(['x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.pem', '-days', '2', '-extfile', 'ext.cnf'], dir)
  return {
    dir,
    caPath: join(dir, 'ca.pem'),
    caPem: readFileSync(join(dir, 'ca.pem'), 'utf8'),
    keyPem: readFileSync(join(dir, 'server.key'), 'utf8'),
    certPem: readFileSync(join(dir, 'server.pem'), 'utf8'),
  }
}
