// Observability without Docker: the metrics text (checked by promtool), its atomic
// replacement under a concurrent reader, the run state, status classification, webhook
// and command notifications against a real local HTTP server and a real process, and the
// shipped alert rules and dashboard (checked by promtool against the metric names).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { parseConfigText, type Config } from '../../agent/config/load.ts';
import { ConfigError } from '../../agent/errors.ts';
import { jobStatus } from '../../agent/observe/status.ts';
import type { Health, JobHealth } from '../../agent/observe/health.ts';
import { renderMetrics, writeMetrics } from '../../agent/observe/metrics.ts';
import { backupEvent, notify } from '../../agent/observe/notify.ts';
import { readJobState, recordRun } from '../../agent/observe/run-state.ts';
import type { BackupResult } from '../../agent/backup/backup-job.ts';
import { plugins } from '../../plugins/index.ts';
import { httpSink } from '../helpers/http-sink.ts';
import { promtool } from '../helpers/promtool.ts';
import { ROOT } from '../helpers/harness.ts';

const dirs: string[] = [];
function tmp(): string {
  const d = mkdtempSync(path.join(tmpdir(), 'snapagent-observe-'));
  dirs.push(d);
  return d;
}
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

function config(dir: string, extra = '', jobs = 1): Config {
  const list = Array.from({ length: jobs }, (_, i) => `  - { name: job-${i}, plugin: volume, volume: v${i}, tier: hourly }`).join('\n');
  return parseConfigText(
    `targets: [{ name: local, type: local, path: ${dir}/backups }]
tiers: { hourly: { schedule: "0 * * * *", keep: { last: 3 } } }
jobs:
${list}
state_dir: ${dir}/state
metrics: { textfile_dir: ${dir}/metrics }
${extra}`,
    `${dir}/snapagent.yml`,
    dir,
  );
}

function result(o: Partial<BackupResult> = {}): BackupResult {
  const ok = (o.status ?? 'ok') === 'ok';
  return {
    job: 'db',
    plugin: 'mariadb',
    tier: 'hourly',
    status: 'ok',
    started_at: '2026-11-21T02:00:00.000Z',
    finished_at: '2026-11-21T02:00:42.000Z',
    duration_seconds: 42,
    ...(ok ? { id: '20261121T020000Z-hourly', size: 1000, raw_size: 4000 } : { error: 'mariadb-dump exited with code 2' }),
    targets: ok ? [{ target: 'local', status: 'ok' }] : [],
    ...o,
  };
}

const HOUR = 3600;
function health(o: Partial<JobHealth['targets'][number]> & { state?: JobHealth['state'] }): JobHealth {
  const { state, ...t } = o;
  return { job: 'db', plugin: 'mariadb', tier: 'hourly', expected_interval_seconds: HOUR, state, targets: [{ target: 'local', reachable: true, ...t }] };
}

const sample: Health = {
  jobs: [
    {
      ...health({}),
      state: { format: 'snapagent.run-state/1', host: 'h', job: 'db', plugin: 'mariadb', tier: 'hourly', run: 'r', last_attempt_at: '2026-11-21T02:00:00.000Z', last_status: 'failed', last_duration_seconds: 42.5, failures_in_a_row: 1, targets: {} },
      targets: [
        { target: 'local', reachable: true, backups: 3, last_success_at: '2026-11-21T02:00:42.000Z', size: 1000, previous_size: 2500, last_status: 'ok', drill: { format: 'snapagent.check/1', kind: 'drill', id: 'x', at: '2026-11-21T03:00:00.000Z', status: 'ok', duration_seconds: 70, rto_seconds: 64.5, rpo_seconds: 30, errors: [], details: {} }, recovery_point: { at: '2026-11-21T02:00:00.000Z', kind: 'backup', base: 'x' } },
        { target: 'offsite', reachable: false, error: 'rclone: connection refused', last_success_at: '2026-11-20T02:00:40.000Z', size: 990, last_status: 'failed' },
      ],
    },
    { job: 'never-ran', plugin: 'volume', tier: 'hourly', expected_interval_seconds: HOUR, targets: [{ target: 'local', reachable: true, backups: 0 }] },
    {
      job: 'orders',
      plugin: 'mongo',
      tier: 'hourly',
      expected_interval_seconds: HOUR,
      pitr: { slice_seconds: 60, keep: '24h' },
      targets: [{ target: 'local', reachable: true, backups: 1, recovery_point: { at: '2026-11-21T03:59:30.000Z', kind: 'pitr', base: 'y', slices: 110, gap: { after: '2026-11-21T03:59:30.000Z' } } }],
    },
  ],
  at: Date.parse('2026-11-21T04:00:00.000Z'),
  targets: [
    { name: 'local', reachable: true },
    { name: 'offsite', reachable: false, error: 'connection refused' },
  ],
};

