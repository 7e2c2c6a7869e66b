// The App (JWT) side of GitHub's authentication: the JWT rules and the two endpoints an App calls with it —
// minting an installation token and looking up a repository's installation.
import { randomBytes, verify, type KeyObject } from 'node:crypto';
import type { Reply } from './reply.js';
import { findRepo, type EmulatorState } from './state.js';

function b64urlJson(part: string | undefined): Record<string, unknown> | undefined {
  if (!part) return undefined;
  try {
    const v: unknown = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
    return v && typeof v === 'object' ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** GitHub's App JWT rules: RS256, signed by the App's key, iss = App id, iat in the past, exp ≤ iat + 10 minutes. */
export function checkAppJwt(jwt: string, appId: number, key: KeyObject, nowSeconds: number): string | undefined {
  const parts = jwt.split('.');
  if (parts.length !== 3) return 'A JSON web token could not be decoded';
  const [h, p, s] = parts as [string, string, string];
  const header = b64urlJson(h);
  const payload = b64urlJson(p);
  if (!header || !payload) return 'A JSON web token could not be decoded';
  if (header.alg !== 'RS256') return "'alg' must be RS256";
  if (!verify('RSA-SHA256', Buffer.from(`${h}.${p}`), key, Buffer.from(s, 'base64url'))) return 'A JSON web token could not be decoded';
  if (String(payload.iss) !== String(appId)) return "'Issuer' claim ('iss') must be an Integer";
  const iat = payload.iat;
  const exp = payload.exp;
  if (typeof iat !== 'number' || typeof exp !== 'number') return "'Issued at' and 'Expiration time' claims are required";
  // GitHub tolerates a minute of clock drift on iat, and no JWT may live longer than ten minutes.
  if (iat > nowSeconds + 60) return "'Issued at' claim ('iat') must be an Integer representing a time in the past";
  if (exp <= nowSeconds)
    return "'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires";
  if (exp - iat > 600) return "'Expiration time' claim ('exp') is too far in the future";
  return undefined;
}

/**
 * Answers the App-JWT endpoints (POST /app/installations/:id/access_tokens, GET /repos/:owner/:repo/installation);
 * undefined for any other request, which then needs an installation token.
 */
export function handleAppEndpoint(s: EmulatorState, path: string, method: string, bearer: string, reply: Reply): number | undefined {
  const mint = /^\/app\/installations\/(\d+)\/access_tokens$/.exec(path);
  const repoInstallation = /^\/repos\/([^/]+)\/([^/]+)\/installation$/.exec(path);
  if (!((mint && method === 'POST') || (repoInstallation && method === 'GET'))) return undefined;
  const problem = checkAppJwt(bearer, s.appId, s.key, Math.floor(s.now() / 1000));
  if (problem) return reply(401, { message: problem });
  if (repoInstallation) {
    const found = findRepo(s, repoInstallation[1]!, repoInstallation[2]!);
    return found
      ? reply(200, { id: found.inst.id, account: { login: found.inst.account }, app_id: s.appId })
      : reply(404, { message: 'Not Found' });
  }
  const inst = s.installations.find((i) => i.id === Number(mint![1]));
  if (!inst) return reply(404, { message: 'Not Found' });
  const token = `ghs_${randomBytes(18).toString('base64url')}`;
  const expiresAt = s.now() + s.ttl;
  s.tokens.set(token, { installationId: inst.id, expiresAt });
  return reply(201, {
    token,
    expires_at: new Date(expiresAt).toISOString().replace(/\.\d{3}Z$/, 'Z'),
    permissions: { contents: 'read', metadata: 'read', checks: 'write', statuses: 'write' },
    repository_selection: 'selected',
  });
}
