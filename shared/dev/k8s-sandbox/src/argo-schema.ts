/**
 * The structural schema of Argo CD's Application, for pruning unknown fields and dropping nulls as a real apiserver
 * serving Argo CD's CRD does. `@kubernetes-models/argo-cd` is generated from that CRD but ships only compiled
 * validators and TypeScript declarations (no JSON schema), so the field tree is read from the declarations: every
 * interface is `"field"?: Type;` lines over string/number/boolean, `Array<T>`, `{ [key: string]: T }`, inline
 * object literals and other interfaces of the package. Types, enums and required fields are still checked by the
 * package's own validator (kinds.ts).
 */
import { SandboxError } from './errors.js';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { SchemaNode } from './structural.js';

/** Types from other packages the Argo CD declarations use. */
const EXTERNAL: Record<string, SchemaNode> = {
  IIoK8sApimachineryPkgApisMetaV1ObjectMeta: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true },
  IIoK8sApimachineryPkgApisMetaV1ListMeta: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true },
  IIoK8sApimachineryPkgApisMetaV1Time: { type: 'string', format: 'date-time' },
  IIoK8sApimachineryPkgRuntimeRawExtension: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true },
  IIoK8sApimachineryPkgUtilIntstrIntOrString: { 'x-kubernetes-int-or-string': true },
  IIoK8sApiextensionsApiserverPkgApisApiextensionsV1JSON: { 'x-kubernetes-preserve-unknown-fields': true },
  IIoK8sApimachineryPkgApisMetaV1LabelSelector: {
    type: 'object',
    properties: {
      matchLabels: { type: 'object', additionalProperties: { type: 'string' } },
      matchExpressions: {
        type: 'array',
        items: {
          type: 'object',
          properties: { key: { type: 'string' }, operator: { type: 'string' }, values: { type: 'array', items: { type: 'string' } } },
        },
      },
    },
  },
};

/** Schemas of declaration files (`<path>.d.ts`, by absolute path without the extension), each read once. */
function createDeclarations(): (path: string) => SchemaNode {
  const cache = new Map<string, SchemaNode>();
  const resolving = new Set<string>();
  const file = (name: string): SchemaNode => {
    const hit = cache.get(name);
    if (hit) return hit;
    // A type that refers back to itself (none in Application today) keeps whatever is below it.
    if (resolving.has(name)) return { 'x-kubernetes-preserve-unknown-fields': true };
    resolving.add(name);
    const text = readFileSync(`${name}.d.ts`, 'utf8').replace(/\/\*[\s\S]*?\*\//g, '');
    const imports = new Map<string, string>();
    for (const m of text.matchAll(/import \{ (\w+) \} from "(\.{1,2}\/[\w./-]+)\.js";/g)) imports.set(m[1]!, join(dirname(name), m[2]!));
    const iface = /export interface \w+(?: extends [\w, ]+)? (\{[\s\S]*?\n\})/.exec(text);
    const alias = /export type I\w+ = ([\s\S]*?);\n/.exec(text);
    const src = iface?.[1] ?? alias?.[1];
    if (!src) throw new SandboxError('INVALID_SCHEMA', `no interface or type in ${name}.d.ts`);
    const node = parseType(src, (ref) => {
      const ext = EXTERNAL[ref];
      if (ext) return ext;
      const target = imports.get(ref);
      if (!target) throw new SandboxError('INVALID_SCHEMA', `${name}.d.ts: unknown type ${ref}`);
      return file(target);
    });
    resolving.delete(name);
    cache.set(name, node);
    return node;
  };
  return file;
}

/** Recursive descent over the small TypeScript type grammar the generated declarations use. */
function parseType(s: string, named: (name: string) => SchemaNode): SchemaNode {
  let i = 0;
  const ws = () => {
    while (i < s.length && /\s/.test(s[i]!)) i++;
  };
  const eat = (tok: string): boolean => {
    ws();
    if (!s.startsWith(tok, i)) return false;
    i += tok.length;
    return true;
  };
  const expect = (tok: string): void => {
    if (!eat(tok)) throw new SandboxError('INVALID_SCHEMA', `expected ${tok} at ${s.slice(i, i + 40)}`);
  };
  const members = (): SchemaNode => {
    const properties: Record<string, SchemaNode> = {};
    let additionalProperties: SchemaNode | undefined;
    while (!eat('}')) {
      if (eat('[key: string]:')) additionalProperties = type();
      else {
        expect('"');
        const end = s.indexOf('"', i);
        const name = s.slice(i, end);
        i = end + 1;
        eat('?');
        expect(':');
        properties[name] = type();
      }
      expect(';');
    }
    return additionalProperties ? { type: 'object', additionalProperties } : { type: 'object', properties };
  };
  const type = (): SchemaNode => {
    ws();
    if (eat('Array<')) {
      const items = type();
      expect('>');
      return { type: 'array', items };
    }
    if (eat('{')) return members();
    const lit = /^"[^"]*"/.exec(s.slice(i));
    if (lit) {
      i += lit[0].length;
      return { type: 'string' };
    }
    const id = /^\w+/.exec(s.slice(i));
    if (!id) throw new SandboxError('INVALID_SCHEMA', `expected a type at ${s.slice(i, i + 40)}`);
    i += id[0].length;
    if (id[0] === 'string' || id[0] === 'boolean') return { type: id[0] };
    if (id[0] === 'number') return { type: 'number' };
    return named(id[0]);
  };
  return type();
}

let application: SchemaNode | undefined;

/** Argo CD's Application as a structural schema (field tree only). */
export function argoApplicationSchema(): SchemaNode {
  if (!application) {
    const file = fileURLToPath(import.meta.resolve('@kubernetes-models/argo-cd/argoproj.io/v1alpha1/Application'));
    application = createDeclarations()(file.replace(/\.js$/, ''));
  }
  return application;
}
