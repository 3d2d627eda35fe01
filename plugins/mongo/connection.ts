// Zero-configuration access to a container that follows the official mongo image's
// conventions: the root user from MONGO_INITDB_ROOT_USERNAME/_PASSWORD (or *_FILE),
// the port from mongod's --port argument (default 27017), reached on the host network
// or through the published port. The tools inside the container get the connection
// string (password included) in a 0600 --config file, never on their command line.
import type { MongoClient, MongoServerError } from 'mongodb';
import { argValue, type ContainerDetails, containerSecret, endpoint, type Endpoint, type PluginContext, secretFromOptions, SnapError, writePrivateFile } from '../../agent/plugin/index.ts';
import type { MongoOptions } from './options.ts';
import { TOOL } from './scripts.ts';

export interface Credentials {
  user: string;
  password: string;
  authSource: string;
}

/** undefined: the server runs without authentication (no root user configured). */
export async function credentials(ctx: PluginContext, c: ContainerDetails, o: MongoOptions): Promise<Credentials | undefined> {
  const password = await secretFromOptions(o);
  const user = o.user ?? (await containerSecret(ctx, c, ['MONGO_INITDB_ROOT_USERNAME'], false))?.value;
  if (password !== undefined) {
    if (!user) throw new SnapError(`job options give a password but no user, and container ${c.name} has no MONGO_INITDB_ROOT_USERNAME`, { hint: 'set options.user' });
    return { user, password, authSource: o.auth_source };
  }
  if (!user) return undefined;
  const found = await containerSecret(ctx, c, ['MONGO_INITDB_ROOT_PASSWORD']);
  if (!found) {
    throw new SnapError(`container ${c.name}: MONGO_INITDB_ROOT_USERNAME is set but no MONGO_INITDB_ROOT_PASSWORD(_FILE)`, {
      hint: 'set options.password_env (a variable of the agent) or options.password_file for the job',
    });
  }
  return { user, password: found.value, authSource: o.auth_source };
}

/** mongod's port inside the container. */
export function serverPort(c: ContainerDetails): number {
  return Number(argValue(c, ['--port']) ?? 27017);
}

export function agentEndpoint(c: ContainerDetails, o: MongoOptions): Endpoint {
  return endpoint(c, o, serverPort(c), 'MongoDB');
}

/** The connection string for the tools inside the container (loopback, mongod's port). */
export function toolUri(c: ContainerDetails, cred: Credentials | undefined): string {
  const auth = cred ? `${encodeURIComponent(cred.user)}:${encodeURIComponent(cred.password)}@` : '';
  const query = cred ? `?authSource=${encodeURIComponent(cred.authSource)}` : '';
  return `mongodb://${auth}127.0.0.1:${serverPort(c)}/${query}`;
}

/** A mongo-tools --config file (YAML; JSON strings are YAML). */
export function toolConfig(c: ContainerDetails, cred: Credentials | undefined): string {
  return `uri: ${JSON.stringify(toolUri(c, cred))}\n`;
}

/** A connected driver client; a clear error for a wrong password or no server. */
export async function connect(ep: Endpoint, cred: Credentials | undefined): Promise<MongoClient> {
  const { MongoClient } = await import('mongodb'); // the driver loads with the first mongo job
  const client = new MongoClient(`mongodb://${ep.host}:${ep.port}/`, {
    directConnection: true,
    serverSelectionTimeoutMS: 10_000,
    connectTimeoutMS: 10_000,
    ...(cred ? { auth: { username: cred.user, password: cred.password }, authSource: cred.authSource } : {}),
  });
  try {
    await client.connect();
    // Authentication is only proven by a command that needs it.
    await client.db('admin').command({ listDatabases: 1, nameOnly: true });
    return client;
  } catch (err) {
    await client.close().catch(() => undefined);
    const e = err as MongoServerError;
    const who = cred ? ` as ${cred.user}` : '';
    if (e.code === 18 || /auth/i.test(e.message)) {
      throw new SnapError(`cannot authenticate to MongoDB at ${ep.host}:${ep.port}${who}: ${e.message}`, {
        hint: "the password is wrong: check the container's MONGO_INITDB_ROOT_PASSWORD(_FILE) or the job's password_env/password_file",
      });
    }
    if (e.code === 13) {
      throw new SnapError(`MongoDB at ${ep.host}:${ep.port} requires authentication`, { hint: 'set options.user and options.password_env (or password_file)' });
    }
    throw new SnapError(`cannot connect to MongoDB at ${ep.host}:${ep.port}${who}: ${e.message}`, { hint: `check that the server listens on ${ep.host}:${ep.port} (or set options.host/port)` });
  }
}

export async function withClient<T>(ep: Parameters<typeof connect>[0], cred: Credentials | undefined, fn: (client: MongoClient) => Promise<T>): Promise<T> {
  const client = await connect(ep, cred);
  try {
    return await fn(client);
  } finally {
    await client.close();
  }
}

// Starts mongodump or mongorestore in the container, its settings (and the password) in
// a private config file it removes on exit.
export async function startTool(ctx: PluginContext, c: ContainerDetails, cred: Credentials | undefined, tool: 'mongodump' | 'mongorestore', args: string[]) {
  const cfg = await writePrivateFile(ctx, c.name, toolConfig(c, cred), '.yaml');
  const restore = tool === 'mongorestore';
  return ctx.docker.exec(c.name, { cmd: ['sh', '-c', TOOL, 'snapagent', cfg, tool, ...args], stdin: restore, bulk: restore ? 'stdin' : 'stdout' });
}
