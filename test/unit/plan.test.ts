// The plan without Docker: jobs from the config and from labels (a listing handed in by a
// stub), with the plugins the test gives the core in its context (not the agent's list):
// an unknown plugin is a problem naming the ones there are, a name claimed twice belongs
// to nobody; and the description `snapagent plan` prints (retention, next runs).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseConfigText } from '../../agent/config/load.ts';
import type { ConfigContext } from '../../agent/context.ts';
import type { ContainerInfo, DockerClient, VolumeInfo } from '../../agent/docker/client.ts';
import type { DatastorePlugin, PluginRegistry } from '../../agent/plugin/contract.ts';
import { describePlan, planDescription } from '../../agent/plan/describe.ts';
import { buildPlan, selectJobs } from '../../agent/plan/plan.ts';

// Only what planning calls: parseOptions.
const plugin = (name: string): DatastorePlugin =>
  ({
    name,
    recordedOptions: [],
    parseOptions: (raw: Record<string, unknown>, where: string) => {
      if ('bad' in raw) throw new Error(`${where}: bad option`);
      return { ...raw, parsedBy: name };
    },
  }) as unknown as DatastorePlugin;
process.env.TZ = 'UTC'; // the next runs below are those of a UTC host

const registry: PluginRegistry = { volume: plugin('volume'), kv: plugin('kv') };

const ctx = (yaml: string): ConfigContext => ({
  config: parseConfigText(`host: h1\ntargets: [{ name: local, type: local, path: /b }, { name: off, type: rclone, remote: "s3:bk/x" }]\n${yaml}`, 'test.yml'),
  registry,
});

function docker(volumes: Partial<VolumeInfo>[], containers: Partial<ContainerInfo>[]): DockerClient {
  const v = volumes.map((x) => ({ driver: 'local', labels: {}, options: {}, ...x }) as VolumeInfo);
  const c = containers.map((x) => ({ id: `id-${x.name}`, image: 'img', state: 'running', running: true, labels: {}, mounts: [], ...x }) as ContainerInfo);
  return { listVolumes: async () => v, listContainers: async () => c } as unknown as DockerClient;
}

describe('the plan', () => {
  it('takes config jobs with the plugins in the context; an unknown plugin is a problem, the others stay', async () => {
    const plan = await buildPlan(ctx('jobs:\n  - { name: cache, plugin: kv, container: c1, tier: critical }\n  - { name: db, plugin: mariadb, container: m }\n'), undefined);
    assert.deepEqual(plan.jobs.map((j) => [j.name, j.plugin, j.container, j.origin, j.targets, j.options]), [['cache', 'kv', 'c1', 'config', ['local', 'off'], { parsedBy: 'kv' }]]);
    assert.equal(plan.problems.length, 1);
    assert.match(plan.problems[0]!.where, /test\.yml: jobs\[1\]/);
    assert.match(plan.problems[0]!.message, /unknown plugin "mariadb", expected one of volume, kv/);
  });

  it('adds label jobs from Docker; a bad label is a problem; a name claimed twice belongs to nobody', async () => {
    const d = docker(
      [
        { name: 'data', labels: { 'snapagent.tier': 'medium', 'snapagent.order': '2' } },
        { name: 'junk', labels: { 'snapagent.stop': 'maybe' } },
        { name: 'plain' },
        { name: 'twin-a', labels: { 'snapagent.job': 'twin' } },
        { name: 'twin-b', labels: { 'snapagent.job': 'twin' } },
      ],
      [
        { name: 'kv1', labels: { 'snapagent.plugin': 'kv', 'snapagent.stop': 'true' } },
        { name: 'odd', labels: { 'snapagent.plugin': 'nosuch' } },
      ],
    );
    const plan = await buildPlan(ctx(''), d);
    assert.deepEqual(
      plan.jobs.map((j) => [j.name, j.plugin, j.tier, j.stop, j.order, j.volume ?? j.container]),
      [
        ['kv1', 'kv', 'critical', true, 0, 'kv1'],
        ['data', 'volume', 'medium', false, 2, 'data'],
      ],
    );
    const problems = plan.problems.map((p) => `${p.where}: ${p.message}`);
    assert.ok(problems.some((p) => /^volume junk: label snapagent\.stop="maybe": expected true or false/.test(p)), problems.join('\n'));
    assert.ok(problems.some((p) => /^container odd: label snapagent\.plugin="nosuch": expected one of volume, kv/.test(p)), problems.join('\n'));
    assert.match(plan.contested.get('twin')!.message, /job name "twin" is claimed 2 times/);
    // all_volumes also takes the unlabelled named volume, with the volume plugin of the context
    const all = await buildPlan(ctx('discovery: { all_volumes: true }\n'), d);
    assert.deepEqual(all.jobs.find((j) => j.name === 'plain')?.options, { parsedBy: 'volume' });
  });

  it('selectJobs keeps --job and --tier; an unknown name is an error naming the jobs', async () => {
    const plan = await buildPlan(ctx('jobs:\n  - { name: a, plugin: kv, container: c, tier: critical }\n  - { name: b, plugin: kv, container: c2, tier: low }\n'), undefined);
    assert.deepEqual(selectJobs(plan, [], 'low').map((j) => j.name), ['b']);
    assert.deepEqual(selectJobs(plan, ['a', 'b'], 'critical').map((j) => j.name), ['a']);
    assert.throws(() => selectJobs(plan, ['zz']), /no job named "zz" in the plan \(jobs: a, b\)/);
  });

  it('is described with each job\'s retention and schedule and each tier\'s next run', async () => {
    const c = ctx('tiers: { hourly: { schedule: "0 * * * *", keep: { last: 5 } } }\njobs:\n  - { name: a, plugin: kv, container: c, tier: hourly }\n  - { name: b, plugin: kv, container: c2, tier: hourly, keep: { daily: 2 } }\n');
    const now = new Date('2026-11-21T10:20:00Z');
    const doc = planDescription(c, await buildPlan(c, undefined), now);
    assert.equal(doc.host, 'h1');
    assert.deepEqual(doc.targets, [
      { name: 'local', type: 'local', location: '/b' },
      { name: 'off', type: 'rclone', location: 's3:bk/x' },
    ]);
    assert.deepEqual(doc.tiers.find((t) => t.name === 'hourly'), { name: 'hourly', schedule: '0 * * * *', next_run: '2026-11-21T11:00:00.000Z', keep: { last: 5 } });
    assert.deepEqual(doc.jobs.map((j) => [j.name, j.schedule, j.keep]), [
      ['a', '0 * * * *', { last: 5 }],
      ['b', '0 * * * *', { daily: 2 }],
    ]);
    assert.deepEqual(doc.problems, []);
    // describePlan plans first (here without Docker), then describes
    assert.deepEqual((await describePlan(c, undefined, now)).jobs, doc.jobs);
  });
});

