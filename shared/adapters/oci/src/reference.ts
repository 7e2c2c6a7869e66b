/**
 * Image names as people write them (`ghcr.io/org/app`, `localhost:5000/x`, `nginx`) → the registry host to talk to and
 * the repository path inside it. Only repository names are accepted: a tag or digest in the name is an error, because
 * what gets verified is always the digest passed separately.
 */
import { OciError } from './errors.js';

export interface ImageName {
  /** Registry host as written (lower-cased), with port: `ghcr.io`, `localhost:5000`, `docker.io`. */
  host: string;
  /** Host the HTTP API lives on (`registry-1.docker.io` for Docker Hub, otherwise `host`). */
  apiHost: string;
  /** Repository path inside the registry: `org/app`, `library/nginx`. */
  repository: string;
  /** Canonical `host/repository`. */
  name: string;
}

// distribution/reference: path components are lower-case alphanumerics joined by single separators.
const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const HOST =
  /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[0-9a-fA-F:.]+\])(?::[0-9]{1,5})?$/;
const DOCKER_HUB = new Set(['docker.io', 'index.docker.io', 'registry-1.docker.io']);

function invalid(image: string, why: string): never {
  throw new OciError('INVALID_REFERENCE', `invalid image name ${JSON.stringify(image.slice(0, 300))}: ${why}`);
}

export function parseImageName(image: string): ImageName {
  if (typeof image !== 'string' || image === '') invalid(String(image), 'empty');
  if (image.length > 255) invalid(image, 'longer than 255 characters');
  if (image.includes('@')) invalid(image, 'a digest belongs in the digest field, not the name');
  const slash = image.indexOf('/');
  let host = 'docker.io';
  let path = image;
  if (slash > 0) {
    const first = image.slice(0, slash);
    // Like docker: the first component is a registry host only when it looks like one.
    if (first.includes('.') || first.includes(':') || first === 'localhost') {
      host = first.toLowerCase();
      path = image.slice(slash + 1);
    }
  }
  if (!HOST.test(host)) invalid(image, 'bad registry host');
  const parts = path.split('/');
  for (const p of parts) {
    if (p.includes(':')) invalid(image, 'a tag is not allowed in the name');
    if (!COMPONENT.test(p)) invalid(image, `bad repository component ${JSON.stringify(p)}`);
  }
  const hub = DOCKER_HUB.has(host);
  if (hub) host = 'docker.io';
  const repository = hub && parts.length === 1 ? `library/${parts[0]!}` : parts.join('/');
  return { host, apiHost: hub ? 'registry-1.docker.io' : host, repository, name: `${host}/${repository}` };
}

/** `sha256:<64 lower-case hex>`; anything else is rejected (other algorithms are not verified here). */
export function parseSha256Digest(digest: string): string {
  if (typeof digest !== 'string' || !/^sha256:[0-9a-f]{64}$/.test(digest)) {
    throw new OciError('INVALID_DIGEST', `digest must be sha256:<64 lower-case hex>, got ${JSON.stringify(String(digest).slice(0, 100))}`);
  }
  return digest.slice(7);
}
