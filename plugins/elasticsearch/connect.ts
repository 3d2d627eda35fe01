// Zero-configuration access to an Elasticsearch container that follows the official
// image's conventions: its settings from `-E` arguments, environment variables named
// like settings (or ES_SETTING_*) and config/elasticsearch.yml (read inside the
// container); the REST endpoint from http.port, network.host and the network mode;
// https with the CA the image generated (config/certs/http_ca.crt) unless security is
// off; the elastic user's password from ELASTIC_PASSWORD(_FILE). Every piece can be
// overridden in the job's options.
// The client is loaded on first use: importing it costs ~0.2 s and ~38 MB, which every
// other job of the agent would otherwise pay.
import type { Client } from '@elastic/elasticsearch';
import { readFile } from 'node:fs/promises';
import { parse } from 'yaml';
import { type ContainerDetails, containerSecret, endpoint, type PluginContext, runIn, secretFromOptions, SnapError } from '../../agent/plugin/index.ts';
import type { EsOptions } from './options.ts';

export interface Es {
  client: Client;
  url: string;
  version: string;
  clusterName: string;
  clusterUuid: string;
  close(): Promise<void>;
}

/** The container's Elasticsearch settings, from arguments, environment and elasticsearch.yml. */
export class ContainerSettings {
  private readonly args = new Map<string, string>();
  private readonly env = new Map<string, string>();
  private yml = new Map<string, string>();
  readonly confDir: string;

  constructor(c: ContainerDetails) {
    this.confDir = c.env.ES_PATH_CONF || '/usr/share/elasticsearch/config';
    for (let i = 0; i < c.args.length; i++) {
      const a = c.args[i]!;
      const kv = a === '-E' ? c.args[++i] : a.startsWith('-E') ? a.slice(2) : undefined;
      if (kv?.includes('=')) this.args.set(kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1));
    }
    for (const [k, v] of Object.entries(c.env)) {
      if (!v) continue;
      if (/^[-a-z0-9_]+(\.[-a-z0-9_]+)+$/.test(k)) this.env.set(k, v);
      else if (k.startsWith('ES_SETTING_') && k.length > 11) {
        this.env.set(k.slice(11).replaceAll('__', '\u0001').replaceAll('_', '.').replaceAll('\u0001', '_').toLowerCase(), v);
      }
    }
  }

  /** Reads config/elasticsearch.yml inside the container (absent: no settings from it). */
  async load(ctx: PluginContext, container: string): Promise<this> {
    const res = await runIn(ctx, container, ['cat', '--', `${this.confDir}/elasticsearch.yml`]);
    if (res.exitCode !== 0) return this;
    try {
      this.yml = flatten(parse(res.stdout) ?? {});
    } catch {
      ctx.log.warn({ container }, 'elasticsearch.yml is not valid YAML: its settings are ignored');
    }
    return this;
  }

  get(key: string): string | undefined {
    return this.args.get(key) ?? this.env.get(key) ?? this.yml.get(key);
  }
}

function flatten(v: unknown, prefix = '', out = new Map<string, string>()): Map<string, string> {
  if (v && typeof v === 'object' && !Array.isArray(v)) {
    for (const [k, x] of Object.entries(v)) flatten(x, prefix ? `${prefix}.${k}` : k, out);
  } else if (prefix) {
    out.set(prefix, Array.isArray(v) ? v.join(',') : String(v));
  }
  return out;
}

const isFalse = (v: string | undefined) => v !== undefined && v.trim().toLowerCase() === 'false';

