// A real OpenSSH server on 127.0.0.1 for the rclone target tests, with throwaway
// host and client keys; rclone reaches it through RCLONE_CONFIG_<NAME>_* env vars.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';

export interface SftpServer {
  root: string;
  port: number;
  /** RCLONE_CONFIG_* variables defining the remote `name`. */
  env(name: string): Record<string, string>;
  stop(): Promise<void>;
}

async function waitForPort(port: number, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = createConnection({ host: '127.0.0.1', port }, () => (s.end(), resolve(true)));
      s.on('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`sshd did not listen on 127.0.0.1:${port}`);
}

export async function startSftpServer(): Promise<SftpServer> {
  const dir = mkdtempSync(path.join(tmpdir(), 'snapagent-sftp-'));
  const root = path.join(dir, 'data');
  mkdirSync(root);
  mkdirSync('/run/sshd', { recursive: true });
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', path.join(dir, 'host_key')]);
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', path.join(dir, 'client_key')]);
  writeFileSync(path.join(dir, 'authorized_keys'), readFileSync(path.join(dir, 'client_key.pub')), { mode: 0o600 });
  // a range no other test server draws from (Elasticsearch 19200-19899, Cassandra
  // 20000-23999, MongoDB 27200-29199, MariaDB 33000-34999, disaster recovery 40000-44999):
  // the two test lanes run at once, and Cassandra once failed to bind a port an SFTP
  // server had drawn from the old 20000-39999
  const port = 36000 + Math.floor(Math.random() * 3500);
  writeFileSync(
    path.join(dir, 'sshd_config'),
    [
      `Port ${port}`,
      'ListenAddress 127.0.0.1',
      `HostKey ${path.join(dir, 'host_key')}`,
      `AuthorizedKeysFile ${path.join(dir, 'authorized_keys')}`,
      `PidFile ${path.join(dir, 'sshd.pid')}`,
      'PermitRootLogin prohibit-password',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'UsePAM no',
      'StrictModes no',
      'Subsystem sftp internal-sftp',
    ].join('\n') + '\n',
  );
  const sshd: ChildProcess = spawn('/usr/sbin/sshd', ['-D', '-e', '-f', path.join(dir, 'sshd_config')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  sshd.stderr!.on('data', (c) => (log += c));
  try {
    await waitForPort(port, 10000);
  } catch (err) {
    sshd.kill();
    throw new Error(`${(err as Error).message}: ${log}`);
  }
  const user = process.env.USER && process.env.USER !== '' ? process.env.USER : 'root';
  return {
    root,
    port,
    env: (name) => {
      const p = `RCLONE_CONFIG_${name.toUpperCase()}_`;
      return {
        [`${p}TYPE`]: 'sftp',
        [`${p}HOST`]: '127.0.0.1',
        [`${p}PORT`]: String(port),
        [`${p}USER`]: user,
        [`${p}KEY_FILE`]: path.join(dir, 'client_key'),
        [`${p}SHELL_TYPE`]: 'none',
      };
    },
    stop: async () => {
      sshd.kill();
      await new Promise((r) => sshd.once('close', r));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