describe('metrics textfile', () => {
  it('has HELP and TYPE for each metric, the documented series and values, and promtool accepts it', async () => {
    const text = await renderMetrics(sample);
    const check = await promtool(['check', 'metrics'], text);
    assert.equal(check.code, 0, check.out);
    const l = 'job="db",plugin="mariadb",tier="hourly",target="local"';
    for (const line of [
      `snapagent_last_success_timestamp_seconds{${l}} 1795226442`,
      `snapagent_last_status{${l}} 1`,
      `snapagent_last_attempt_timestamp_seconds{${l}} 1795226400`,
      `snapagent_last_duration_seconds{${l}} 42.5`,
      `snapagent_last_size_bytes{${l}} 1000`,
      `snapagent_previous_size_bytes{${l}} 2500`,
      `snapagent_recovery_point_timestamp_seconds{${l}} 1795226400`,
      `snapagent_recovery_point_age_seconds{${l}} 7200`,
      `snapagent_restore_drill_rpo_seconds{${l}} 30`,
      'snapagent_recovery_point_age_seconds{job="orders",plugin="mongo",tier="hourly",target="local"} 30',
      'snapagent_pitr_slice_seconds{job="orders",plugin="mongo",tier="hourly",target="local"} 60',
      'snapagent_pitr_gap{job="orders",plugin="mongo",tier="hourly",target="local"} 1',
      `snapagent_expected_interval_seconds{${l}} 3600`,
      `snapagent_backups{job="db",target="local"} 3`,
      `snapagent_restore_drill_last_timestamp_seconds{${l}} 1795230000`,
      `snapagent_restore_drill_last_status{${l}} 1`,
      `snapagent_restore_drill_rto_seconds{${l}} 64.5`,
      // an unreachable target reports what this agent last committed there, and its failure
      'snapagent_last_success_timestamp_seconds{job="db",plugin="mariadb",tier="hourly",target="offsite"} 1795140040',
      'snapagent_last_status{job="db",plugin="mariadb",tier="hourly",target="offsite"} 0',
      'snapagent_target_up{target="offsite"} 0',
      // never succeeded: 0, so that "time() - last success" is huge and the stale alert fires
      'snapagent_last_success_timestamp_seconds{job="never-ran",plugin="volume",tier="hourly",target="local"} 0',
    ]) {
      assert.ok(text.split('\n').includes(line), `missing line: ${line}\n${text}`);
    }
    const names = new Set([...text.matchAll(/^snapagent_\w+/gm)].map((m) => m[0]));
    for (const n of names) {
      assert.match(text, new RegExp(`^# HELP ${n} .+$`, 'm'));
      assert.match(text, new RegExp(`^# TYPE ${n} gauge$`, 'm'));
    }
  });

  it('is replaced atomically: a reader never sees a partial file while it is rewritten', async () => {
    const dir = tmp();
    const small = config(dir, '', 1);
    const large = config(dir, '', 60);
    const file = (await writeMetrics({ config: small, registry: plugins }))!;
    const versions = new Set<string>([readFileSync(file, 'utf8')]);
    versions.add(readFileSync((await writeMetrics({ config: large, registry: plugins }))!, 'utf8'));
    assert.ok([...versions].every((v) => v.length > 0) && versions.size === 2);
    // a separate process reads the file as fast as it can and reports every distinct content
    const reader = spawn(
      process.execPath,
      ['-e', `const fs=require('fs');const seen=new Map();let stop=false;process.stdin.on('data',()=>stop=true);process.stdin.resume();
       (function loop(){for(let i=0;i<200;i++){const t=fs.readFileSync(${JSON.stringify(file)},'utf8');seen.set(t,(seen.get(t)||0)+1)}
       if(stop){process.stdout.write(JSON.stringify([...seen]));process.exit(0)}setImmediate(loop)})()`],
      { stdio: ['pipe', 'pipe', 'inherit'] },
    );
    let out = '';
    reader.stdout.on('data', (c) => (out += c));
    for (let i = 0; i < 60; i++) await writeMetrics({ config: i % 2 ? small : large, registry: plugins });
    reader.stdin.end('stop');
    await new Promise((r) => reader.on('close', r));
    const seen = JSON.parse(out) as [string, number][];
    const reads = seen.reduce((n, [, c]) => n + c, 0);
    assert.ok(reads > 100, `the reader only managed ${reads} reads`);
    for (const [text] of seen) assert.ok(versions.has(text), `a reader saw a partial file (${text.length} bytes)`);
    assert.deepEqual(readdirSync(path.dirname(file)), ['snapagent.prom'], 'no temporary file is left behind');
    assert.equal(statSync(file).mode & 0o777, 0o644, 'node_exporter (another user) can read it');
  });

  it('is not written when metrics are not configured', async () => {
    const dir = tmp();
    const c = parseConfigText(`targets: [{ name: l, type: local, path: ${dir}/b }]\nstate_dir: ${dir}/s\n`, 'f.yml', dir);
    assert.equal(await writeMetrics({ config: c, registry: plugins }), undefined);
  });

  it('config: the file name must end in .prom; paths resolve against the config file', () => {
    assert.throws(() => parseConfigText('metrics: { textfile_dir: /x, file: snap.txt }', 'f.yml'), (e: Error) => e instanceof ConfigError && /f\.yml: metrics\.file: a file name ending in "\.prom"/.test(e.message));
    assert.throws(() => parseConfigText('metrics: {}', 'f.yml'), /f\.yml: metrics\.textfile_dir: expected string, got nothing/);
    const c = parseConfigText('metrics: { textfile_dir: ./tf }', '/etc/snapagent/c.yml', '/etc/snapagent');
    assert.equal(c.metrics?.textfile_dir, '/etc/snapagent/tf');
    assert.equal(c.metrics?.file, 'snapagent.prom');
  });
});

