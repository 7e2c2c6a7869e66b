/**
 * Server-rendered pages: plain HTML with inline CSS, no script, no external assets, so the page works under
 * `default-src 'none'` and in any browser an on-call engineer has. Every value goes through `html`, which escapes.
 */
import type { DecisionRecord } from '@gitops-gate/gate-core';
import { html, SafeHtml } from './html.js';
import { findPinRecord, forgeCommitUrl, isFullSha, type AppSummary } from './model.js';

export interface Filter {
  app?: string;
  sha?: string;
  limit: number;
}

/** A part of the page that could not be loaded: the rest of the page still renders, with this message in its place. */
export interface LoadError {
  error: string;
}

export type Loaded<T> = T | LoadError;

export function isLoadError<T>(v: Loaded<T>): v is LoadError {
  return typeof v === 'object' && v !== null && 'error' in v && typeof v.error === 'string';
}

const GENESIS = '0'.repeat(64);

const CSS = `
:root{--fg:#1f2328;--muted:#59636e;--line:#d1d9e0;--bg:#fff;--soft:#f6f8fa;--accent:#0969da;
--ok:#1a7f37;--ok-bg:#dafbe1;--skip:#59636e;--skip-bg:#eff2f5;--bad:#cf222e;--bad-bg:#ffebe9;--warn:#9a6700;--warn-bg:#fff8c5}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:var(--fg);background:var(--soft)}
header{background:#24292f;color:#fff;padding:10px 24px;display:flex;gap:16px;align-items:baseline}
header a{color:#fff;text-decoration:none;font-weight:600;font-size:16px}
header span{color:#c9d1d9;font-size:13px}
main{max-width:1280px;margin:0 auto;padding:16px 24px 40px}
h1{font-size:20px;margin:8px 0 4px}
h2{font-size:16px;margin:28px 0 8px}
p.sub{color:var(--muted);margin:0 0 12px}
a{color:var(--accent)}
code,.mono{font-family:ui-monospace,SFMono-Regular,"SF Mono",Menlo,Consolas,monospace;font-size:12.5px}
h1.mono{font-size:20px}
.nowrap,time{white-space:nowrap}
table{width:100%;border-collapse:collapse;background:var(--bg);border:1px solid var(--line);border-radius:6px}
th,td{text-align:left;vertical-align:top;padding:7px 10px;border-bottom:1px solid var(--line)}
th{background:var(--soft);font-weight:600;font-size:12px;color:var(--muted);text-transform:uppercase;letter-spacing:.03em}
tbody tr:last-child td{border-bottom:0}
td{overflow-wrap:anywhere}
.small{font-size:12px;color:var(--muted)}
.chain{font-size:11px;color:var(--muted);line-height:1.35;overflow-wrap:anywhere}
.broken{color:var(--bad)}
.badge{display:inline-block;padding:1px 8px;border-radius:999px;font-size:12px;font-weight:600;white-space:nowrap;border:1px solid transparent}
.b-ok{color:var(--ok);background:var(--ok-bg);border-color:#aceebb}
.b-skip{color:var(--skip);background:var(--skip-bg);border-color:var(--line)}
.b-bad{color:var(--bad);background:var(--bad-bg);border-color:#ffcecb}
.b-warn{color:var(--warn);background:var(--warn-bg);border-color:#f5e0a0}
.empty{background:var(--bg);border:1px dashed var(--line);border-radius:6px;padding:18px;color:var(--muted)}
.notice{border:1px solid #ffcecb;background:var(--bad-bg);color:#82071e;border-radius:6px;padding:10px 14px;margin:12px 0}
.note{border:1px solid #f5e0a0;background:var(--warn-bg);color:#6c4a00;border-radius:6px;padding:10px 14px;margin:12px 0}
form.filters{display:flex;flex-wrap:wrap;gap:10px;align-items:end;background:var(--bg);border:1px solid var(--line);border-radius:6px;padding:10px 12px;margin:8px 0 12px}
form.filters label{display:flex;flex-direction:column;font-size:12px;color:var(--muted);gap:3px}
form.filters input,form.filters select{font:inherit;padding:5px 8px;border:1px solid var(--line);border-radius:6px;min-width:200px;background:#fff}
form.filters select{min-width:80px}
form.filters button{font:inherit;font-weight:600;padding:5px 14px;border-radius:6px;border:1px solid #1f883d;background:#1f883d;color:#fff;cursor:pointer}
dl.kv{display:grid;grid-template-columns:max-content 1fr;gap:6px 18px;background:var(--bg);border:1px solid var(--line);border-radius:6px;padding:12px 16px;margin:0}
dl.kv dt{color:var(--muted);font-size:12px;padding-top:2px}
dl.kv dd{margin:0;overflow-wrap:anywhere}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(360px,1fr));gap:16px}
.cards h2{margin-top:12px}
`;

