/** Server-side printing: the meta.k8s.io/v1 Table that `kubectl get` asks for. */
import type { Obj } from './store.js';
import type { PrinterColumn, ResourceKind } from './types.js';

const NAME_DESCRIPTION =
  'Name must be unique within a namespace. Is required when creating resources, although some resources may allow a ' +
  'client to request the generation of an appropriate name automatically.';

const DEFAULT_COLUMNS: PrinterColumn[] = [
  {
    name: 'Age',
    type: 'date',
    jsonPath: '.metadata.creationTimestamp',
    description: 'CreationTimestamp is a timestamp representing the server time when this object was created.',
  },
];

export type IncludeObject = 'None' | 'Metadata' | 'Object';

/** duration.HumanDuration, which the apiserver uses for `date` cells (so kubectl shows `5m`, `3h12m`, `12d`). */
export function humanDuration(ms: number): string {
  const seconds = Math.floor(ms / 1000);
  if (seconds < -1) return '<invalid>';
  if (seconds < 0) return '0s';
  if (seconds < 120) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 10) {
    const s = seconds % 60;
    return s === 0 ? `${minutes}m` : `${minutes}m${s}s`;
  }
  if (minutes < 180) return `${minutes}m`;
  const hours = Math.floor(minutes / 60);
  if (hours < 8) {
    const m = minutes % 60;
    return m === 0 ? `${hours}h` : `${hours}h${m}m`;
  }
  if (hours < 48) return `${hours}h`;
  if (hours < 24 * 8) {
    const h = hours % 24;
    return h === 0 ? `${Math.floor(hours / 24)}d` : `${Math.floor(hours / 24)}d${h}h`;
  }
  if (hours < 24 * 365 * 2) return `${Math.floor(hours / 24)}d`;
  if (hours < 24 * 365 * 8) {
    const dy = Math.floor(hours / 24) % 365;
    const y = Math.floor(hours / 24 / 365);
    return dy === 0 ? `${y}y` : `${y}y${dy}d`;
  }
  return `${Math.floor(hours / 24 / 365)}y`;
}

// `.a.b`, `[0]` and the filter CRD printer columns use for conditions, `[?(@.type=="Ready")]` (first match).
const JSON_PATH_STEP = /\.([A-Za-z0-9_-]+)|\[(\d+)\]|\[\?\(@\.([A-Za-z0-9_-]+)==(?:"([^"]*)"|'([^']*)')\)\]/gy;

function lookup(obj: unknown, jsonPath: string): unknown {
  let cur: unknown = obj;
  const path = jsonPath.startsWith('.') ? jsonPath : `.${jsonPath}`;
  JSON_PATH_STEP.lastIndex = 0;
  let at = 0;
  for (let m = JSON_PATH_STEP.exec(path); m; m = JSON_PATH_STEP.exec(path)) {
    at = JSON_PATH_STEP.lastIndex;
    if (cur === null || typeof cur !== 'object') return undefined;
    const [, field, index, key, dq, sq] = m;
    if (field !== undefined) cur = Array.isArray(cur) ? undefined : (cur as Record<string, unknown>)[field];
    else if (index !== undefined) cur = Array.isArray(cur) ? cur[Number(index)] : undefined;
    else if (key !== undefined) {
      const want = dq ?? sq;
      cur = Array.isArray(cur)
        ? cur.find((x) => x !== null && typeof x === 'object' && (x as Record<string, unknown>)[key] === want)
        : undefined;
    }
  }
  return at === path.length ? cur : undefined;
}

function cell(col: PrinterColumn, value: unknown, now: number): unknown {
  if (value === undefined || value === null) return null;
  switch (col.type) {
    case 'string':
      // JSON values only: numbers and booleans print as String() would.
      return typeof value === 'string' ? value : JSON.stringify(value);
    case 'integer':
      return typeof value === 'number' ? Math.trunc(value) : null;
    case 'number':
      return typeof value === 'number' ? value : null;
    case 'boolean':
      return typeof value === 'boolean' ? value : null;
    case 'date': {
      if (typeof value !== 'string') return null;
      const t = Date.parse(value);
      return Number.isNaN(t) ? '<invalid>' : humanDuration(now - t);
    }
    default:
      return null;
  }
}

export function columnsFor(kind: ResourceKind): PrinterColumn[] {
  return kind.printerColumns && kind.printerColumns.length > 0 ? kind.printerColumns : DEFAULT_COLUMNS;
}

function rowObject(obj: Obj, include: IncludeObject): object | undefined {
  if (include === 'None') return undefined;
  if (include === 'Object') return obj;
  return { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: obj.metadata };
}

export function toTable(
  kind: ResourceKind,
  objs: Obj[],
  opts: { include: IncludeObject; noHeaders?: boolean; listMeta: Record<string, unknown>; now?: number },
): object {
  const now = opts.now ?? Date.now();
  const cols = columnsFor(kind);
  const table: Record<string, unknown> = { kind: 'Table', apiVersion: 'meta.k8s.io/v1', metadata: opts.listMeta };
  if (!opts.noHeaders) {
    table['columnDefinitions'] = [
      { name: 'Name', type: 'string', format: 'name', description: NAME_DESCRIPTION, priority: 0 },
      ...cols.map((c) => ({
        name: c.name,
        type: c.type,
        format: c.format ?? '',
        description: c.description ?? `Custom resource definition column (in JSONPath format): ${c.jsonPath}`,
        priority: c.priority ?? 0,
      })),
    ];
  }
  table['rows'] = objs.map((o) => {
    const row: Record<string, unknown> = {
      cells: [o.metadata.name, ...cols.map((c) => cell(c, lookup(o, c.jsonPath), now))],
    };
    const ro = rowObject(o, opts.include);
    if (ro) row['object'] = ro;
    return row;
  });
  return table;
}

export function partialMetadata(obj: Obj): object {
  return { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: obj.metadata };
}
