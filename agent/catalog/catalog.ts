// Reading what a target holds: one listing, then per job its catalog index (one read of
// catalog.json and its signature) for every backup the listing shows unchanged, and the
// catalog files themselves for the others. Whatever the source, every manifest and check
// record goes through the same checks (format, place, plausibility, its own signature).
// A reader that may (this host's jobs, with this host's key) rewrites a missing or stale
// index; failing to write it only costs the next reader the reads. docs/design.md
// "Catalog index".
import type { Target, StoredFile } from '../targets/target.ts';
import { errorMessage } from '../errors.ts';
import { log } from '../log.ts';
import { decodeIndex, encodeIndex, INDEX_FILE, listedFiles, sameEntry, sameListing, type EntrySummary, type IndexEntry } from './catalog-index.ts';
import {
  BACKUP_ID,
  CHECK_FILES,
  CHECK_FORMAT,
  checkRecordSchema,
  dataArtifact,
  IMPLAUSIBLE,
  kindOf,
  MANIFEST_FILE,
  MANIFEST_FORMAT,
  manifestSchema,
  sanityProblems,
  writeSigned,
  type Catalog,
  type CatalogTrust,
  type CheckKind,
  type Listed,
} from './manifest.ts';
import { checkSignature, SIG_SUFFIX } from './signing.ts';

export interface ReadOptions {
  /** Backup directories to read from the target whatever the index says (a writer that
   * has just rewritten a file in them: a same-size rewrite within the stamp's precision
   * would otherwise pass for unchanged). */
  reread?: ReadonlySet<string>;
}

interface JobListing {
  host: string;
  job: string;
  /** Backup directory name → its files, by name. */
  dirs: Map<string, Map<string, StoredFile>>;
  index: boolean;
  indexSig: boolean;
}

/** Reads every committed backup below `prefix` (e.g. "<host>/" or "<host>/<job>/"). */
export async function readCatalog(target: Target, prefix: string, trust: CatalogTrust, o: ReadOptions = {}): Promise<Catalog> {
  const jobs = new Map<string, JobListing>();
  const jobOf = (host: string, job: string) => {
    const k = `${host}/${job}`;
    if (!jobs.has(k)) jobs.set(k, { host, job, dirs: new Map(), index: false, indexSig: false });
    return jobs.get(k)!;
  };
  for (const f of await target.list(prefix)) {
    const parts = f.key.split('/');
    if (parts.length === 3 && parts[2] === INDEX_FILE) jobOf(parts[0]!, parts[1]!).index = true;
    else if (parts.length === 3 && parts[2] === `${INDEX_FILE}${SIG_SUFFIX}`) jobOf(parts[0]!, parts[1]!).indexSig = true;
    if (parts.length !== 4) continue; // <host>/<job>/<id>/<file>
    const j = jobOf(parts[0]!, parts[1]!);
    if (!j.dirs.has(parts[2]!)) j.dirs.set(parts[2]!, new Map());
    j.dirs.get(parts[2]!)!.set(parts[3]!, f);
  }
  const cat: Catalog = { backups: [], incomplete: [], invalid: [] };
  // reads at once, whatever the number of backups: on rclone each is a process
  const read = limiter(READS_AT_ONCE, (key: string) => target.readFile(key));
  await Promise.all([...jobs.values()].map((j) => readJob(target, read, j, trust, o, cat)));
  for (const bad of cat.invalid) log.warn({ target: target.name, key: bad.key }, `ignoring invalid manifest: ${bad.reason}`);
  cat.backups.sort((a, b) => a.manifest.job.localeCompare(b.manifest.job) || a.manifest.id.localeCompare(b.manifest.id));
  cat.incomplete.sort();
  return cat;
}

type Read = (key: string) => Promise<Buffer>;

const READS_AT_ONCE = 16;

// `fn`, run at most `n` at a time (first come, first served).
function limiter<A, T>(n: number, fn: (a: A) => Promise<T>): (a: A) => Promise<T> {
  let running = 0;
  const waiting: (() => void)[] = [];
  return async (a) => {
    if (running >= n) await new Promise<void>((r) => waiting.push(r));
    running++;
    try {
      return await fn(a);
    } finally {
      running--;
      waiting.shift()?.();
    }
  };
}

