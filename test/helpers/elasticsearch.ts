// A real Elasticsearch in a container (snapagent-test/elasticsearch, official-image
// conventions: settings as env vars, ELASTIC_PASSWORD, security on by default with a
// generated CA) on 127.0.0.1 with ports of its own, and a Node client for the tests.
import { Client } from '@elastic/elasticsearch';
import { docker, removeContainer, removeVolume, uniq } from './harness.ts';
import { waitForServer } from './wait.ts';

export const ES_IMAGE = 'snapagent-test/elasticsearch:latest';

export interface EsServer {
  name: string;
  port: number;
  /** The volume mounted at path.repo (when there is one). */
  repoVolume?: string;
  client: Client;
  remove(): Promise<void>;
}

export interface EsSpec {
  /** Security on (https, elastic's password) or off. */
  password?: string;
  /** path.repo, with a volume mounted there; undefined: no path.repo at all. */
  pathRepo?: string;
  /** Start as root so that the entrypoint gives path.repo to uid 1000 (default true). */
  root?: boolean;
}

export async function startEs(spec: EsSpec): Promise<EsServer> {
  const name = uniq('sa-es');
  const port = 19200 + Math.floor(Math.random() * 700);
  const repoVolume = spec.pathRepo ? `${name}-snap` : undefined;
  const env = ['discovery.type=single-node', `http.port=${port}`, `transport.port=${port + 1000}`, 'ES_JAVA_OPTS=-Xms256m -Xmx256m'];
  if (spec.pathRepo) env.push(`path.repo=${spec.pathRepo}`);
  if (spec.password) env.push(`ELASTIC_PASSWORD=${spec.password}`);
  else env.push('xpack.security.enabled=false');
  await docker('run', '-d', '--name', name, '--network', 'host', ...(spec.root === false ? [] : ['--user', '0']),
    ...env.flatMap((e) => ['-e', e]), '-v', `${name}-data:/usr/share/elasticsearch/data`,
    ...(repoVolume ? ['-v', `${repoVolume}:${spec.pathRepo}`] : []), ES_IMAGE);
  const remove = async () => {
    await removeContainer(name);
    await removeVolume(`${name}-data`);
    if (repoVolume) await removeVolume(repoVolume);
  };
  const connect = async () => {
    let client: Client;
    if (spec.password) {
      const ca = await docker('exec', name, 'cat', '/usr/share/elasticsearch/config/certs/http_ca.crt');
      client = new Client({ node: `https://127.0.0.1:${port}`, auth: { username: 'elastic', password: spec.password }, tls: { ca }, requestTimeout: 120_000 });
    } else {
      client = new Client({ node: `http://127.0.0.1:${port}`, requestTimeout: 120_000 });
    }
    try {
      const h = await client.cluster.health({ wait_for_status: 'yellow', timeout: '5s' });
      if (h.timed_out) throw new Error(`cluster health ${h.status}`);
      return client;
    } catch (err) {
      await client.close();
      throw err;
    }
  };
  try {
    const client = await waitForServer(name, 'Elasticsearch', connect, { timeoutMs: 180_000, intervalMs: 1000 });
    return { name, port, repoVolume, client, remove };
  } catch (err) {
    await remove();
    throw err;
  }
}
