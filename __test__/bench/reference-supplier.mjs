// The JavaScript reference the benchmark compares against: the shape of google-auth-library's sample
// `customCredentialSupplierAwsWorkload.js`, an AwsSecurityCredentialsSupplier built on the AWS SDK
// for JavaScript v3. The provider chain is built once, in the constructor, as the sample does; the
// SDK memoizes the credentials inside it (and shares one in-flight load), per isolate.
//
// The sample resolves the region with `new STSClient({}).config.region()`; @aws-sdk/client-sts is not
// a dependency here, so the region comes from AWS_REGION (what that call returns when it is set).

import { fromNodeProviderChain } from '@aws-sdk/credential-providers'

export class ReferenceAwsSupplier {
  constructor() {
    this.provider = fromNodeProviderChain()
  }

  async getAwsRegion(_context) {
    const region = process.env.AWS_REGION
    if (!region) throw new Error('AWS_REGION is not set')
    return region
  }

  async getAwsSecurityCredentials(_context) {
    const c = await this.provider()
    return { accessKeyId: c.accessKeyId, secretAccessKey: c.secretAccessKey, token: c.sessionToken }
  }
}
