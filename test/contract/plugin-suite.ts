// The plugin contract (agent/plugin/contract.ts, as the CLI exercises it) as one suite
// that every plugin runs against its real server, after restic's backend test suite and
// test/contract/target-suite.ts: a plugin's test file gives an adapter (how to start its
// server once, seed it, fingerprint it, drop its data, make a restore be refused) and
// declares what does not apply to it; each case it cannot take is skipped with that
// reason printed, never left out silently.
//
// The cases share one server and one backup, in order: backup → list shows it with the
// seeded counts → drop → restore refused while in use → restore, equal to the source and
// to the manifest → drill → verify → a flipped byte caught by verify (exit 3) → kill -9
// mid-backup: nothing listed, nothing left once the next command started → kill -9
// mid-restore: the live data as before once the next command started → no secret in any
// output, file or command line → nothing left behind (containers, volumes, files).
// Seeds are small: what a plugin does with size is its own test file's business.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runUntil } from '../helpers/faults.ts';
import { jobConfig, type ConfigWorkspace, type Job } from '../helpers/config.ts';
import { docker, flipByte, requireDocker, snapagent, uniq, type CliResult } from '../helpers/harness.ts';
import { LeakScan } from '../helpers/leak-scan.ts';
import { drillLeftovers, exists } from '../helpers/leftovers.ts';

/** Counts a seed wrote, and the same figures as a manifest or the live server has them. */
export type Counts = Record<string, number>;

export interface PluginAdapter<F = unknown> {
  /** The plugin's name (the job's `plugin:`). */
  name: string;
  /** Images the adapter's server and drills need (`make images` builds them). */
  images: string[];
  /** Starts the one server the whole file shares. */
  start(): Promise<void>;
  /** The job besides its name and plugin: `container` or `volume`, `options`. */
  job(): Omit<Job, 'name' | 'plugin'>;
  /** The datastore's container, whose /tmp must hold nothing of the agent's afterwards. */
  container?(): string;
  /** Writes a small data set into the server; resolves to what it wrote, counted. */
  seed(): Promise<Counts>;
  /** The same counts as the manifest records them (`list --json`'s entry: `stats`, `size`...). */
  manifestCounts(listed: any): Counts;
  /** The same counts as the live server has them now. */
  liveCounts(): Promise<Counts>;
  /** Everything the backup should bring back, in a comparable form. */
  fingerprint(): Promise<F>;
  /** Removes the seeded data (drop the databases, remove the volume). */
  drop(): Promise<void>;
  /** Makes a restore be refused (exit 4) with `refused` in its error and hint, and undoes it; or
   * why the plugin refuses nothing. */
  inUse: { make(): Promise<void>; undo(): Promise<void>; refused: RegExp } | { skip: string };
  /** Restore flags that replace the live data the restore finds (e.g. --force). */
  replaceFlags?: string[];
  /** Secrets (by name) that must appear nowhere; none: why the plugin has none. */
  secrets: Record<string, string> | { skip: string };
  /** Stops and starts the live server around the drill, for servers of which only one
   * may run at a time (the drill starts a throwaway one; it needs the target only). */
  drillAlone?: { stop(): Promise<void>; start(): Promise<void> };
  /** Known product bugs, by case: the case still runs and reports, as a todo (node:test),
   * so that it does not fail the run; remove the entry once the bug is fixed. */
  knownBugs?: { killedBackup?: string; killedRestore?: string; leftovers?: string };
  /** Plugin-specific things a run may leave behind (e.g. staging directories). */
  leftovers?(): Promise<string[]>;
  stop(): Promise<void>;
}

const STATE_TRANSIENT = ['pipes', 'procs', 'tmp']; // emptied when every run is over or repaired

const killedRunOf = (stderr: string) => /"killed_run":"([0-9a-f]{8})"/.exec(stderr)?.[1];

/** The agent's entries in a container's /tmp (named pipes, option files). */
export async function agentTmp(container: string): Promise<string[]> {
  const out = await docker('exec', '--user', '0', container, 'sh', '-c', 'ls -A /tmp');
  return out.split('\n').filter((n) => n.startsWith('snapagent')).map((n) => `${container}:/tmp/${n}`);
}

/** The engine's containers and volumes made by the given agent runs: the helpers and drill
 * servers the agent labels with its run id (`snapagent.run`, `snapagent.drill`) and drill
 * volumes named after it. Only these are compared: other test files may be running
 * meanwhile (make test runs two lanes), with containers of their own. */
