import { badRequest } from './status.js';

/** One requirement of a label selector (k8s.io/apimachinery/pkg/labels). */
export interface LabelRequirement {
  key: string;
  op: 'in' | 'notin' | 'exists' | '!' | '=' | '!=' | 'gt' | 'lt';
  values: string[];
}

export type Labels = Record<string, string>;

const KEY = /^([a-z0-9A-Z]([-a-z0-9A-Z_.]*[a-z0-9A-Z])?\/)?[a-z0-9A-Z]([-a-z0-9A-Z_.]*[a-z0-9A-Z])?$/;
const VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

/**
 * Splits on commas that are not inside parentheses: `a in (x,y),b!=c` -> [`a in (x,y)`, `b!=c`].
 */
function splitTopLevel(s: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let cur = '';
  for (const ch of s) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (ch === ',' && depth === 0) {
      out.push(cur);
      cur = '';
    } else cur += ch;
  }
  out.push(cur);
  return out.map((p) => p.trim()).filter((p) => p.length > 0);
}

function checkKey(key: string, raw: string): void {
  if (!KEY.test(key)) throw badRequest(`unable to parse requirement: invalid label key "${key}" in "${raw}"`);
}

function checkValue(value: string, raw: string): void {
  if (value.length > 63 || !VALUE.test(value)) {
    throw badRequest(`unable to parse requirement: invalid label value: "${value}" in "${raw}"`);
  }
}

/** Parses a `labelSelector` query value; throws a 400 Status for syntax the real parser rejects. */
export function parseLabelSelector(selector: string | null | undefined): LabelRequirement[] {
  if (!selector || selector.trim() === '') return [];
  const reqs: LabelRequirement[] = [];
  for (const part of splitTopLevel(selector)) {
    let m: RegExpExecArray | null;
    if ((m = /^([^\s!=<>()]+)\s+(in|notin)\s*\(([^)]*)\)$/.exec(part))) {
      const key = m[1] ?? '';
      checkKey(key, selector);
      const values = (m[3] ?? '')
        .split(',')
        .map((v) => v.trim())
        .filter((v, i, arr) => v !== '' || arr.length === 1);
      for (const v of values) checkValue(v, selector);
      reqs.push({ key, op: m[2] === 'in' ? 'in' : 'notin', values });
    } else if ((m = /^!\s*([^\s!=<>()]+)$/.exec(part))) {
      checkKey(m[1] ?? '', selector);
      reqs.push({ key: m[1] ?? '', op: '!', values: [] });
    } else if ((m = /^([^\s!=<>()]+)\s*(==|=|!=|>|<)\s*([^\s,()]*)$/.exec(part))) {
      const key = m[1] ?? '';
      const value = m[3] ?? '';
      checkKey(key, selector);
      const rawOp = m[2];
      if (rawOp === '>' || rawOp === '<') {
        if (!/^-?\d+$/.test(value)) {
          throw badRequest(`unable to parse requirement: for 'gt', 'lt' operators, the value must be an integer`);
        }
        reqs.push({ key, op: rawOp === '>' ? 'gt' : 'lt', values: [value] });
      } else {
        checkValue(value, selector);
        reqs.push({ key, op: rawOp === '!=' ? '!=' : '=', values: [value] });
      }
    } else if ((m = /^([^\s!=<>()]+)$/.exec(part))) {
      checkKey(m[1] ?? '', selector);
      reqs.push({ key: m[1] ?? '', op: 'exists', values: [] });
    } else {
      throw badRequest(`unable to parse requirement: found '${part}', expected: identifier`);
    }
  }
  return reqs;
}

export function matchesLabels(reqs: LabelRequirement[], labels: Labels | undefined): boolean {
  const l = labels ?? {};
  for (const r of reqs) {
    const has = Object.prototype.hasOwnProperty.call(l, r.key);
    const v = has ? l[r.key] : undefined;
    switch (r.op) {
      case 'exists':
        if (!has) return false;
        break;
      case '!':
        if (has) return false;
        break;
      case '=':
      case 'in':
        if (!has || !r.values.includes(v ?? '')) return false;
        break;
      // Like the real matcher, `!=`/notin also select objects that lack the key entirely.
      case '!=':
      case 'notin':
        if (has && r.values.includes(v ?? '')) return false;
        break;
      case 'gt':
      case 'lt': {
        if (!has || !/^-?\d+$/.test(v ?? '')) return false;
        const n = Number(v);
        const bound = Number(r.values[0]);
        if (r.op === 'gt' ? !(n > bound) : !(n < bound)) return false;
        break;
      }
    }
  }
  return true;
}

export interface FieldRequirement {
  field: string;
  op: '=' | '!=';
  value: string;
}

/**
 * Parses a `fieldSelector`. Custom resources only index metadata.name and metadata.namespace, and the real server
 * answers any other field with 400, so `allowed` lists what this resource supports.
 */
export function parseFieldSelector(selector: string | null | undefined, allowed: string[]): FieldRequirement[] {
  if (!selector || selector.trim() === '') return [];
  const reqs: FieldRequirement[] = [];
  for (const part of selector.split(',').map((p) => p.trim())) {
    if (!part) continue;
    const m = /^([^=!]+?)\s*(==|=|!=)\s*(.*)$/.exec(part);
    if (!m) throw badRequest(`invalid field selector: '${part}': field selector requires an operator`);
    const field = (m[1] ?? '').trim();
    if (!allowed.includes(field)) {
      throw badRequest(`"${field}" is not a known field selector: only ${allowed.map((a) => `"${a}"`).join(', ')}`);
    }
    reqs.push({ field, op: m[2] === '!=' ? '!=' : '=', value: (m[3] ?? '').trim() });
  }
  return reqs;
}

export function matchesFields(reqs: FieldRequirement[], fields: Record<string, string>): boolean {
  for (const r of reqs) {
    const v = fields[r.field] ?? '';
    if (r.op === '=' ? v !== r.value : v === r.value) return false;
  }
  return true;
}
