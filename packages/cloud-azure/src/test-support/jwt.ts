import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/** HS256 JWTs for the test servers: the AAD server signs, the ACR server verifies with the same signer. */
export interface TestJwtSigner {
  sign(claims: Record<string, unknown>): string;
  /** The claims when the signature is right and `exp` is in the future; otherwise undefined. */
  verify(token: string): Record<string, unknown> | undefined;
}

export function createTestJwtSigner(now: () => number = Date.now): TestJwtSigner {
  const key = randomBytes(32);
  const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
  const mac = (data: string) => createHmac('sha256', key).update(data).digest();
  return {
    sign(claims) {
      const data = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64(claims)}`;
      return `${data}.${mac(data).toString('base64url')}`;
    },
    verify(token) {
      const parts = token.split('.');
      if (parts.length !== 3) return undefined;
      const expected = mac(`${parts[0]}.${parts[1]}`);
      const given = Buffer.from(parts[2]!, 'base64url');
      if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined;
      try {
        const claims = JSON.parse(Buffer.from(parts[1]!, 'base64url').toString('utf8')) as Record<string, unknown>;
        if (typeof claims.exp !== 'number' || claims.exp * 1000 <= now()) return undefined;
        return claims;
      } catch {
        return undefined;
      }
    },
  };
}
