// aws-wif-supplier for ES module importers: the same objects as `require('aws-wif-supplier')`
// (index.js), loaded with require so that an `import` does not pay for Node's scan of a CommonJS
// module's exports (about 2 MB of memory on first use).
import { createRequire } from 'node:module'

const cjs = createRequire(import.meta.url)('./index.js')

export const { ContainerAwsCredentialsSupplier, GoogleTokenFetcher, diagnoseAws, describeAwsChain, describeProxy, trustSummary, __napiBindingTarget } = cjs
export default cjs
