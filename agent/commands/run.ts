// snapagent run: the daemon (agent/daemon.ts), until SIGTERM/SIGINT; then exit 0.
import { runDaemon } from '../daemon.ts';
import { openSession, type GlobalOptions } from './common.ts';

export async function runCommand(opts: GlobalOptions): Promise<void> {
  await runDaemon(openSession({ ...opts, json: true })); // no progress bars: a daemon logs
}
