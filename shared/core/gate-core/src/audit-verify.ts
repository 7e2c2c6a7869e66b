/**
 * Verifying the audit trail's hash chains, over a port (AuditChainSource) that reads the stored trail: the Redis
 * reader is @gitops-gate/gate-store's createAuditTrail. Each record must hash to itself and follow the previous one of
 * its Application; trimmed chains start from their (signed) trim base; the stored head must be the last record; and,
 * with verifiers, every chain must match its latest signed checkpoint and any external checkpoints.
 */
import { openCheckpoint, type CheckpointVerifier } from './checkpoint.js';
import { AUDIT_GENESIS_HASH, recordHash, type AuditTrail, type DecisionRecord, type TrimBase } from './audit.js';

/** What verification reads of a stored trail. */
export interface AuditChainSource {
  /** Latest signed head checkpoint (note text) by Application. */
  checkpoints(): Promise<Record<string, string>>;
  /** One Application's latest signed head checkpoint, read again. */
  checkpoint(app: string): Promise<string | null>;
  /** Trim bases (TrimBase JSON) by Application. */
  bases(): Promise<Record<string, string>>;
  /** Every stored record, oldest first: its entry id and its JSON (undefined when the entry has none). */
  records(): AsyncIterable<[id: string, json: string | undefined]>;
  /** The stored chain head (hash of the newest record) of an Application. */
  head(app: string): Promise<string | null>;
}

export type ChainCheck = Awaited<ReturnType<AuditTrail['verifyChain']>>;
export type ChainCheckOptions = NonNullable<Parameters<AuditTrail['verifyChain']>[1]>;

/**
 * A trim between reading the bases and reading the records looks like deleted records: if the bases moved meanwhile,
 * verify again (a trim is one transaction, so the second pass sees bases and records of one state).
 */
export async function verifyAuditChain(source: AuditChainSource, app?: string, options: ChainCheckOptions = {}): Promise<ChainCheck> {
  const bases = JSON.stringify(await source.bases());
  const result = await verifyOnce(source, app, options);
  if (result.ok || JSON.stringify(await source.bases()) === bases) return result;
  return verifyOnce(source, app, options);
}

async function verifyOnce(source: AuditChainSource, app: string | undefined, options: ChainCheckOptions): Promise<ChainCheck> {
  const problems: string[] = [];
  const heads = new Map<string, string>();
  let checked = 0;
  const signed = options.verifiers ? openCheckpoints(await source.checkpoints(), app, options.verifiers, problems) : undefined;
  const external = openExternal(app, options.external ?? [], options.verifiers ?? [], problems);
  const sizes = new Map<string, number>();
  // Chains trimmed by retention start from their base: its hash is the retained head's prevHash.
  for (const [a, base] of openBases(await source.bases(), app, options.verifiers, problems)) {
    heads.set(a, base.hash);
    sizes.set(a, base.size);
  }
  for await (const [id, json] of source.records()) {
    let rec: DecisionRecord;
    try {
      rec = JSON.parse(json ?? '') as DecisionRecord;
    } catch {
      problems.push(`${id}: record is not valid JSON`);
      continue;
    }
    if (app && rec.app !== app) continue;
    checked += 1;
    const { hash, ...rest } = rec;
    if (recordHash(rest) !== hash) problems.push(`${id}: record ${rec.id} of ${rec.app} was modified (hash mismatch)`);
    const expectedPrev = heads.get(rec.app) ?? AUDIT_GENESIS_HASH;
    if (rec.prevHash !== expectedPrev)
      problems.push(`${id}: record ${rec.id} of ${rec.app} does not follow the previous record (deleted or reordered)`);
    heads.set(rec.app, hash);
    const n = (sizes.get(rec.app) ?? 0) + 1;
    sizes.set(rec.app, n);
    const cp = signed?.get(rec.app);
    if (cp && cp.size === n && cp.rootHash !== hash) {
      problems.push(
        `${rec.app}: records were rewritten: the signed checkpoint of ${n} records names head ${cp.rootHash}, the chain has ${hash}`,
      );
    }
    for (const e of external.get(rec.app) ?? []) {
      if (e.size === n && e.rootHash !== hash)
        problems.push(
          `${rec.app}: records were rewritten: an external checkpoint of ${n} records names head ${e.rootHash}, the chain has ${hash}`,
        );
    }
  }
  // The stored head must be the last record: catches deletion of the newest records.
  for (const [a, h] of heads) {
    const stored = await source.head(a);
    if (stored !== h) problems.push(`${a}: newest record is missing (chain head ${stored ?? 'none'} ≠ last record ${h})`);
  }
  if (signed && options.verifiers) await compareWithCheckpoints(source, signed, sizes, heads, options.verifiers, problems);
  for (const [a, list] of external) {
    const longest = Math.max(...list.map((e) => e.size));
    const n = sizes.get(a) ?? 0;
    if (n < longest)
      problems.push(`${a}: records were deleted or rolled back: an external checkpoint covers ${longest}, the chain has ${n}`);
  }
  return { ok: problems.length === 0, checked, problems, ...(signed ? { checkpoints: signed.size } : {}) };
}