function page(title: string, basePath: string, body: SafeHtml): string {
  return html`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${title} · gitops-gate</title><style>${new SafeHtml(CSS)}</style></head>
<body><header><a href="${basePath}">gitops-gate</a><span>which verified commit each Argo CD Application is pinned to, and who signed it</span></header>
<main>${body}</main></body></html>`.value;
}

function appHref(basePath: string, key: string): string {
  const [ns = '', name = ''] = key.split('/');
  return `${basePath}/app/${encodeURIComponent(ns)}/${encodeURIComponent(name)}`;
}

function query(basePath: string, params: Record<string, string | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v) q.set(k, v);
  const s = q.toString();
  return s ? `${basePath}?${s}` : basePath;
}

function shortSha(sha: string): string {
  return isFullSha(sha) ? sha.slice(0, 12) : sha;
}

/** The short SHA, linking to every decision about the full commit; a ↗ to the commit on GitHub when it is there. */
function commit(basePath: string, sha: string | undefined, repo?: string): SafeHtml {
  if (!sha) return html`<span class="small">—</span>`;
  const forge = repo ? forgeCommitUrl(repo, sha) : undefined;
  return html`<span class="nowrap"><a class="mono" href="${query(basePath, { sha })}" title="${sha}">${shortSha(sha)}</a>${
    forge ? html` <a class="small" href="${forge}" title="open the commit on GitHub" rel="noreferrer noopener">↗</a>` : ''
  }</span>`;
}

function relative(ms: number): string {
  const s = Math.round(ms / 1000);
  const ago = s >= 0;
  const a = Math.abs(s);
  const v =
    a < 60 ? `${a}s` : a < 3600 ? `${Math.floor(a / 60)} min` : a < 86_400 ? `${Math.floor(a / 3600)} h` : `${Math.floor(a / 86_400)} d`;
  return ago ? `${v} ago` : `in ${v}`;
}

function time(iso: string | undefined, now: Date): SafeHtml {
  if (!iso) return html`<span class="small">—</span>`;
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return html`${iso}`;
  const d = new Date(t).toISOString();
  return html`<time datetime="${d}" title="${d}">${d.slice(0, 19).replace('T', ' ')}Z</time><br><span class="small">${relative(now.getTime() - t)}</span>`;
}

const BADGE: Record<string, string> = {
  pin: 'b-ok',
  // Pinned although only Audit policies select the Application: it moved without the gate enforcing anything.
  'audit-pin': 'b-warn',
  'skip-same': 'b-skip',
  'skip-older': 'b-skip',
  'deferred-stale-policy': 'b-skip',
};

function actionBadge(action: string): SafeHtml {
  const cls = BADGE[action] ?? (action.startsWith('refuse-') ? 'b-bad' : action.startsWith('error-') ? 'b-warn' : 'b-skip');
  return html`<span class="badge ${cls}">${action}</span>`;
}

function stateBadge(state: AppSummary['state']): SafeHtml {
  return state === 'pinned'
    ? html`<span class="badge b-ok">pinned</span>`
    : state === 'drift'
      ? html`<span class="badge b-warn" title="targetRevision is not the commit the evidence annotations name">drift</span>`
      : html`<span class="badge b-skip">not pinned yet</span>`;
}

const auditBadge = html` <span class="badge b-warn" title="pinned under an Audit-mode policy: the gate recorded but did not enforce">audit mode</span>`;

function signer(identity: string | undefined, method: string | undefined, issuer?: string): SafeHtml {
  if (!identity) return html`<span class="small">${method && method !== 'none' ? method : 'unsigned'}</span>`;
  return html`<span class="mono">${identity}</span>${method ? html`<br><span class="small">${method}${issuer ? html` · ${issuer}` : ''}</span>` : ''}`;
}

function reasonCell(r: DecisionRecord): SafeHtml {
  const verdict =
    r.verdict.outcome === 'verified'
      ? ''
      : html`<br><span class="small">verdict ${r.verdict.outcome} · ${r.verdict.code}${
          r.verdict.reasons.length > 0 ? html`: ${r.verdict.reasons.join('; ')}` : ''
        }</span>`;
  return html`${r.reason}${verdict}`;
}

function problem(what: string, err: LoadError): SafeHtml {
  return html`<div class="notice" role="alert"><strong>${what} could not be loaded:</strong> ${err.error}</div>`;
}

