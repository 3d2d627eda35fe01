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

  const bad: [string, string, RegExp][] = [
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
