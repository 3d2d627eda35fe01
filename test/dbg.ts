import { createReadStream } from 'node:fs';
import { connectDocker } from '../agent/docker/client.ts';
const d = connectDocker();
for (const mode of ['from', 'file', 'file-delay']) {
  const h = await d.runHelper({ image: 'snapagent/helper:latest', purpose: 'dbg', cmd: ['sh','-c','wc -c'], mounts: [], stdin: true });
  h.stdout.on('data', (c) => console.log(mode, 'out', String(c).trim()));
  if (mode === 'file-delay') await new Promise((r) => setTimeout(r, 1000));
  createReadStream(process.argv[2]!).pipe(h.stdin!);
  console.log(await h.done);
}