async function readJob(target: Target, read: Read, j: JobListing, trust: CatalogTrust, o: ReadOptions, cat: Catalog): Promise<void> {
  const base = `${j.host}/${j.job}`;
  const committed = [...j.dirs].filter(([id, names]) => {
    if (names.has(MANIFEST_FILE)) return true;
    // other directories were not written by snapagent and are left alone
    if (BACKUP_ID.test(id)) cat.incomplete.push(`${base}/${id}`);
    return false;
  });
  if (committed.length === 0) return;
  const { entries: index, state } = j.index ? await readIndex(target, read, base, j, trust) : { entries: undefined, state: 'missing' };
  const next: IndexEntry[] = [];
  const summaries = new Map<string, EntrySummary>();
  let anew = 0;
  await Promise.all(
    committed.map(async ([id, names]) => {
      const dir = `${base}/${id}`;
      const listed = listedFiles(names);
      const cached = index?.get(id);
      const usable = cached && sameListing(cached, listed) ? cached : undefined;
      const fromTarget = async (): Promise<IndexEntry> => {
        anew++;
        const files = new Map(listed);
        await Promise.all([...files].map(async ([name, f]) => files.set(name, { ...f, bytes: await read(`${dir}/${name}`) })));
        return { id, files };
      };
      let entry: IndexEntry;
      let r: DirResult;
      try {
        entry = usable && !o.reread?.has(dir) && [...usable.files.values()].every((f) => f.bytes) ? usable : await fromTarget();
        r = parseDir(target, dir, entry, trust);
        // The index stands in for files only where their own signatures hold: anything
        // else (unsigned, bad, unreadable) is read from the target, as without an index.
        if (entry === usable && !r.trusted) {
          entry = await fromTarget();
          r = parseDir(target, dir, entry, trust);
        }
      } catch (err) {
        cat.invalid.push({ key: `${dir}/${MANIFEST_FILE}`, reason: errorMessage(err) });
        return;
      }
      for (const w of r.warnings) log.warn({ target: target.name, key: w.key }, w.message);
      if (r.backup) cat.backups.push(r.backup);
      else cat.invalid.push({ key: `${dir}/${MANIFEST_FILE}`, reason: r.reason! });
      if (r.backup) summaries.set(id, summarize(r.backup));
      next.push(entry);
    }),
  );
  const stale = !index || index.size !== next.length || next.some((e) => !index.has(e.id) || !sameEntry(e, index.get(e.id)!));
  log.debug({ target: target.name, job: base, backups: committed.length, index: stale && state === 'used' ? 'stale' : state, read_anew: anew }, 'catalog read');
  const w = trust.writer;
  if (!stale || !w || w.host !== j.host) return;
  try {
    await writeSigned(target, `${base}/${INDEX_FILE}`, encodeIndex(j.host, j.job, next, summaries), w.key);
    log.debug({ target: target.name, job: base, backups: next.length }, 'catalog index written');
  } catch (err) {
    log.warn({ target: target.name, job: base }, `could not write the catalog index (the next reader reads the manifests and tries again): ${errorMessage(err)}`);
  }
}

// The job's index, if it is one signed by a trusted key; else why not (for the log).
async function readIndex(target: Target, read: Read, base: string, j: JobListing, trust: CatalogTrust): Promise<{ entries?: Map<string, IndexEntry>; state: string }> {
  const key = `${base}/${INDEX_FILE}`;
  const fetch = async () => {
    const [bytes, sig] = await Promise.all([read(key), j.indexSig ? read(`${key}${SIG_SUFFIX}`) : undefined]);
    return { bytes, s: checkSignature(trust.keys, key, bytes, sig) };
  };
  try {
    let { bytes, s } = await fetch();
    // read between a writer's signature and its index: once more before saying so
    if (s.state !== 'signed') ({ bytes, s } = await fetch());
    if (s.state !== 'signed') {
      // written by someone else, or changed: read the manifests (and replace it)
      log.warn({ target: target.name, key }, `ignoring the catalog index: ${s.state === 'bad' ? `bad signature: ${s.reason}` : 'it is not signed'}`);
      return { state: s.state === 'bad' ? 'bad signature' : 'unsigned' };
    }
    return { entries: decodeIndex(bytes, j.host, j.job), state: 'used' };
  } catch (err) {
    log.warn({ target: target.name, key }, `ignoring the catalog index: ${errorMessage(err)}`);
    return { state: 'unreadable' };
  }
}

interface DirResult {
  backup?: Listed;
  /** Why the manifest is refused (when there is no backup). */
  reason?: string;
  warnings: { key: string; message: string }[];
  /** Every file read carries a valid signature by a trusted key. */
  trusted: boolean;
}