describe('incremental settings (full_every, incremental)', () => {
  it('job keys win over tier keys, tier keys over the default 7d; incremental: false makes fulls; labels too', async () => {
    const c = ctx(`tiers:\n  critical: { full_every: "14d" }\n  low: { incremental: false }\njobs:\n  - { name: a, plugin: kv, container: x }\n  - { name: b, plugin: kv, container: y, full_every: "3d" }\n  - { name: c, plugin: kv, container: z, tier: low }\n  - { name: d, plugin: kv, container: w, tier: medium }\n  - { name: e, plugin: kv, container: v, incremental: false }\n`);
    const plan = await buildPlan(c, docker([{ name: 'vol1', labels: { 'snapagent.full_every': '2d' } }, { name: 'vol2', labels: { 'snapagent.incremental': 'false' } }], []));
    const every = Object.fromEntries(plan.jobs.map((j) => [j.name, j.fullEvery ?? 'off']));
    assert.deepEqual(every, { a: '14d', b: '3d', c: 'off', d: '7d', e: 'off', vol1: '2d', vol2: 'off' });
  });

  it('a bad value names the file and key, or the label, and what was expected', async () => {
    assert.throws(() => ctx('tiers: { critical: { full_every: "weekly" } }'), /test\.yml: tiers\.critical\.full_every: .*a duration such as "7d"/);
    const plan = await buildPlan(ctx(''), docker([{ name: 'vol1', labels: { 'snapagent.full_every': 'often' } }, { name: 'vol2', labels: { 'snapagent.incremental': 'maybe' } }], []));
    assert.match(plan.problems.map((p) => p.message).join('\n'), /snapagent\.full_every="often": expected a duration such as "7d"/);
    assert.match(plan.problems.map((p) => p.message).join('\n'), /snapagent\.incremental="maybe": expected true or false/);
  });
});

describe('point-in-time recovery settings (pitr)', () => {
  const withPitr: PluginRegistry = { ...registry, db: { ...plugin('db'), pitr: { format: 'bson', positionOf: () => undefined, openLog: async () => undefined as never } } as DatastorePlugin };
  it('a job of a plugin with pitr gets its slice interval and keep (defaults 60 s, 24h); enabled: false turns it off', async () => {
    const c = { ...ctx(`jobs:\n  - { name: a, plugin: db, container: x, pitr: {} }\n  - { name: b, plugin: db, container: y, pitr: { slice_seconds: 10, keep: 2d } }\n  - { name: c, plugin: db, container: z, pitr: { enabled: false } }\n  - { name: d, plugin: db, container: w }\n`), registry: withPitr };
    const plan = await buildPlan(c, undefined);
    assert.deepEqual(Object.fromEntries(plan.jobs.map((j) => [j.name, j.pitr ?? 'off'])), { a: { sliceSeconds: 60, keep: '24h' }, b: { sliceSeconds: 10, keep: '2d' }, c: 'off', d: 'off' });
    assert.match(planDescription(c, plan, new Date()).jobs.map((j) => JSON.stringify(j.pitr ?? null)).join(' '), /"slice_seconds":10,"keep":"2d"/);
  });
  it('a bad value names the file and key; a plugin without pitr is a problem naming the job', async () => {
    assert.throws(() => ctx('jobs: [{ name: a, plugin: kv, container: x, pitr: { slice_seconds: 1 } }]'), /test\.yml: jobs\[0\]\.pitr\.slice_seconds: .*at least 5 seconds/);
    assert.throws(() => ctx('jobs: [{ name: a, plugin: kv, container: x, pitr: { keep: forever } }]'), /test\.yml: jobs\[0\]\.pitr\.keep: .*a duration/);
    assert.throws(() => ctx('jobs: [{ name: a, plugin: kv, container: x, pitr: { every: 5 } }]'), /test\.yml: jobs\[0\]\.pitr/);
    const plan = await buildPlan({ ...ctx('jobs: [{ name: a, plugin: kv, container: x, pitr: {} }]'), registry: withPitr }, undefined);
    assert.deepEqual(plan.jobs, []);
    assert.match(plan.problems.map((p) => `${p.where}: ${p.message}`).join('\n'), /jobs\[0\].*pitr: plugin kv has no point-in-time recovery/);
  });
});