function filterDescription(f: Filter): string {
  return [f.app ? `app = ${f.app}` : '', f.sha ? `commit starts with ${f.sha}` : ''].filter(Boolean).join(' and ');
}

function filterForm(basePath: string, action: string, f: Filter, appKeys: string[], withApp: boolean): SafeHtml {
  const limits = [50, 100, 500, 1000];
  if (!limits.includes(f.limit)) limits.push(f.limit);
  return html`<form class="filters" method="get" action="${action}" role="search">
${
  withApp
    ? html`<label>Application (namespace/name)<input name="app" list="apps" value="${f.app ?? ''}" placeholder="argocd/shop" autocomplete="off"></label>
<datalist id="apps">${appKeys.map((k) => html`<option value="${k}">`)}</datalist>`
    : ''
}
<label>Commit SHA prefix<input name="sha" value="${f.sha ?? ''}" placeholder="e.g. 3f2a9c1" pattern="[0-9a-fA-F]{1,64}" maxlength="64" autocomplete="off" spellcheck="false"></label>
<label>Show<select name="limit">${limits.sort((a, b) => a - b).map((n) => html`<option value="${n}"${n === f.limit ? html` selected` : ''}>${n}</option>`)}</select></label>
<button type="submit">Filter</button>${f.app || f.sha ? html` <a href="${action}">clear</a>` : ''}
</form>`;
}

function decisionsTable(
  basePath: string,
  records: DecisionRecord[],
  opts: { now: Date; showApp: boolean; chain: boolean; filtered: boolean },
): SafeHtml {
  const rows = records.map((r, i) => {
    const older = records[i + 1];
    // A cheap look at the chain for the records on screen; `gitops-gate audit --verify-chain` checks the whole stream.
    const link =
      r.prevHash === GENESIS
        ? html`first record of this Application`
        : older && older.hash === r.prevHash
          ? html`✓ follows the record below`
          : older && !opts.filtered
            ? html`<strong class="broken">⚠ does not follow the record below</strong>`
            : html`previous record not shown`;
    return html`<tr data-action="${r.action}">
<td>${time(r.time, opts.now)}</td>
${opts.showApp ? html`<td><a href="${appHref(basePath, r.app)}">${r.app}</a><br><span class="small">${r.branch}</span></td>` : ''}
<td>${commit(basePath, r.sha, r.repo)}${opts.showApp ? '' : html`<br><span class="small">${r.branch}</span>`}</td>
<td>${actionBadge(r.action)}</td>
<td>${signer(r.verdict.signer, r.verdict.method, r.verdict.issuer)}</td>
<td>${reasonCell(r)}${
      r.previousRevision && opts.chain
        ? html`<div class="small">revision <span class="mono">${r.previousRevision}</span> → <span class="mono">${r.newRevision ?? 'unchanged'}</span></div>`
        : ''
    }${opts.chain ? '' : html`<div class="small">delivery <span class="mono">${r.deliveryId}</span></div>`}</td>
${
  opts.chain
    ? html`<td class="chain mono">${r.policy ? html`policy ${r.policy}<br>` : ''}${r.verdict.logIndex ? html`log index ${r.verdict.logIndex}<br>` : ''}delivery ${r.deliveryId}<br>id ${r.id}<br>prev ${r.prevHash}<br>hash ${r.hash}<br>${link}</td>`
    : ''
}
</tr>`;
  });
  return html`<table class="decisions"><thead><tr><th style="width:150px">Time</th>${opts.showApp ? html`<th>Application</th>` : ''}<th>Commit</th><th>Action</th><th>Signer</th><th>Reason</th>${
    opts.chain ? html`<th style="width:300px">Audit record</th>` : ''
  }</tr></thead>
<tbody>${rows}</tbody></table>`;
}

export interface OverviewData {
  basePath: string;
  now: Date;
  filter: Filter;
  /** A problem with the filter itself (shown above the tables). */
  filterError?: string;
  /** Opted-in Applications, already filtered. */
  apps: Loaded<AppSummary[]>;
  /** Every opted-in Application's key (for the filter's suggestions). */
  appKeys: string[];
  decisions: Loaded<DecisionRecord[]>;
  namespaces: string[];
  /** The note verifier key of the audit checkpoints; unset = checkpoints are not signed. */
  auditKey?: string;
}

