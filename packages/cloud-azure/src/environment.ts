import { z } from 'zod';
import { LaunchValidationError, type CallContext } from '@launch/core';
import { closest, zodIssues } from '@launch/core/internal';
import type { TokenCredential, AccessToken } from '@azure/identity';
import { DEFAULT_CHAIN, tokenError } from './errors.js';
import { loadIdentity } from './sdk.js';

export type { TokenCredential, AccessToken };

/** The scope of Azure Storage tokens: what `verify` asks for. */
export const STORAGE_SCOPE = 'https://storage.azure.com/.default';

const optionsSchema = z
  .object({
    credential: z
      .custom<TokenCredential>(
        (v) => typeof v === 'object' && v !== null && typeof (v as TokenCredential).getToken === 'function',
        'a TokenCredential (an object with getToken)',
      )
      .optional(),
    credentialName: z.string().min(1).optional(),
    tenantId: z
      .string()
      .regex(/^[A-Za-z0-9.-]+$/, 'a tenant id (GUID) or domain')
      .optional(),
    managedIdentityClientId: z.string().min(1).optional(),
  })
  .strict();

/** Options of {@link createAzureEnvironment}. */
export interface AzureEnvironmentOptions {
  /**
   * The credential to use instead of `DefaultAzureCredential` (tests, embedders). Its secrets are
   * never logged. The agent leaves it unset so the default chain applies.
   */
  credential?: TokenCredential;
  /** How errors name an injected `credential` (e.g. `ClientSecretCredential`). Default `the given credential`. */
  credentialName?: string;
  /** The tenant, when it cannot be read from tokens (the ACR token exchange sends it). Default: the token's `tid`. */
  tenantId?: string;
  /** Client id of a user-assigned managed identity (`DefaultAzureCredential`'s `managedIdentityClientId`). */
  managedIdentityClientId?: string;
}

/** What `verify` learnt from the storage token. */
export interface AzureIdentity {
  /** The tenant of the token (its `tid` claim), when the token is a JWT that says. */
  tenantId: string | undefined;
  /** The principal's object id (`oid`), when the token says. */
  objectId: string | undefined;
  expiresOnTimestamp: number;
}

/** An Azure environment (`environment.type: azure`): a credential and a check that it works. */
export interface AzureEnvironment {
  readonly type: 'azure';
  /** The tenant from the options, if any. */
  readonly tenantId: string | undefined;
  /** The credential chain (or the one credential) tried, as errors name it. */
  readonly chain: string;
  /** Gets a storage-scoped token; fails with `azure.no_credentials` naming the chain tried. */
  verify(ctx: CallContext): Promise<AzureIdentity>;
  /** An AAD token for `scope` (e.g. `https://management.azure.com/.default`). A secret: never log it. */
  getToken(scope: string, ctx: CallContext): Promise<AccessToken>;
  /** The credential, created on first use (this loads `@azure/identity` unless one was injected). */
  credential(): Promise<TokenCredential>;
}

/** Parses factory options with zod; secrets are never echoed. */
export function parseWith<S extends z.ZodType>(
  schema: S,
  input: unknown,
  subject: string,
  keys: string[],
  secretKeys: string[] = ['credential', 'accountKey'],
): z.output<S> {
  const result = schema.safeParse(input ?? {});
  if (result.success) return result.data;
  const issues = zodIssues(result.error, input, (key) => closest(key, keys)).map((issue) =>
    secretKeys.some((k) => issue.path.startsWith(k)) ? { ...issue, found: '(hidden)', message: `expected ${issue.expected} (value hidden)` } : issue,
  );
  throw new LaunchValidationError({ code: 'azure.invalid_options', stage: 'agent', subject, issues });
}

/** The claims of a JWT, or an empty object when `token` is not one. Reads only; verifies nothing. */
export function jwtClaims(token: string): Record<string, unknown> {
  const part = token.split('.')[1];
  if (!part) return {};
  try {
    const claims: unknown = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
    return typeof claims === 'object' && claims !== null ? (claims as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

/**
 * The Azure environment (`environment: { type: azure }`, which takes no other keys in W&B's config).
 * Credentials come from `DefaultAzureCredential` (environment variables, workload identity, managed
 * identity, Azure CLI, Azure PowerShell, Azure Developer CLI), created on first use; `@azure/identity`
 * is loaded only then. `verify` gets a token for Azure Storage and, when none can be had, fails
 * naming every credential of the chain.
 *
 * @example
 * const azure = createAzureEnvironment();
 * const { tenantId } = await azure.verify({ logger });
 */
export function createAzureEnvironment(options: AzureEnvironmentOptions = {}): AzureEnvironment {
  const opts = parseWith(optionsSchema, options, 'Azure environment options', Object.keys(optionsSchema.shape));
  const chain = opts.credential ? (opts.credentialName ?? 'the given credential') : `DefaultAzureCredential: ${DEFAULT_CHAIN}`;
  let created: Promise<TokenCredential> | undefined;
  const credential = (): Promise<TokenCredential> =>
    opts.credential
      ? Promise.resolve(opts.credential)
      : (created ??= loadIdentity().then(
          ({ DefaultAzureCredential }) =>
            new DefaultAzureCredential({
              ...(opts.tenantId ? { tenantId: opts.tenantId } : {}),
              ...(opts.managedIdentityClientId ? { managedIdentityClientId: opts.managedIdentityClientId } : {}),
            }) as TokenCredential,
        ));

  const getToken = async (scope: string, ctx: CallContext, what = 'Azure environment'): Promise<AccessToken> => {
    let token: AccessToken | null;
    try {
      token = await (await credential()).getToken(scope, { abortSignal: ctx.signal as never });
    } catch (error) {
      throw tokenError({ what, scope, chain, stage: 'agent' }, error);
    }
    if (!token?.token)
      throw tokenError(
        { what, scope, chain, stage: 'agent' },
        Object.assign(new Error('the credential returned no token'), { name: 'CredentialUnavailableError' }),
      );
    return token;
  };

  return {
    type: 'azure',
    tenantId: opts.tenantId,
    chain,
    credential,
    getToken: (scope, ctx) => getToken(scope, ctx),
    async verify(ctx: CallContext): Promise<AzureIdentity> {
      const token = await getToken(STORAGE_SCOPE, ctx, 'Azure environment verify');
      const claims = jwtClaims(token.token);
      const identity: AzureIdentity = {
        tenantId: typeof claims.tid === 'string' ? claims.tid : opts.tenantId,
        objectId: typeof claims.oid === 'string' ? claims.oid : undefined,
        expiresOnTimestamp: token.expiresOnTimestamp,
      };
      ctx.logger.debug({ tenantId: identity.tenantId, objectId: identity.objectId }, 'azure environment: verified');
      return identity;
    },
  };
}
