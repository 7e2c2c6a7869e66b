/** Objects present at start: the namespaces they name are created, and each object goes through the real create path. */
import { SandboxError } from './errors.js';
import { namespaceKind } from './kinds.js';
import { newNamespaceObject, prepareCreate } from './lifecycle.js';
import { isObject, namespaceExists, resourceKey, type SandboxState } from './state.js';
import { alreadyExists, StatusError } from './status.js';

export function seedObjects(s: SandboxState, namespaces: readonly string[], seed: readonly object[]): void {
  for (const ns of namespaces) ensureNamespace(s, ns);
  for (const raw of seed) {
    // Namespace objects in a seed just confirm what ensureNamespace would create.
    const b = raw as Record<string, unknown>;
    if (b['kind'] === 'Namespace' && b['apiVersion'] === 'v1' && isObject(b['metadata'])) {
      const name = b['metadata']['name'];
      if (typeof name === 'string' && namespaceExists(s, name)) continue;
    }
    seedOne(s, raw);
  }
}

function ensureNamespace(s: SandboxState, ns: string): void {
  if (!namespaceExists(s, ns))
    s.store.commit(resourceKey(namespaceKind), 'ADDED', prepareCreate(s, namespaceKind, newNamespaceObject(ns), undefined));
}
function seedOne(s: SandboxState, raw: object): void {
  const body = raw as Record<string, unknown>;
  const apiVersion = typeof body['apiVersion'] === 'string' ? body['apiVersion'] : '';
  const [group, version] = apiVersion.includes('/') ? apiVersion.split('/', 2) : ['', apiVersion];
  const kind = s.kinds.find((k) => k.group === group && k.version === version && k.kind === body['kind']);
  if (!kind) throw new SandboxError('UNKNOWN_KIND', `seed object of kind ${String(body['kind'])} (${apiVersion}) is not served`);
  const meta = isObject(body['metadata']) ? body['metadata'] : {};
  const ns = kind.namespaced ? (typeof meta['namespace'] === 'string' && meta['namespace'] ? meta['namespace'] : 'default') : undefined;
  try {
    if (ns !== undefined) ensureNamespace(s, ns);
    const { resourceVersion: _rv, uid: _uid, creationTimestamp: _ct, ...cleanMeta } = meta;
    const obj = prepareCreate(s, kind, { ...body, metadata: cleanMeta }, ns);
    if (s.store.get(resourceKey(kind), obj.metadata.namespace ?? '', obj.metadata.name)) {
      throw alreadyExists(kind.group, kind.plural, obj.metadata.name);
    }
    s.store.commit(resourceKey(kind), 'ADDED', obj);
  } catch (err) {
    if (err instanceof StatusError) throw new SandboxError('INVALID_SEED', `seed object rejected: ${err.message}`);
    throw err;
  }
}