/** Where auditors get the key to check the trail with: a Redis writer can re-hash the chain, not sign for it. */
function auditKeyPart(key: string | undefined): SafeHtml {
  return key
    ? html`<h2>Audit trail signing key</h2>
<p class="sub">The gate signs a checkpoint of each Application's audit chain with this Ed25519 key. Save it and check the trail with <code>gitops-gate audit --verify-chain --public-key FILE</code>.</p>
<pre class="mono" id="audit-key">${key}</pre>`
    : html`<h2>Audit trail signing key</h2>
<p class="sub" id="audit-key">None: audit checkpoints are not signed (<code>AUDIT_SIGNING_KEY_FILE</code> is unset), so whoever can write Redis could rewrite the trail undetected.</p>`;
}

export function renderOverview(d: OverviewData): string {
  const { basePath, now, filter } = d;
  const filtered = Boolean(filter.app || filter.sha);
  const scope = d.namespaces.length > 0 ? `namespaces ${d.namespaces.join(', ')}` : 'all namespaces';
  let appsPart: SafeHtml;
  if (isLoadError(d.apps)) appsPart = problem('Applications', d.apps);
  else if (d.apps.length === 0)
    appsPart = filtered
      ? html`<p class="empty">No opted-in Application matches ${filterDescription(filter)}.</p>`
      : html`<p class="empty">No Argo CD Application opts in yet (in ${scope}). Add the annotation <code>gitops-gate.io/branch: &lt;branch&gt;</code> to an Application to have the gate pin it to verified commits of that branch.</p>`;
  else
    appsPart = html`<table class="apps"><thead><tr><th>Application</th><th>Branch</th><th>Repository</th><th>Pinned commit</th><th>Signer</th><th>Pinned at</th></tr></thead><tbody>${d.apps.map(
      (a) => {
        const repo = a.pinnedSources[0]?.repoURL;
        const pinned =
          a.state === 'unpinned'
            ? html`${stateBadge(a.state)}<br><span class="small">follows <span class="mono">${a.sources.map((s) => s.targetRevision).join(', ')}</span></span>`
            : html`${commit(basePath, a.evidence.verifiedSha, repo)} ${a.state === 'drift' ? stateBadge(a.state) : ''}${a.evidence.mode === 'audit' ? auditBadge : ''}`;
        return html`<tr data-app="${a.key}">
<td><a href="${appHref(basePath, a.key)}">${a.key}</a></td>
<td class="mono">${a.branch}</td>
<td>${a.pinnedSources.map((s, i) => html`${i > 0 ? html`<br>` : ''}<span class="mono">${s.repoURL}</span>`)}</td>
<td>${pinned}</td>
<td>${a.state === 'unpinned' ? html`<span class="small">—</span>` : signer(a.evidence.signer, a.evidence.method)}</td>
<td>${time(a.evidence.pinnedAt, now)}</td>
</tr>`;
      },
    )}</tbody></table>`;

  let decisionsPart: SafeHtml;
  if (isLoadError(d.decisions)) decisionsPart = problem('Decisions', d.decisions);
  else if (d.decisions.length === 0)
    decisionsPart = filtered
      ? html`<p class="empty">No decision matches ${filterDescription(filter)}.</p>`
      : html`<p class="empty">No decisions recorded yet. Each verified, refused or skipped push to a followed branch appears here.</p>`;
  else
    decisionsPart = html`${decisionsTable(basePath, d.decisions, { now, showApp: true, chain: false, filtered })}${
      d.decisions.length >= filter.limit
        ? html`<p class="small">Showing the newest ${filter.limit}; narrow with the filters or show more.</p>`
        : ''
    }`;

  const body = html`<h1>Applications</h1>
<p class="sub">Argo CD Applications that opt in with <code>gitops-gate.io/branch</code>, in ${scope}.${filtered ? html` Filtered: ${filterDescription(filter)}.` : ''}</p>
${filterForm(basePath, basePath, filter, d.appKeys, true)}
${d.filterError ? html`<div class="notice" role="alert">${d.filterError}</div>` : ''}
${appsPart}
<h2>Recent decisions</h2>
${decisionsPart}
${auditKeyPart(d.auditKey)}`;
  return page('Applications', basePath, body);
}

export interface AppPageData {
  basePath: string;
  now: Date;
  key: string;
  filter: Filter;
  filterError?: string;
  /** undefined: not found in the cluster (deleted, or never existed) but it may still have history. */
  app: Loaded<AppSummary | undefined>;
  decisions: Loaded<DecisionRecord[]>;
}

