// Config validation: defaults, path resolution, and errors naming file, key and expectation.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BUILTIN, loadConfig, parseConfigText } from '../../agent/config/load.ts';
import { ConfigError } from '../../agent/errors.ts';

describe('config', () => {
  it('the built-in default backs up labelled data to ./backups with the three tiers', () => {
    const c = loadConfig(undefined, {});
    assert.equal(c.source, BUILTIN);
    assert.deepEqual(c.targets, [{ name: 'local', type: 'local', path: `${process.cwd()}/backups` }]);
    assert.deepEqual(Object.keys(c.tiers), ['critical', 'medium', 'low']);
    assert.deepEqual(c.tiers.critical, { schedule: '0 2 * * *', keep: { daily: 30 } });
    assert.equal(c.discovery.labels, true);
    assert.equal(c.discovery.all_volumes, false);
  });

  it('resolves local target paths against the config file directory', () => {
    const c = parseConfigText('targets: [{ name: l, type: local, path: ./b }]', '/etc/snapagent/snapagent.yml', '/etc/snapagent');
    assert.equal(c.targets[0]!.type === 'local' && c.targets[0]!.path, '/etc/snapagent/b');
  });

  it('resolves the compose stack\'s files against the config file directory', () => {
    const c = parseConfigText('compose: { file: stack/docker-compose.yml, project: web, env_file: stack.env }', '/etc/snapagent/snapagent.yml', '/etc/snapagent');
    assert.deepEqual(c.compose, { file: '/etc/snapagent/stack/docker-compose.yml', project: 'web', env_file: '/etc/snapagent/stack.env', wait_seconds: 600 });
    assert.equal(parseConfigText('{}', 'f.yml').compose, undefined);
  });

  it('takes tier overrides and keeps the other defaults', () => {
    const c = parseConfigText('tiers: { critical: { schedule: "30 1 * * *", keep: { daily: 7, weekly: 4 } } }', 'f.yml');
    assert.deepEqual(c.tiers.critical, { schedule: '30 1 * * *', keep: { daily: 7, weekly: 4 } });
    assert.deepEqual(c.tiers.low, { schedule: '0 4 1 * *', keep: { monthly: 3 } });
  });

  it('resolves encryption files against the config file directory and takes drill schedules', () => {
    const c = parseConfigText(
      'encryption: { age_recipients_file: r.txt, age_identity_file: ./k.txt }\ntiers: { low: { schedule: "0 4 1 * *", keep: { monthly: 3 }, drill: { schedule: "0 5 2 * *" } } }',
      '/etc/snapagent/snapagent.yml',
      '/etc/snapagent',
    );
    assert.deepEqual(c.encryption, { age_recipients: [], age_recipients_file: '/etc/snapagent/r.txt', age_identity_file: '/etc/snapagent/k.txt' });
    assert.deepEqual(c.tiers.low!.drill, { schedule: '0 5 2 * *' });
    assert.equal(c.drill.startup_timeout, 300);
  });

  it('overrides one key of a built-in tier, takes new tiers, jobs[].keep and the run settings', () => {
    const c = parseConfigText(
      `tiers: { critical: { keep: { daily: 7, within: "36h" } }, hourly: { schedule: "5 * * * *", keep: { last: 24 } } }
jobs: [{ name: a, plugin: volume, volume: a, tier: hourly, keep: { weekly: 2 } }]
concurrency: 1
lock_wait_seconds: 10
daemon: { catch_up: false }`,
      'f.yml',
    );
    assert.deepEqual(c.tiers.critical, { schedule: '0 2 * * *', keep: { daily: 7, within: '36h' } });
    assert.deepEqual(c.tiers.hourly, { schedule: '5 * * * *', keep: { last: 24 } });
    assert.deepEqual(c.jobs[0]!.keep, { weekly: 2 });
    assert.equal(c.concurrency, 1);
    assert.equal(c.lock_wait_seconds, 10);
    assert.equal(c.daemon.catch_up, false);
    const d = parseConfigText('{}', 'f.yml');
    assert.equal(d.concurrency, 2);
    assert.equal(d.lock_wait_seconds, 3600);
    assert.equal(d.daemon.catch_up, true);
  });

  const bad: [string, string, RegExp][] = [
    ['a bad tier schedule', 'tiers: { critical: { schedule: "0 25 * * *" } }', /^f\.yml: tiers\.critical\.schedule: "0 25 \* \* \*": /],
    ['a schedule with too few fields', 'tiers: { low: { schedule: "daily" } }', /^f\.yml: tiers\.low\.schedule: "daily": expected 5 fields/],
    ['a new tier without a schedule', 'tiers: { hourly: { keep: { last: 3 } } }', /^f\.yml: tiers\.hourly\.schedule: expected a cron schedule/],
    ['a new tier without keep', 'tiers: { hourly: { schedule: "0 * * * *" } }', /^f\.yml: tiers\.hourly\.keep: expected a retention policy/],
    ['a bad within', 'tiers: { critical: { keep: { within: "7 days" } } }', /^f\.yml: tiers\.critical\.keep\.within: a duration such as "36h"/],
    ['an unknown keep rule', 'jobs: [{ name: a, plugin: volume, keep: { hourly: 3 } }]', /^f\.yml: jobs\[0\]\.keep: unknown key "hourly"/],
    ['a negative keep', 'tiers: { critical: { keep: { daily: -1 } } }', /^f\.yml: tiers\.critical\.keep\.daily: /],
    ['zero concurrency', 'concurrency: 0', /^f\.yml: concurrency: /],
    ['an unknown daemon key', 'daemon: { catchup: true }', /^f\.yml: daemon: unknown key "catchup"/],
    ['not YAML', 'jobs: [', /^f\.yml: invalid YAML at line 1/],
    ['duplicate keys', 'host: a\nhost: b\n', /^f\.yml: invalid YAML/],
    ['wrong type', 'host: 5', /^f\.yml: host: expected string, got number 5/],
    ['unknown key in a target', 'targets: [{ name: l, type: local, path: b, mode: x }]', /^f\.yml: targets\[0\]: unknown key "mode"/],
    ['unknown target type', 'targets: [{ name: l, type: ftp, path: b }]', /^f\.yml: targets\[0\]\.type: /],
    ['bad rclone remote', 'targets: [{ name: r, type: rclone, remote: nocolon }]', /^f\.yml: targets\[0\]\.remote: .*rclone remote path/],
    ['bad job name', 'jobs: [{ name: "a b", plugin: volume }]', /^f\.yml: jobs\[0\]\.name: /],
    ['duplicate target names', 'targets: [{ name: l, type: local, path: a }, { name: l, type: local, path: b }]', /^f\.yml: targets\[1\]\.name: duplicate target name "l"/],
    ['job with unknown target', 'jobs: [{ name: a, plugin: volume, targets: [nope] }]', /^f\.yml: jobs\[0\]\.targets: unknown target "nope", expected one of local/],
    ['missing required key', 'jobs: [{ plugin: volume }]', /^f\.yml: jobs\[0\]\.name: expected string, got nothing \(the key is missing\)/],
    ['a private key as a recipient', 'encryption: { age_recipients: ["AGE-SECRET-KEY-1QQQ"] }', /^f\.yml: encryption\.age_recipients\[0\]: an age recipient \("age1…"\)/],
    ['unknown encryption key', 'encryption: { age_identity: /k }', /^f\.yml: encryption: unknown key "age_identity"/],
    ['bad drill schedule', 'tiers: { critical: { schedule: "0 2 * * *", keep: { daily: 3 }, drill: { schedule: "every day" } } }', /^f\.yml: tiers\.critical\.drill\.schedule: "every day": expected 5 fields/],
    ['compose without a file', 'compose: { project: p }', /^f\.yml: compose\.file: expected string, got nothing \(the key is missing\)/],
    ['compose with a bad wait', 'compose: { file: c.yml, wait_seconds: 0 }', /^f\.yml: compose\.wait_seconds: /],
  ];
  for (const [name, text, re] of bad) {
    it(`rejects ${name} with a message naming file and key`, () => {
      assert.throws(() => parseConfigText(text, 'f.yml'), (err: unknown) => {
        assert.ok(err instanceof ConfigError);
        assert.equal(err.exitCode, 2);
        assert.match(err.message, re);
        return true;
      });
    });
  }
});
