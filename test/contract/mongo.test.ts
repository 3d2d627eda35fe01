// The mongo plugin runs the plugin contract suite (test/contract/plugin-suite.ts)
// against a real MongoDB-wire server (FerretDB, mongodump/mongorestore in the container):
// mixed BSON types, secondary and unique indexes, a small seed. --force over live
// collections, one collection renamed, --to-container, a wrong password and mongodump
// killed: test/e2e/mongo.test.ts.
import { mongoFingerprint } from '../helpers/fingerprints.ts';
import { MONGO_IMAGE, shopEvent, startMongo, type Mongo } from '../helpers/mongo.ts';
import { runPluginSuite } from './plugin-suite.ts';

const SECRET = 'M0ngo-s3cret/with:@chars"ü';
const NS = ['shop.events', 'shop.users', 'blog.posts'];
let m: Mongo;

const coll = (ns: string) => m.client.db(ns.split('.')[0]!).collection(ns.split('.')[1]!);

runPluginSuite({
  name: 'mongo',
  images: [MONGO_IMAGE],
  start: async () => void (m = await startMongo('root', SECRET)),
  job: () => ({ container: m.name }),
  container: () => m.name,
  seed: async () => {
    await coll('shop.events').insertMany(Array.from({ length: 300 }, (_, n) => shopEvent(n)));
    await coll('shop.events').createIndex({ at: 1 }, { name: 'by_at' });
    await coll('shop.events').createIndex({ tags: 1, n: -1 }, { name: 'by_tags_n' });
    await coll('shop.users').insertMany(Array.from({ length: 50 }, (_, i) => ({ email: `user${i}@example.com`, name: `User ${i}`, joined: new Date(Date.UTC(2020, 0, 1 + i)) })));
    await coll('shop.users').createIndex({ email: 1 }, { name: 'email_unique', unique: true });
    await coll('blog.posts').insertMany(Array.from({ length: 20 }, (_, i) => ({ title: `Post ${i}`, body: 'lorem '.repeat(i), votes: i % 13 })));
    return { 'shop.events': 300, 'shop.users': 50, 'blog.posts': 20 };
  },
  manifestCounts: (m) => Object.fromEntries(NS.map((ns) => [ns, m.stats.databases[ns.split('.')[0]!][ns.split('.')[1]!].documents])),
  liveCounts: async () => Object.fromEntries(await Promise.all(NS.map(async (ns) => [ns, await coll(ns).countDocuments({})]))),
  // counts, indexes and every document; a dropped collection: what the server says
  fingerprint: () => mongoFingerprint(m.client, NS, { withoutIds: ['shop.users', 'blog.posts'] }).catch((err: Error) => `missing: ${err.message}`),
  drop: async () => {
    await m.client.db('shop').dropDatabase();
    await m.client.db('blog').dropDatabase();
  },
  inUse: {
    make: async () => void (await coll('shop.users').insertOne({ email: 'new@example.com', name: 'not in the backup' })),
    undo: async () => void (await m.client.db('shop').dropDatabase()),
    refused: /would overwrite 1 collection\(s\) holding documents: shop\.users/,
  },
  replaceFlags: ['--force'],
  secrets: { 'root password': SECRET },
  stop: async () => m?.remove(),
});
