/**
 * Custom kinds built from CustomResourceDefinitions, as the apiextensions server builds them: names, scope, printer
 * columns and the status subresource from the CRD, and its structural schema for pruning, defaults and validation.
 */
import { BaseError } from '@gitops-gate/contracts/errors';
import { readFileSync } from 'node:fs';
import { load } from 'js-yaml';
import { createStructuralSchema, type SchemaNode } from './structural.js';
import type { PrinterColumn, ResourceKind } from './types.js';

/** Errors in a CRD the sandbox cannot serve. */
export class CrdError extends BaseError<'INVALID_CRD'> {
  constructor(message: string) {
    super('INVALID_CRD', message);
  }
}

interface CrdVersion {
  name: string;
  served?: boolean;
  storage?: boolean;
  subresources?: { status?: object };
  additionalPrinterColumns?: PrinterColumn[];
  schema?: { openAPIV3Schema?: SchemaNode };
}

interface Crd {
  kind?: string;
  spec?: {
    group?: string;
    scope?: string;
    names?: { kind?: string; plural?: string; singular?: string; shortNames?: string[]; categories?: string[] };
    versions?: CrdVersion[];
  };
}

/**
 * The ResourceKind of one served version of a CRD (default: the storage version). `crd` is the CRD object or its
 * YAML text.
 */
export function kindFromCrd(crd: string | object, version?: string): ResourceKind {
  const doc = (typeof crd === 'string' ? load(crd) : crd) as Crd;
  if (doc?.kind !== 'CustomResourceDefinition' || !doc.spec) throw new CrdError('not a CustomResourceDefinition');
  const { group, scope, names, versions } = doc.spec;
  if (!group || !names?.kind || !names.plural) throw new CrdError('spec.group, spec.names.kind and spec.names.plural are required');
  if (scope !== 'Namespaced' && scope !== 'Cluster') throw new CrdError(`spec.scope must be Namespaced or Cluster, not ${String(scope)}`);
  const v = (versions ?? []).find((x) => (version ? x.name === version : x.storage));
  if (!v) throw new CrdError(`${names.plural}.${group}: no ${version ? `version ${version}` : 'storage version'}`);
  if (v.served === false) throw new CrdError(`${names.plural}.${group}: version ${v.name} is not served`);
  const schemaRoot = v.schema?.openAPIV3Schema;
  if (!schemaRoot) throw new CrdError(`${names.plural}.${group}/${v.name}: no openAPIV3Schema (a structural schema is required)`);
  const schema = createStructuralSchema(schemaRoot);
  return {
    group,
    version: v.name,
    kind: names.kind,
    plural: names.plural,
    singular: names.singular ?? names.kind.toLowerCase(),
    namespaced: scope === 'Namespaced',
    ...(names.shortNames ? { shortNames: names.shortNames } : {}),
    ...(names.categories ? { categories: names.categories } : {}),
    ...(v.subresources?.status ? { statusSubresource: true } : {}),
    // A CRD without printer columns prints Age only, as the apiserver does.
    ...(v.additionalPrinterColumns?.length ? { printerColumns: v.additionalPrinterColumns } : {}),
    schema,
    validate: (obj) => schema.validate(obj),
  };
}

/** kindFromCrd over a CRD file. */
export function kindFromCrdFile(path: string | URL, version?: string): ResourceKind {
  return kindFromCrd(readFileSync(path, 'utf8'), version);
}
