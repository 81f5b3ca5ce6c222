// Must NOT compile (typings.test.mjs asserts tsc reports TS2322 on this file): the negative control
// showing that tsc really checks the supplier's types, so expect-error.ts cannot pass vacuously.
import { ContainerAwsCredentialsSupplier } from '../../index'

export async function wrong(): Promise<number> {
  const n: number = await new ContainerAwsCredentialsSupplier().getAwsSecurityCredentials()
  return n
}