/**
 * Trim bases by Application. With verifiers a base counts only if signed as a trim base by a trusted key: otherwise
 * whoever deletes the oldest records could write a base that makes the rest verify.
 */
function openBases(
  stored: Record<string, string>,
  app: string | undefined,
  verifiers: CheckpointVerifier[] | undefined,
  problems: string[],
) {
  const out = new Map<string, { size: number; hash: string }>();
  for (const [a, json] of Object.entries(stored)) {
    if (app && a !== app) continue;
    let base: TrimBase;
    try {
      base = JSON.parse(json) as TrimBase;
    } catch {
      problems.push(`${a}: trim base is not valid JSON`);
      continue;
    }
    if (verifiers) {
      try {
        if (!base.note) throw new Error('unsigned');
        const cp = openCheckpoint(base.note, verifiers);
        if (!cp.origin.startsWith('gitops-gate-trim/') || !cp.origin.endsWith(`/${a}`)) throw new Error(`signed for ${cp.origin}`);
        if (cp.size !== base.size || cp.rootHash !== base.hash) throw new Error('its signed note names another size or hash');
      } catch (err) {
        problems.push(`${a}: trim base rejected (${(err as Error).message}): records before the retained ones are unaccounted for`);
        continue;
      }
    }
    out.set(a, { size: base.size, hash: base.hash });
  }
  return out;
}

/** The verified latest checkpoint per Application (of `app` only, if given); what fails to verify is a problem. */
function openCheckpoints(stored: Record<string, string>, app: string | undefined, verifiers: CheckpointVerifier[], problems: string[]) {
  const out = new Map<string, { size: number; rootHash: string }>();
  for (const [a, note] of Object.entries(stored)) {
    if (app && a !== app) continue;
    const cp = openAppCheckpoint(a, note, verifiers, problems);
    if (cp) out.set(a, cp);
  }
  return out;
}

/** External checkpoints by Application (from their origin lines), each verified; bad ones are problems. */
function openExternal(app: string | undefined, notes: string[], verifiers: CheckpointVerifier[], problems: string[]) {
  const out = new Map<string, { size: number; rootHash: string }[]>();
  for (const [i, note] of notes.entries()) {
    const origin = /^gitops-gate\/[^/\n]+\/([^/\n]+\/[^/\n]+)\n/.exec(note);
    if (!origin?.[1]) {
      problems.push(`external checkpoint ${i + 1}: origin is not gitops-gate/<cluster>/<namespace>/<name>`);
      continue;
    }
    const a = origin[1];
    if (app && a !== app) continue;
    const cp = openAppCheckpoint(a, note, verifiers, problems);
    if (cp) out.set(a, [...(out.get(a) ?? []), cp]);
  }
  return out;
}

function openAppCheckpoint(app: string, note: string, verifiers: CheckpointVerifier[], problems: string[]) {
  try {
    const cp = openCheckpoint(note, verifiers);
    // The origin binds the checkpoint to this Application: one signed for another must not vouch for this chain.
    if (!cp.origin.startsWith('gitops-gate/') || !cp.origin.endsWith(`/${app}`)) {
      problems.push(`${app}: signed checkpoint is for ${cp.origin}, not this Application`);
      return undefined;
    }
    return cp;
  } catch (err) {
    problems.push(`${app}: signed checkpoint rejected: ${(err as Error).message}`);
    return undefined;
  }
}

async function compareWithCheckpoints(
  source: AuditChainSource,
  signed: Map<string, { size: number; rootHash: string }>,
  sizes: Map<string, number>,
  heads: Map<string, string>,
  verifiers: CheckpointVerifier[],
  problems: string[],
) {
  for (const [a, n] of sizes) {
    let cp = signed.get(a);
    if (cp && n > cp.size) {
      // The gate may have recorded while we read the records: its newer checkpoint must then cover exactly this.
      const again = await source.checkpoint(a);
      const fresh = again ? openAppCheckpoint(a, again, verifiers, []) : undefined;
      if (fresh && fresh.size === n && fresh.rootHash === heads.get(a)) cp = fresh;
    }
    if (!cp) {
      if (!problems.some((p) => p.startsWith(`${a}: signed checkpoint`)))
        problems.push(`${a}: no signed checkpoint covers its ${n} records`);
    } else if (n > cp.size) {
      problems.push(`${a}: ${n - cp.size} of ${n} records are not covered by the signed checkpoint (added without the key)`);
    }
  }
  for (const [a, cp] of signed) {
    const n = sizes.get(a) ?? 0;
    if (n < cp.size) problems.push(`${a}: records were deleted: the signed checkpoint covers ${cp.size}, the chain has ${n}`);
  }
}
