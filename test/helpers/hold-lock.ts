// Stands in for another agent run: takes a job's lock with the agent's own lock code,
// prints "locked", and holds it until killed (SIGKILL leaves the lock behind, as a
// killed agent would).
//   node test/helpers/hold-lock.ts STATE_DIR HOST JOB
import { lockJob } from '../../agent/runtime/lock.ts';
import { log } from '../../agent/log.ts';

const [stateDir, host, job] = process.argv.slice(2) as [string, string, string];
await lockJob(stateDir, host, job, log);
process.stdout.write('locked\n');
setInterval(() => undefined, 1 << 30);