describe('run state', () => {
  it('records attempts per job (0600), and a failed run keeps the last success of each target', async () => {
    const dir = tmp();
    await recordRun(dir, 'h', result(), 'run1', ['local', 'offsite']);
    let st = (await readJobState(dir, 'h', 'db'))!;
    assert.equal(st.last_status, 'ok');
    assert.equal(st.targets.local?.last_success_at, '2026-11-21T02:00:42.000Z');
    assert.equal(st.targets.offsite, undefined, 'a successful run (--target local) leaves the other targets as they were');
    assert.equal(statSync(path.join(dir, 'runs', 'h--db.json')).mode & 0o777, 0o600);

    await recordRun(dir, 'h', result({ status: 'failed', started_at: '2026-11-21T03:00:00.000Z' }), 'run2', ['local', 'offsite']);
    await recordRun(dir, 'h', result({ status: 'failed', started_at: '2026-11-21T04:00:00.000Z' }), 'run3', ['local', 'offsite']);
    st = (await readJobState(dir, 'h', 'db'))!;
    assert.equal(st.last_status, 'failed');
    assert.equal(st.last_attempt_at, '2026-11-21T04:00:00.000Z');
    assert.equal(st.failures_in_a_row, 2);
    assert.equal(st.run, 'run3');
    assert.equal(st.last_error, 'mariadb-dump exited with code 2');
    assert.deepEqual(st.targets.local, { status: 'failed', error: 'mariadb-dump exited with code 2', last_success_at: '2026-11-21T02:00:42.000Z', last_success_id: '20261121T020000Z-hourly', last_size: 1000 });
  });
});