async function engineNames(runs: Set<string>): Promise<{ containers: string[]; volumes: string[] }> {
  const ours = (s: string) =>
    s
      .split('\n')
      .filter((l) => [...l.matchAll(/snapagent\.(?:run|drill)=([0-9a-f]{8})\b|^snapagent-drill-.+-([0-9a-f]{8})-\d+ /g)].some((m) => runs.has(m[1] ?? m[2]!)))
      .map((l) => l.split(' ')[0]!)
      .sort();
  return {
    containers: ours(await docker('ps', '-a', '--format', '{{.Names}} {{.Labels}}')),
    volumes: ours(await docker('volume', 'ls', '--format', '{{.Name}} {{.Labels}}')),
  };
}

/** The run ids the agent's log lines name: its own and killed runs it repaired. */
const runsIn = (outputs: [string, CliResult][]) =>
  new Set(outputs.flatMap(([, r]) => [...r.stderr.matchAll(/"(?:run|killed_run)":"([0-9a-f]{8})"/g)].map((m) => m[1]!)));

export function runPluginSuite<F>(a: PluginAdapter<F>): void {
  describe(`plugin contract: ${a.name}`, { concurrency: 1 }, () => {
    // the job's name is the plugin's: drill servers are named after it, and two suites may run at once
    const JOB = `contract-${a.name}`;
    let ws: ConfigWorkspace;
    let seeded: Counts;
    let source: F;
    let id: string;
    const outputs: [string, CliResult][] = [];
    const scan = 'skip' in a.secrets ? undefined : new LeakScan(a.secrets);

    /** snapagent with the suite's config; every output is kept for the leak scan. */
    async function cli(what: string, args: string[], sampled = false): Promise<CliResult> {
      const run = snapagent([...args, '--config', ws.config]);
      const r = sampled && scan ? await scan.during(what, run) : await run;
      outputs.push([what, r]);
      return r;
    }
    const dir = () => {
      const host = readdirSync(ws.backups)[0]!;
      return path.join(ws.backups, host, JOB, id);
    };
    const record = (kind: 'verify' | 'drill') => JSON.parse(readFileSync(path.join(dir(), `${kind}.json`), 'utf8'));
    /** What a finished or repaired run must not leave: transient state, agent files in the container. */
    async function leftovers(): Promise<string[]> {
      const state = STATE_TRANSIENT.flatMap((d) => {
        try {
          return readdirSync(path.join(ws.state, d)).map((n) => `state/${d}/${n}`);
        } catch {
          return [];
        }
      });
      return [...state, ...(a.container ? await agentTmp(a.container()) : []), ...((await a.leftovers?.()) ?? [])];
    }
    async function noRunContainers(run: string | undefined): Promise<void> {
      assert.ok(run, 'the next command named the killed run');
      assert.equal((await docker('ps', '-aq', '--filter', `label=snapagent.run=${run}`)).trim(), '', `no container of run ${run} is left`);
    }
    const needs = (what: { skip: string } | object) => ('skip' in what ? { skip: `${a.name}: ${what.skip}` } : {});

    before(async () => {
      await requireDocker(...a.images);
      await a.start();
      seeded = await a.seed();
      source = await a.fingerprint();
      ws = jobConfig({ name: JOB, plugin: a.name, ...a.job() });
    });

    after(async () => {
      await a.stop();
      ws?.cleanup();
    });

    it('backs up', async () => {
      const b = await cli('backup', ['backup', '--json'], true);
      assert.equal(b.code, 0, b.stdout + b.stderr);
      assert.equal(b.json.results[0].status, 'ok');
      id = b.json.results[0].id;
    });

    it('list shows it, signed, with the seeded counts', async () => {
      const l = await cli('list', ['list', '--json']);
      assert.equal(l.code, 0, l.stderr);
      assert.deepEqual(l.json.backups.map((b: { job: string; id: string }) => `${b.job} ${b.id}`), [`${JOB} ${id}`]);
      const m = l.json.backups[0];
      assert.equal(m.plugin, a.name);
      assert.equal(m.signature.state, 'signed');
      assert.deepEqual(a.manifestCounts(m), seeded);
    });

    it('drop: the data is gone', async () => {
      await a.drop();
      assert.notDeepEqual(await a.fingerprint(), source);
    });

    it('a restore while in use is refused and changes nothing', needs(a.inUse), async () => {
      const inUse = a.inUse as Exclude<PluginAdapter['inUse'], { skip: string }>;
      await inUse.make();
      try {
        const live = await a.fingerprint();
        const r = await cli('refused restore', ['restore', '--job', JOB, '--json']);
        assert.equal(r.code, 4, r.stdout + r.stderr);
        const { error, hint } = r.json.results[0];
        assert.ok(hint, 'the refusal says what to do');
        assert.match(`${error}\n${hint}`, inUse.refused);
        assert.deepEqual(await a.fingerprint(), live, 'nothing changed');
      } finally {
        await inUse.undo();
      }
    });

    it('restores: equal to the source and to the manifest\'s counts', async () => {
      const r = await cli('restore', ['restore', '--job', JOB, '--json'], true);
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.equal(r.json.results[0].status, 'ok');
      assert.deepEqual(await a.fingerprint(), source);
      const m = (await cli('list', ['list', '--json'])).json.backups[0];
      assert.deepEqual(await a.liveCounts(), a.manifestCounts(m));
    });

    it('a restore drill passes and leaves nothing', async () => {
      await a.drillAlone?.stop();
      let r: CliResult;
      try {
        r = await cli('drill', ['verify', '--drill', '--json']);
      } finally {
        await a.drillAlone?.start();
      }
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.equal(r.json.results[0].status, 'ok');
      const rec = record('drill');
      assert.equal(rec.status, 'ok');
      assert.ok(rec.rto_seconds > 0, JSON.stringify(rec));
      const d = rec.details;
      if (d.image) {
        // a throwaway server, from the image the manifest recorded
        assert.ok(a.images.includes(d.image), d.image);
        assert.ok(d.startup_seconds > 0, JSON.stringify(rec));
      }
      for (const name of [d.volume, d.container, ...(d.volumes ?? [])].filter(Boolean)) assert.equal(await exists(name), false, `${name} was removed`);
      assert.deepEqual(await drillLeftovers(JOB), []);
      assert.deepEqual(await a.fingerprint(), source, 'the live data was not touched');
    });

    it('verify passes', async () => {
      const r = await cli('verify', ['verify', '--json']);
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.equal(r.json.results[0].status, 'ok');
      assert.equal(record('verify').status, 'ok');
    });

    it('a flipped byte in the artifact: verify exits 3 and says so', async () => {
      const l = await cli('list', ['list', '--json']);
      const artifact = path.join(dir(), l.json.backups[0].artifacts[0]);
      flipByte(artifact, 0x01);
      try {
        const r = await cli('verify (flipped byte)', ['verify', '--json']);
        assert.equal(r.code, 3, r.stdout + r.stderr);
        assert.match(r.json.results[0].errors[0], /sha256 [0-9a-f]+ does not match the manifest's/);
        assert.equal(record('verify').status, 'failed');
      } finally {
        flipByte(artifact, 0x01);
      }
    });

    const bug = (which: keyof NonNullable<PluginAdapter['knownBugs']>) => (a.knownBugs?.[which] ? { todo: `known bug: ${a.knownBugs[which]}` } : {});

    it('kill -9 mid-backup: nothing listed; nothing left once the next command started', bug('killedBackup'), async () => {
      const p = await runUntil('backup-stream', ['backup', '--config', ws.config]);
      await p.kill();
      outputs.push(['killed backup', await p.result]);
      const l = await cli('list after a killed backup', ['list', '--json']);
      assert.equal(l.code, 0, l.stderr);
      assert.deepEqual(l.json.backups.map((b: { id: string }) => b.id), [id], 'only the committed backup');
      await noRunContainers(killedRunOf(l.stderr));
      assert.deepEqual(await leftovers(), []);
    });

    it('kill -9 mid-restore: the live data as it was once the next command started; nothing new left', bug('killedRestore'), async () => {
      const left = await leftovers();
      const p = await runUntil('restore-stream', ['restore', '--config', ws.config, '--job', JOB, ...(a.replaceFlags ?? [])]);
      await p.kill();
      outputs.push(['killed restore', await p.result]);
      const s = await cli('status after a killed restore', ['status', '--json']);
      assert.equal(s.code, 1, s.stdout + s.stderr);
      assert.ok(s.json.problems.some((x: { where: string }) => x.where === `restore of job ${JOB}`), JSON.stringify(s.json.problems));
      await noRunContainers(killedRunOf(s.stderr));
      assert.deepEqual(await a.fingerprint(), source);
      assert.deepEqual(await leftovers(), left);
    });

    it('no secret in any output, file or command line', needs(a.secrets), () => {
      assert.ok(scan!.psSamples > 0, 'command lines were sampled');
      for (const [what, r] of outputs) {
        scan!.scan(`stdout of ${what}`, r.stdout);
        scan!.scan(`stderr of ${what}`, r.stderr);
      }
      assert.ok(scan!.scanDir(ws.dir) > 0);
      assert.deepEqual(scan!.hits, []);
    });

    it('leaves no container, volume or file behind', bug('leftovers'), async () => {
      const runs = runsIn(outputs);
      assert.ok(runs.size > 0, 'the agent log lines name their run');
      assert.deepEqual(await engineNames(runs), { containers: [], volumes: [] });
      assert.deepEqual(await leftovers(), []);
      assert.deepEqual(await drillLeftovers(JOB), []);
    });
  });
}

/** A unique name for an adapter's own things. */
export const contractName = (what: string) => uniq(`sa-c-${what}`);
