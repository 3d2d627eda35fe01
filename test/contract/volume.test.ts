// The volume plugin runs the plugin contract suite (test/contract/plugin-suite.ts) on a
// tiny volume (its archive is smaller than a pipe buffer); awkward trees, transfer modes
// and --stop are in test/e2e/volume-roundtrip.test.ts.
import { filledVolume, snapshot } from '../helpers/tree.ts';
import { docker, HELPER, inVolume, removeContainer, removeVolume, SLEEPER } from '../helpers/harness.ts';
import { contractName, runPluginSuite } from './plugin-suite.ts';

const vol = contractName('vol');
const user = contractName('vol-user');
const exists = () => docker('volume', 'inspect', vol).then(() => true, () => false);

runPluginSuite({
  name: 'volume',
  images: [],
  start: async () => {},
  job: () => ({ volume: vol }),
  seed: async () => {
    await filledVolume(vol, "mkdir -p /v/d/e; echo hi > /v/a; printf 'ü' > '/v/d/b c'; : > /v/d/e/empty; ln -s a /v/link; mkfifo /v/fifo", ['--label', 'app=contract']);
    return { files: 3, dirs: 3, symlinks: 1, other: 1, tiny: 1 }; // its archive is smaller than a pipe buffer
  },
  manifestCounts: (m) => ({ files: m.stats.files, dirs: m.stats.dirs, symlinks: m.stats.symlinks, other: m.stats.other, tiny: Number(m.size < 65536) }),
  liveCounts: async () => {
    const n = async (type: string) => Number((await inVolume(vol, `find /v -type ${type} | wc -l`, true)).trim());
    return { files: await n('f'), dirs: await n('d'), symlinks: await n('l'), other: await n('p'), tiny: 1 };
  },
  fingerprint: async () => ((await exists()) ? snapshot(vol) : 'no volume'),
  drop: async () => void (await docker('volume', 'rm', vol)),
  inUse: {
    make: async () => void (await docker('run', '-d', '--name', user, '--network', 'none', '-v', `${vol}:/data`, HELPER, ...SLEEPER)),
    undo: () => removeContainer(user),
    refused: /in use by running container.*--stop/s,
  },
  secrets: { skip: 'the volume plugin takes no credentials' },
  stop: async () => {
    await removeContainer(user);
    await removeVolume(vol);
  },
});