// One backup directory from its catalog files' bytes (no I/O).
function parseDir(target: Target, dir: string, entry: IndexEntry, trust: CatalogTrust): DirResult {
  const bytesOf = (name: string) => entry.files.get(name)?.bytes;
  const key = `${dir}/${MANIFEST_FILE}`;
  const bytes = bytesOf(MANIFEST_FILE)!;
  const out: DirResult = { warnings: [], trusted: false };
  let m;
  try {
    const raw = JSON.parse(bytes.toString('utf8')) as unknown;
    const res = manifestSchema.safeParse(raw);
    if (!res.success) throw new Error(`not a ${MANIFEST_FORMAT} manifest: ${res.error.issues[0]?.path.join('.')}: ${res.error.issues[0]?.message}`);
    const [host, job, id] = dir.split('/') as [string, string, string];
    m = res.data;
    if (m.host !== host || m.job !== job || m.id !== id) throw new Error('manifest host/job/id do not match its location');
    const problems = sanityProblems(m, trust.plugins, trust.now);
    if (problems.length) throw new Error(`${IMPLAUSIBLE}: ${problems.join('; ')}`);
  } catch (err) {
    out.reason = (err as Error).message;
    return out;
  }
  const signature = checkSignature(trust.keys, key, bytes, bytesOf(`${MANIFEST_FILE}${SIG_SUFFIX}`));
  let trusted = signature.state === 'signed';
  const checks: Listed['checks'] = {};
  for (const [kind, file] of Object.entries(CHECK_FILES) as [CheckKind, string][]) {
    const text = bytesOf(file);
    if (!text) continue;
    const rkey = `${dir}/${file}`;
    let parsed: unknown;
    try {
      parsed = JSON.parse(text.toString('utf8'));
    } catch {
      parsed = undefined;
    }
    const rec = checkRecordSchema.safeParse(parsed);
    const sig = checkSignature(trust.keys, rkey, text, bytesOf(`${file}${SIG_SUFFIX}`));
    if (sig.state !== 'signed' || !rec.success) trusted = false;
    // An unreadable record counts as a failed check: retention stays on the safe side.
    // A record not signed by a trusted key may only make retention more careful: a
    // failed one counts, an "ok" one is ignored (as if an attacker had deleted it).
    if (!rec.success) checks[kind] = { format: CHECK_FORMAT, kind, id: m.id, at: m.finished_at, status: 'failed', duration_seconds: 0, errors: [`unreadable ${file}`], details: {} };
    else if (sig.state === 'signed' || rec.data.status === 'failed') checks[kind] = rec.data;
    else out.warnings.push({ key: rkey, message: `ignoring a passed ${kind} record that is not signed by a trusted key (${sig.state === 'bad' ? sig.reason : 'unsigned'})` });
  }
  out.backup = { target, manifest: m, dir, checks, signature };
  out.trusted = trusted;
  return out;
}

function summarize(b: Listed): EntrySummary {
  const m = b.manifest;
  return {
    kind: kindOf(m),
    tier: m.tier,
    started_at: m.started_at,
    size: m.artifacts.reduce((n, a) => n + a.size, 0),
    sha256: dataArtifact(m).sha256,
    ...(m.depends_on?.length ? { depends_on: m.depends_on } : {}),
    ...(b.checks.verify ? { verify: b.checks.verify.status } : {}),
    ...(b.checks.drill ? { drill: b.checks.drill.status } : {}),
    signature: b.signature.state,
  };
}

/** Brings the index of `host`/`job` on `target` up to date after a writer changed the job
 * (a commit, check records, removals); `reread`: directories whose files it rewrote. Never
 * throws: a failure is logged, and the next reader repairs the index. */
export async function refreshIndex(target: Target, host: string, job: string, trust: CatalogTrust, reread?: ReadonlySet<string>): Promise<void> {
  if (trust.writer?.host !== host) return;
  try {
    await readCatalog(target, `${host}/${job}`, trust, { reread });
  } catch (err) {
    log.warn({ target: target.name, job: `${host}/${job}` }, `could not update the catalog index (the next reader does): ${errorMessage(err)}`);
  }
}

/** refreshIndex for each job of `written` (backups whose check records were just
 * written), once per target and job. */
export async function refreshIndexes(written: readonly Listed[], trust: CatalogTrust): Promise<void> {
  const groups = new Map<string, { target: Target; host: string; job: string; dirs: Set<string> }>();
  for (const l of written) {
    const k = `${l.target.name}\0${l.manifest.host}\0${l.manifest.job}`;
    if (!groups.has(k)) groups.set(k, { target: l.target, host: l.manifest.host, job: l.manifest.job, dirs: new Set() });
    groups.get(k)!.dirs.add(l.dir);
  }
  for (const g of groups.values()) await refreshIndex(g.target, g.host, g.job, trust, g.dirs);
}