export function renderAppPage(d: AppPageData): string {
  const { basePath, now, key, filter } = d;
  const self = appHref(basePath, key);
  const history = isLoadError(d.decisions) ? [] : d.decisions;
  let current: SafeHtml;
  if (isLoadError(d.app)) current = problem('The Application', d.app);
  else if (d.app === undefined)
    current = html`<div class="note">This Application is not in the cluster (deleted, renamed or never created). Its recorded decisions are below.</div>`;
  else {
    const a = d.app;
    const ev = a.evidence;
    const pinRecord = findPinRecord(a, history);
    const optIn =
      a.branch === undefined
        ? html`<div class="note">This Application does not opt in (no <code>gitops-gate.io/branch</code> annotation): the gate does not pin it.</div>`
        : '';
    const drift =
      a.state === 'drift'
        ? html`<div class="notice" role="alert"><strong>Drift:</strong> the evidence names commit <code>${ev.verifiedSha}</code> but no source is on it (${a.sources
            .map((s) => s.targetRevision)
            .join(', ')}). targetRevision was changed outside the gate, so what is deployed was not verified by it.</div>`
        : '';
    current = html`${optIn}${drift}<div class="cards"><section><h2>Current pin</h2><dl class="kv">
<dt>state</dt><dd>${stateBadge(a.state)}</dd>
<dt>branch</dt><dd class="mono">${a.branch ?? '—'}</dd>
${a.sources.map(
  (s, i) =>
    html`<dt>source${a.sources.length > 1 ? html` ${i}` : ''}</dt><dd><span class="mono">${s.repoURL}</span><br>revision <span class="mono">${s.targetRevision}</span>${
      forgeCommitUrl(s.repoURL, s.targetRevision)
        ? html` <a class="small" href="${forgeCommitUrl(s.repoURL, s.targetRevision) ?? ''}" rel="noreferrer noopener">↗ GitHub</a>`
        : ''
    }</dd>`,
)}
</dl></section>
<section><h2>Evidence</h2><dl class="kv">
<dt>verified commit</dt><dd class="mono">${ev.verifiedSha ?? '—'}</dd>
<dt>signer</dt><dd class="mono">${ev.signer ?? '—'}</dd>
<dt>method</dt><dd>${ev.method ?? '—'}</dd>
<dt>mode</dt><dd>${ev.mode ?? '—'}${ev.mode === 'audit' ? auditBadge : ''}</dd>
<dt>verified at</dt><dd>${time(ev.verifiedAt, now)}</dd>
<dt>pinned at</dt><dd>${time(ev.pinnedAt, now)}</dd>
<dt>delivery</dt><dd class="mono">${ev.deliveryId ?? '—'}</dd>
<dt>decision id</dt><dd class="mono">${ev.decisionId ?? '—'}</dd>
${
  pinRecord
    ? html`<dt>pinned by</dt><dd>${time(pinRecord.time, now)} ${actionBadge(pinRecord.action)} ${pinRecord.reason}<br><span class="small">verdict ${pinRecord.verdict.code}${
        pinRecord.policy ? html` · policy ${pinRecord.policy}` : ''
      }${pinRecord.verdict.issuer ? html` · issuer ${pinRecord.verdict.issuer}` : ''}${pinRecord.verdict.logIndex ? html` · log index ${pinRecord.verdict.logIndex}` : ''}</span></dd>`
    : ev.verifiedSha
      ? html`<dt>pinned by</dt><dd class="small">the pinning decision is not among the records shown below</dd>`
      : ''
}
</dl></section></div>`;
  }

  let historyPart: SafeHtml;
  if (isLoadError(d.decisions)) historyPart = problem('Decisions', d.decisions);
  else if (history.length === 0)
    historyPart = filter.sha
      ? html`<p class="empty">No decision about this Application matches ${filterDescription({ ...filter, app: undefined })}.</p>`
      : html`<p class="empty">No decisions recorded for this Application yet.</p>`;
  else historyPart = decisionsTable(basePath, history, { now, showApp: false, chain: true, filtered: Boolean(filter.sha) });

  const body = html`<p class="small"><a href="${basePath}">← all Applications</a></p>
<h1 class="mono">${key}</h1>
<p class="sub">Current pin, the evidence the gate wrote on the Application, and every decision about it (newest first, with the audit hash chain).</p>
${current}
<h2>Decision history</h2>
${filterForm(basePath, self, filter, [], false)}
${d.filterError ? html`<div class="notice" role="alert">${d.filterError}</div>` : ''}
${historyPart}`;
  return page(key, basePath, body);
}

export function renderMessage(basePath: string, title: string, message: string): string {
  return page(
    title,
    basePath,
    html`<p class="small"><a href="${basePath}">← all Applications</a></p><h1>${title}</h1><p class="empty">${message}</p>`,
  );
}
