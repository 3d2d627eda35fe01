// Config validation: defaults, path resolution, and errors naming file, key and expectation.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BUILTIN, loadConfig, parseConfigText } from '../../agent/config/load.ts';
import { ConfigError } from '../../agent/errors.ts';
import { volumePlugin } from '../../plugins/volume/index.ts';

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
    ['an encryption block without recipients', 'encryption: {}', /^f\.yml: encryption: expected age_recipients \(a non-empty list of public keys\) or age_recipients_file: without recipients nothing would be encrypted/],
    ['an empty recipient list', 'encryption: { age_recipients: [] }', /^f\.yml: encryption: expected age_recipients/],
    ['an identity without recipients', 'encryption: { age_identity_file: k.txt }', /^f\.yml: encryption: expected age_recipients/],
    ['encryption: null', 'encryption:', /^f\.yml: encryption: expected object, got null/],
    // timers overflow above 2^31-1 ms: 2147484 s is the first value that would fire at once
    ['an oversize lock wait', 'lock_wait_seconds: 2147484', /^f\.yml: lock_wait_seconds: at most 604800 seconds \(7 days\)/],
    ['an oversize rclone timeout', 'targets: [{ name: r, type: rclone, remote: "r:b", timeout_seconds: 99999999 }]', /^f\.yml: targets\[0\]\.timeout_seconds: at most 604800 seconds/],
    ['an oversize notification timeout', 'notifications: { timeout_seconds: 3000000.5, command: [x] }', /^f\.yml: notifications\.timeout_seconds: at most 604800 seconds/],
    ['an oversize compose wait', 'compose: { file: c.yml, wait_seconds: 604801 }', /^f\.yml: compose\.wait_seconds: at most 604800 seconds/],
    ['an oversize drill startup timeout', 'drill: { startup_timeout: 1e12 }', /^f\.yml: drill\.startup_timeout: at most 604800 seconds/],
  ];
  it('accepts the longest waits (7 days) and zero lock wait', () => {
    const c = parseConfigText('lock_wait_seconds: 604800\ndrill: { startup_timeout: 604800 }\ncompose: { file: c.yml, wait_seconds: 604800 }', 'f.yml');
    assert.equal(c.lock_wait_seconds, 604800);
    assert.equal(parseConfigText('lock_wait_seconds: 0', 'f.yml').lock_wait_seconds, 0);
  });

  it('bounds the plugins\' timeouts too', () => {
    const where = 'f.yml: jobs[0].options';
    assert.throws(() => volumePlugin.parseOptions({ stop_timeout: 2147484 }, where), (err: unknown) => err instanceof ConfigError && /^f\.yml: jobs\[0\]\.options: stop_timeout: at most 604800 seconds/.test(err.message));
    assert.equal(volumePlugin.parseOptions({ stop_timeout: 604800 }, where).stop_timeout, 604800);
  });

  // Inline credentials in an rclone target: refused, named by file, index and name, the
  // value never repeated (neither in the message nor in the hint).
  const SK = 'Sk/9"q\\secretvalue';
  const inline: [string, string, RegExp][] = [
    ['an on-the-fly backend with keys', `:s3,provider=AWS,access_key_id=AKIA0000,secret_access_key='${SK}':bucket/x`, /inline \(access_key_id, secret_access_key\)/],
    ['a named remote with a password override', `mysftp,password="${SK}":backups`, /inline \(password\)/],
    ['env_auth off and keys inline', `s3,env_auth=false,access_key_id=AKIA0000,secret_access_key=${SK}:b`, /inline \(access_key_id, secret_access_key\)/],
    ['a token', `:drive,token='{"access_token":"${SK}"}':x`, /inline \(token\)/],
    ['a password in a URL', `:webdav,url='https://u:${SK}@dav.example/':x`, /inline \(password in a URL\)/],
  ];
  for (const [name, remote, re] of inline) {
    it(`refuses an rclone remote with ${name}, without echoing the secret`, () => {
      const text = `targets:\n  - { name: l, type: local, path: b }\n  - name: off-site\n    type: rclone\n    remote: ${JSON.stringify(remote)}\n`;
      assert.throws(() => parseConfigText(text, '/etc/snapagent/snapagent.yml'), (err: unknown) => {
        assert.ok(err instanceof ConfigError);
        assert.equal(err.exitCode, 2);
        assert.match(err.message, /^\/etc\/snapagent\/snapagent\.yml: targets\[1\] \(off-site\)\.remote: the remote carries credentials inline/);
        assert.match(err.message, re);
        assert.match(err.hint!, /rclone's config file .* RCLONE_CONFIG_<REMOTE>_\* environment variables \(e\.g\. RCLONE_CONFIG_OFF_SITE_SECRET_ACCESS_KEY\)/);
        for (const s of [SK, 'secretvalue', 'AKIA0000']) assert.ok(!`${err.message} ${err.hint}`.includes(s), `the error repeats ${s}`);
        return true;
      });
    });
  }

  it('accepts connection-string parameters that are not credentials, and refuses credential flags by name', () => {
    const ok = parseConfigText('targets: [{ name: r, type: rclone, remote: "s3,provider=Minio,env_auth=true:bucket", flags: ["--s3-no-check-bucket", "--sftp-key-file", "/k", "--timeout=2s"] }]', 'f.yml');
    assert.equal(ok.targets[0]!.type === 'rclone' && ok.targets[0]!.remote, 's3,provider=Minio,env_auth=true:bucket');
    assert.throws(
      () => parseConfigText('targets: [{ name: r, type: rclone, remote: "s3:b", flags: ["--s3-secret-access-key=hunter2hunter2"] }]', 'f.yml'),
      (err: unknown) => err instanceof ConfigError && /^f\.yml: targets\[0\] \(r\)\.flags: --s3-secret-access-key would put a credential/.test(err.message) && !err.message.includes('hunter2'),
    );
  });

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