/** Connects to the container's Elasticsearch (or the options' endpoint) and checks it answers. */
export async function connect(ctx: PluginContext, c: ContainerDetails, o: EsOptions, own: boolean): Promise<Es> {
  const s = await new ContainerSettings(c).load(ctx, c.name);
  // Options that describe how to reach the job's own container do not apply to another one.
  const opt = own ? o : { ...o, host: undefined, port: undefined, scheme: undefined, ca_file: undefined, password_env: undefined, password_file: undefined };
  const port = Number(/^\d+/.exec(s.get('http.port') ?? '')?.[0] ?? 9200);
  const bind = s.get('http.host') ?? s.get('network.host');
  const literal = bind && /^[0-9.]+$|^[0-9a-f:]+$/i.test(bind) && bind !== '0.0.0.0' && bind !== '::' ? bind : undefined;
  const ep = endpoint(c, { host: opt.host ?? (c.networkMode === 'host' ? literal : undefined), port: opt.port }, port, 'Elasticsearch HTTP');
  const security = !isFalse(s.get('xpack.security.enabled'));
  const scheme = opt.scheme ?? (security && !isFalse(s.get('xpack.security.http.ssl.enabled')) ? 'https' : 'http');
  let ca: string | undefined;
  if (opt.ca_file) {
    ca = await readFile(opt.ca_file, 'utf8').catch((err: NodeJS.ErrnoException) => {
      throw new SnapError(`options.ca_file: cannot read ${opt.ca_file} (${err.code})`);
    });
  } else if (scheme === 'https') {
    const res = await runIn(ctx, c.name, ['cat', '--', `${s.confDir}/certs/http_ca.crt`]);
    if (res.exitCode === 0 && res.stdout.includes('BEGIN CERTIFICATE')) ca = res.stdout;
  }
  let auth: { username: string; password: string } | undefined;
  if (security) {
    let password = await secretFromOptions(opt);
    password ??= (await containerSecret(ctx, c, ['ELASTIC_PASSWORD']))?.value;
    if (password === undefined) {
      throw new SnapError(`container ${c.name}: Elasticsearch security is on and no password is known for user "${o.user}"`, {
        hint: 'set ELASTIC_PASSWORD (or ELASTIC_PASSWORD_FILE) on the container, or options.password_env / options.password_file for the job',
      });
    }
    auth = { username: o.user, password };
  }
  const { Client } = await import('@elastic/elasticsearch');
  const make = (sch: string) =>
    new Client({
      node: `${sch}://${ep.host.includes(':') ? `[${ep.host}]` : ep.host}:${ep.port}`,
      auth,
      tls: sch === 'https' ? { ca, rejectUnauthorized: o.tls_verify } : undefined,
      maxRetries: 1,
      requestTimeout: 60_000,
    });
  let client = make(scheme);
  let url = `${scheme}://${ep.host}:${ep.port}`;
  let info;
  try {
    info = await client.info();
  } catch (err) {
    // Security on with plain-http REST (xpack.security.http.ssl.enabled: false set in a
    // way we could not read): the TLS handshake meets plain HTTP.
    if (scheme === 'https' && !opt.scheme && kind(err) === 'ConnectionError' && /wrong version number|EPROTO|packet length too long/i.test((err as Error).message)) {
      await client.close();
      client = make('http');
      url = `http://${ep.host}:${ep.port}`;
      info = await client.info().catch(async (e: unknown) => {
        await client.close();
        throw esError(e, `Elasticsearch in ${c.name} at ${url}`);
      });
    } else {
      await client.close();
      throw esError(err, `Elasticsearch in ${c.name} at ${url}`);
    }
  }
  return {
    client,
    url,
    version: info.version.number,
    clusterName: info.cluster_name,
    clusterUuid: info.cluster_uuid,
    close: () => client.close(),
  };
}

/** A client error as a SnapError that says what to fix. */
export function esError(err: unknown, what: string): SnapError {
  if (err instanceof SnapError) return err;
  if (isResponse(err)) {
    const body = err.meta.body as { error?: { type?: string; reason?: string; root_cause?: { type?: string; reason?: string }[] } } | undefined;
    const e = body?.error;
    const reason = e?.root_cause?.[0]?.reason ?? e?.reason ?? err.message.split('\n')[0];
    if (err.meta.statusCode === 401) {
      return new SnapError(`${what}: authentication failed (401): ${reason}`, { hint: 'the password is wrong: check ELASTIC_PASSWORD(_FILE) on the container, or options.user / password_env / password_file' });
    }
    if (err.meta.statusCode === 403) return new SnapError(`${what}: permission denied (403): ${reason}`, { hint: 'options.user needs the manage and snapshot privileges (the elastic user has them)' });
    return new SnapError(`${what}: ${e?.type ?? `HTTP ${err.meta.statusCode}`}: ${reason}`);
  }
  const message = err instanceof Error ? err.message : String(err);
  if (kind(err) === 'ConnectionError') {
    if (/certificate|self.signed|unable to verify/i.test(message)) {
      return new SnapError(`${what}: the TLS certificate is not trusted: ${message}`, {
        hint: "set options.ca_file to the cluster's HTTP CA (the official image's config/certs/http_ca.crt), or options.tls_verify: false",
      });
    }
    return new SnapError(`cannot reach ${what}: ${message}`, {
      hint: 'check that Elasticsearch is up in the container (docker logs), or set options.host / options.port / options.scheme',
    });
  }
  if (kind(err) === 'TimeoutError') return new SnapError(`${what}: no answer in time (${message})`, { hint: 'check the cluster (docker logs), or raise options.timeout_seconds' });
  if (kind(err) === 'RequestAbortedError') return new SnapError(`${what}: cancelled`);
  return new SnapError(`${what}: ${message}`);
}

/** The error type of an Elasticsearch error response, if it is one. */
export function esErrorType(err: unknown): { status: number; type?: string; reason?: string } | undefined {
  if (!isResponse(err)) return undefined;
  const e = (err.meta.body as { error?: { type?: string; reason?: string } } | undefined)?.error;
  return { status: err.meta.statusCode ?? 0, type: e?.type, reason: e?.reason };
}

/** The client's error class name (ConnectionError, ResponseError, TimeoutError...). */
function kind(err: unknown): string | undefined {
  return err instanceof Error ? err.name : undefined;
}

interface ResponseLike extends Error {
  meta: { statusCode?: number; body?: unknown };
}

function isResponse(err: unknown): err is ResponseLike {
  return kind(err) === 'ResponseError' && typeof (err as ResponseLike).meta === 'object';
}
