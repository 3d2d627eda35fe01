// Snapshots and what the manifest records about them: per index the document count
// (top-level documents, counted before and after the snapshot: equal means the count
// describes the snapshot exactly) and a digest of its mapping.
import { createHash } from 'node:crypto';
import { type PluginContext, SnapError } from '../../agent/plugin/index.ts';
import { esError, esErrorType, type Es } from './connect.ts';

/** What the manifest records per index. `docs`/`mapping_sha256` are exact for the
 * snapshot when the index did not change while it was taken; otherwise `changed` is set
 * and both counts are kept. */
export interface IndexStats {
  docs?: number;
  mapping_sha256?: string;
  changed?: boolean;
  docs_before?: number;
}

/** Snapshot names must be lowercase: `<job>-<backup id>`. */
export function snapshotName(job: string, id: string): string {
  return `${job}-${id}`.toLowerCase();
}

export interface IndexFigures {
  docs: number;
  mapping_sha256: string;
}

/** Top-level document counts and mapping digests of the open indices matching `index`
 * (after a refresh, so that what a flush-then-snapshot captures is counted). */
export async function indexFigures(es: Es, index = '*'): Promise<Map<string, IndexFigures>> {
  const opts = { index, ignore_unavailable: true, allow_no_indices: true, expand_wildcards: 'open' as const };
  await es.client.indices.refresh(opts);
  const [mappings, cat] = await Promise.all([
    es.client.indices.getMapping(opts),
    es.client.cat.indices({ index, format: 'json', h: ['index', 'status'], expand_wildcards: 'open' }),
  ]);
  const names = (cat as { index?: string; status?: string }[]).filter((r) => r.index && r.status !== 'close').map((r) => r.index!);
  const out = new Map<string, IndexFigures>();
  if (names.length === 0) return out;
  const res = await es.client.search({
    ...opts,
    size: 0,
    track_total_hits: false,
    aggs: { per_index: { terms: { field: '_index', size: names.length + 10 } } },
  });
  const counts = new Map<string, number>();
  for (const b of (res.aggregations?.per_index as { buckets: { key: string; doc_count: number }[] } | undefined)?.buckets ?? []) counts.set(b.key, b.doc_count);
  for (const name of names) {
    const m = (mappings as Record<string, { mappings?: unknown }>)[name]?.mappings ?? {};
    out.set(name, { docs: counts.get(name) ?? 0, mapping_sha256: createHash('sha256').update(canonical(m)).digest('hex') });
  }
  return out;
}

/** JSON with sorted keys, so equal mappings give equal digests. */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v && typeof v === 'object') return `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`).join(',')}}`;
  return JSON.stringify(v);
}

export interface SnapshotInfo {
  snapshot: string;
  uuid: string;
  state: string;
  indices: string[];
  data_streams: string[];
  shards: { total: number; failed: number; successful: number };
  failures: { index?: string; shard_id?: number; reason?: string }[];
  metadata?: Record<string, unknown>;
  start_time_in_millis?: number;
}

/** One snapshot, or undefined when the repository has none of that name. */
export async function getSnapshot(es: Es, repository: string, snapshot: string): Promise<SnapshotInfo | undefined> {
  try {
    const res = await es.client.snapshot.get({ repository, snapshot });
    return res.snapshots?.[0] as unknown as SnapshotInfo | undefined;
  } catch (err) {
    if (esErrorType(err)?.type === 'snapshot_missing_exception') return undefined;
    throw err;
  }
}

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => (clearTimeout(t), reject(signal.reason ?? new Error('aborted'))), { once: true });
  });

export interface Taken {
  info: SnapshotInfo;
  /** false: the snapshot of that name existed already (another node's agent took it). */
  created: boolean;
}

/** Takes the snapshot and waits for it; a snapshot of the same name that exists or is
 * in progress was taken by another agent of the cluster: it is waited for, not an error.
 * Failed shards fail the backup (and a snapshot we started is deleted). */
export async function takeSnapshot(
  ctx: PluginContext,
  es: Es,
  repository: string,
  snapshot: string,
  body: { indices?: string[]; include_global_state: boolean; metadata: Record<string, unknown> },
  timeoutSeconds: number,
): Promise<Taken> {
  let created = true;
  let info: SnapshotInfo | undefined;
  try {
    // Elasticsearch answers as soon as the snapshot is done (no polling delay).
    const res = await es.client.snapshot.create({
      repository,
      snapshot,
      wait_for_completion: true,
      indices: body.indices?.join(','),
      include_global_state: body.include_global_state,
      metadata: body.metadata,
    }, { requestTimeout: timeoutSeconds * 1000, signal: ctx.signal });
    info = res.snapshot as unknown as SnapshotInfo | undefined;
  } catch (err) {
    const e = esErrorType(err);
    // 8.x: snapshot_name_already_in_use_exception "snapshot with the same name already
    // exists" (also while it is in progress); older: invalid_snapshot_name_exception.
    const same = e && /^(snapshot_name_already_in_use|invalid_snapshot_name|concurrent_snapshot_execution)_exception$/.test(e.type ?? '') && /same name|already exists|already in.progress/i.test(e.reason ?? '');
    if (!same) throw esError(err, `snapshot ${snapshot} in repository ${repository}`);
    created = false;
    ctx.log.info({ repository, snapshot }, 'the snapshot exists already (another node\'s agent took it): waiting for it, then shipping it');
  }
  const deadline = Date.now() + timeoutSeconds * 1000;
  let delay = 50;
  while (!info || info.state === 'IN_PROGRESS' || info.state === 'STARTED') {
    info = await getSnapshot(es, repository, snapshot).catch((err: unknown) => {
      throw esError(err, `snapshot ${snapshot} in repository ${repository}`);
    });
    if (info && info.state !== 'IN_PROGRESS' && info.state !== 'STARTED') break;
    if (Date.now() > deadline) throw new SnapError(`snapshot ${snapshot} did not finish within ${timeoutSeconds} s`, { hint: 'raise options.timeout_seconds, or check the cluster (GET _snapshot/_status)' });
    await sleep(delay, ctx.signal);
    delay = Math.min(1000, delay * 2);
  }
  if (info.state !== 'SUCCESS' || info.shards.failed > 0) {
    const why = info.failures.slice(0, 5).map((f) => `${f.index}[${f.shard_id}]: ${f.reason}`).join('; ');
    if (created) await es.client.snapshot.delete({ repository, snapshot }).catch(() => undefined);
    throw new SnapError(`snapshot ${snapshot} ended ${info.state} with ${info.shards.failed} of ${info.shards.total} shards failed${why ? `: ${why}` : ''}`, {
      hint: 'check the cluster health and the failed shards (GET _cat/shards); a yellow or red index cannot be snapshotted whole',
    });
  }
  return { info, created };
}

/** Snapshot names of one job, oldest first (names end with the sortable backup id). */
export async function jobSnapshots(es: Es, repository: string, prefix: string): Promise<string[]> {
  const res = await es.client.snapshot.get({ repository, snapshot: `${prefix}*`, ignore_unavailable: true, verbose: false });
  return (res.snapshots ?? []).map((s) => s.snapshot).filter((n) => n.startsWith(prefix) && /^\d{8}t\d{6}z/.test(n.slice(prefix.length))).sort();
}

/** Every snapshot name in the repository. */
export async function allSnapshots(es: Es, repository: string): Promise<string[]> {
  const res = await es.client.snapshot.get({ repository, snapshot: '_all', verbose: false });
  return (res.snapshots ?? []).map((s) => s.snapshot).sort();
}