describe('status classification', () => {
  const c = parseConfigText('tiers: { hourly: { schedule: "0 * * * *", keep: { last: 3 } } }', 'f.yml');
  const at = (iso: string) => new Date(iso);
  const done = '2026-11-21T02:00:42.000Z';
  const okState = { format: 'snapagent.run-state/1' as const, host: 'h', job: 'db', plugin: 'mariadb', tier: 'hourly', run: 'r', last_attempt_at: '2026-11-21T02:00:00.000Z', last_status: 'ok' as const, last_duration_seconds: 42, failures_in_a_row: 0, targets: {} };

  it('fresh within 1.5 × the interval, stale after; next run from the schedule; size trend', () => {
    const h = health({ backups: 2, last_success_at: done, size: 400, previous_size: 1000, state: okState });
    const fresh = jobStatus(h, c, at('2026-11-21T03:20:00Z'));
    assert.equal(fresh.status, 'ok');
    assert.equal(fresh.next_run, '2026-11-21T04:00:00.000Z');
    assert.equal(fresh.stale_after_seconds, 5400);
    assert.equal(fresh.size_change, -0.6);
    const stale = jobStatus(h, c, at('2026-11-21T03:31:00Z'));
    assert.equal(stale.status, 'stale');
    assert.match(stale.reason!, /1h30m old, more than 1\.5 × the tier's interval \(1h00m\)/);
  });

  it('failed when the last run failed, even with a fresh backup; never when nothing was committed', () => {
    const failedState = { ...okState, last_status: 'failed' as const, last_error: 'disk full', failures_in_a_row: 1 };
    const failed = jobStatus(health({ backups: 1, last_success_at: done, state: failedState }), c, at('2026-11-21T02:10:00Z'));
    assert.equal(failed.status, 'failed');
    assert.match(failed.reason!, /failed: disk full/);
    assert.equal(jobStatus(health({ backups: 0 }), c, at('2026-11-21T02:10:00Z')).status, 'never');
  });

  it('stale when one of its targets has no backup at all', () => {
    const h = health({ backups: 1, last_success_at: done, state: okState });
    h.targets.push({ target: 'offsite', reachable: true, backups: 0 });
    const s = jobStatus(h, c, at('2026-11-21T02:10:00Z'));
    assert.equal(s.status, 'stale');
    assert.match(s.reason!, /no committed backup on offsite/);
  });
});

describe('notifications', () => {
  it('POSTs a Slack-compatible event with the structured fields; the URL (a secret) comes from a file', async () => {
    const sink = await httpSink();
    const dir = tmp();
    writeFileSync(path.join(dir, 'hook'), `${sink.url}\n`);
    try {
      const c = config(dir, 'notifications: { on: [failure, success], webhook: { url_file: ./hook } }');
      const failed = result({ status: 'failed', hint: 'check the credentials' });
      await notify(c, [backupEvent('web-01', result(), 'abcd1234', 0), backupEvent('web-01', failed, 'abcd1234', 3)]);
      const got = await sink.waitFor(2);
      assert.equal(got[0]!.method, 'POST');
      assert.equal(got[0]!.headers['content-type'], 'application/json');
      const [ok, bad] = got.map((r) => JSON.parse(r.body));
      assert.equal(typeof ok.text, 'string');
      assert.match(ok.text, /snapagent web-01: backup of db ok \(20261121T020000Z-hourly, 1000 B in 42s\)/);
      assert.deepEqual(
        { format: bad.format, event: bad.event, host: bad.host, job: bad.job, status: bad.status, error: bad.error, hint: bad.hint, run: bad.run, failures: bad.failures_in_a_row, duration: bad.duration_seconds },
        { format: 'snapagent.event/1', event: 'backup', host: 'web-01', job: 'db', status: 'failed', error: 'mariadb-dump exited with code 2', hint: 'check the credentials', run: 'abcd1234', failures: 3, duration: 42 },
      );
      assert.match(bad.text, /FAILED: mariadb-dump exited with code 2 \(next: check the credentials\)/);
      assert.equal(ok.id, '20261121T020000Z-hourly');
      assert.equal(ok.size, 1000);
    } finally {
      await sink.close();
    }
  });

  it('sends only what `on` asks for (default: failures), and gives the command the event on stdin', async () => {
    const sink = await httpSink();
    const dir = tmp();
    const out = path.join(dir, 'events');
    try {
      process.env.SNAPAGENT_TEST_HOOK = sink.url;
      const c = config(dir, `notifications: { webhook: { url_env: SNAPAGENT_TEST_HOOK }, command: [sh, -c, 'cat >> ${out}; echo >> ${out}'] }`);
      await notify(c, [backupEvent('h', result(), 'r', 0), backupEvent('h', result({ status: 'failed' }), 'r', 1)]);
      assert.equal(sink.received.length, 1);
      assert.equal(JSON.parse(sink.received[0]!.body).status, 'failed');
      const lines = readFileSync(out, 'utf8').trim().split('\n');
      assert.equal(lines.length, 1);
      assert.equal(JSON.parse(lines[0]!).status, 'failed');
    } finally {
      delete process.env.SNAPAGENT_TEST_HOOK;
      await sink.close();
    }
  });

  it('a webhook that fails, hangs past the timeout, or a failing command never throws', async () => {
    const broken = await httpSink(500);
    const hanging = await httpSink('hang');
    const dir = tmp();
    try {
      for (const [url, extra] of [[broken.url, ''], [hanging.url, ', timeout_seconds: 0.5'], ['http://127.0.0.1:9/none', '']] as const) {
        const c = config(dir, `notifications: { webhook: { url: "${url}" }, command: [sh, -c, 'exit 3']${extra} }`);
        await notify(c, [backupEvent('h', result({ status: 'failed' }), 'r', 1)]);
      }
      assert.equal(broken.received.length, 1);
      assert.equal(hanging.received.length, 1);
    } finally {
      await broken.close();
      await hanging.close();
    }
  });

  it('config: exactly one of url, url_file, url_env; errors name the key', () => {
    assert.throws(() => parseConfigText('notifications: { webhook: { url: "http://x/y", url_env: X } }', 'f.yml'), /f\.yml: notifications\.webhook: expected exactly one of url, url_file, url_env/);
    assert.throws(() => parseConfigText('notifications: { on: [sometimes] }', 'f.yml'), /f\.yml: notifications\.on\[0\]:/);
    assert.throws(() => parseConfigText('notifications: { command: "notify-send" }', 'f.yml'), /f\.yml: notifications\.command: expected array/);
  });
});

describe('alert rules and dashboard (compose/)', () => {
  const metricNames = async () => new Set([...(await renderMetrics(sample)).matchAll(/^# HELP (\w+)/gm)].map((m) => m[1]!));
  const documented = [
    'snapagent_last_success_timestamp_seconds',
    'snapagent_last_attempt_timestamp_seconds',
    'snapagent_last_status',
    'snapagent_last_duration_seconds',
    'snapagent_last_size_bytes',
    'snapagent_previous_size_bytes',
    'snapagent_expected_interval_seconds',
    'snapagent_backups',
    'snapagent_restore_drill_last_timestamp_seconds',
    'snapagent_restore_drill_last_status',
    'snapagent_restore_drill_rto_seconds',
    'snapagent_restore_drill_rpo_seconds',
    'snapagent_recovery_point_timestamp_seconds',
    'snapagent_recovery_point_age_seconds',
    'snapagent_pitr_slice_seconds',
    'snapagent_pitr_gap',
    'snapagent_target_up',
  ];

  it('the alert rules pass `promtool check rules` and their unit tests (stale, failed, size drop)', async () => {
    const dir = path.join(ROOT, 'compose', 'prometheus');
    const check = await promtool(['check', 'rules', 'snapagent-rules.yml'], '', dir);
    assert.equal(check.code, 0, check.out);
    const test = await promtool(['test', 'rules', 'snapagent-rules.test.yml'], '', dir);
    assert.equal(test.code, 0, test.out);
    const rules = readFileSync(path.join(dir, 'snapagent-rules.yml'), 'utf8');
    for (const alert of ['SnapagentBackupStale', 'SnapagentBackupFailed', 'SnapagentBackupSizeDrop', 'SnapagentRecoveryPointOld', 'SnapagentPitrGap']) assert.match(rules, new RegExp(`alert: ${alert}\\b`));
    for (const used of rules.matchAll(/\bsnapagent_\w+/g)) assert.ok(documented.includes(used[0]), `the rules use an unknown metric ${used[0]}`);
  });

  it('the dashboard is valid JSON whose queries parse (promtool) and use only metrics the agent writes', async () => {
    const dash = JSON.parse(readFileSync(path.join(ROOT, 'compose', 'grafana', 'snapagent-dashboard.json'), 'utf8'));
    const exprs: string[] = dash.panels.flatMap((p: { targets: { expr: string }[] }) => p.targets.map((t) => t.expr));
    assert.ok(exprs.length >= 8);
    // every metric renderMetrics knows is documented here, and the dashboard uses no other
    const known = await metricNames();
    for (const used of exprs.join('\n').matchAll(/\bsnapagent_\w+/g)) assert.ok(known.has(used[0]), `the dashboard uses an unknown metric ${used[0]}`);
    // PromQL checked by promtool: the queries as recording rules, variables replaced
    const dir = tmp();
    const rules = { groups: [{ name: 'dashboard', rules: exprs.map((e, i) => ({ record: `dashboard:q${i}`, expr: e.replaceAll('$instance', '.*').replaceAll('$backup_job', '.*') })) }] };
    writeFileSync(path.join(dir, 'q.yml'), JSON.stringify(rules));
    const check = await promtool(['check', 'rules', path.join(dir, 'q.yml')]);
    assert.equal(check.code, 0, check.out);
  });

  it('the agent writes exactly the documented metric names; gauges without a value are left out', async () => {
    assert.deepEqual([...(await metricNames())].sort(), [...documented].sort());
    const empty = await renderMetrics({ jobs: [], targets: [{ name: 'x', reachable: true }] });
    assert.equal(empty.match(/^# HELP/gm)?.length, 1);
  });
});
