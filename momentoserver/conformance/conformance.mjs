// Drives the Momento Node.js SDK (@gomomento/sdk, pinned in package.json)
// against momentoserver, and checks what the SDK's user sees.
//
// The Go test TestNodeSDKConformance starts two servers and runs this script
// with:
//
//   MOMENTO_ENDPOINT        host:port of a server that demands tokens
//   MOMENTO_ADMIN_TOKEN     SDK-form token granting everything (id "admin")
//   MOMENTO_ADA_TOKEN       SDK-form token granting publish-subscribe on the
//                           topics "open/..." of cache "conformance" (id "ada")
//   MOMENTO_SLOW_CACHE      a cache whose topics keep only 16 items
//   MOMENTO_LOCAL_ENDPOINT  host:port of a server in local mode
//
// It prints one line per check and a closing "N passed, N failed" line, and
// exits 1 if a check failed.

import {
  CacheClient,
  Configurations,
  CreateCache,
  CredentialProvider,
  DefaultMomentoLoggerFactory,
  DefaultMomentoLoggerLevel,
  DeleteCache,
  ListCaches,
  MomentoErrorCode,
  TopicClient,
  TopicConfigurations,
  TopicPublish,
  TopicSubscribe,
} from '@gomomento/sdk';
import {Worker, isMainThread, workerData} from 'node:worker_threads';
import assert from 'node:assert/strict';

const level = process.env.MOMENTO_LOG_LEVEL === 'debug' ? DefaultMomentoLoggerLevel.DEBUG : DefaultMomentoLoggerLevel.ERROR;
const loggerFactory = new DefaultMomentoLoggerFactory(level);

// provider returns the SDK's credential provider for a token in SDK form,
// with every endpoint overridden to the server's plaintext address; or,
// without a token, the local provider.
function provider(endpoint, token) {
  if (token === undefined) {
    const [hostname, port] = endpoint.split(':');
    return CredentialProvider.forMomentoLocal({hostname, port: Number(port)});
  }
  return CredentialProvider.fromDisposableToken({
    authToken: token,
    endpointOverrides: {
      cacheEndpoint: endpoint,
      controlEndpoint: endpoint,
      tokenEndpoint: endpoint,
      secureConnection: false,
    },
  });
}

function clients(endpoint, token) {
  const credentialProvider = provider(endpoint, token);
  return {
    cache: new CacheClient({
      configuration: Configurations.Laptop.v1(loggerFactory),
      credentialProvider,
      defaultTtlSeconds: 60,
    }),
    topic: new TopicClient({
      configuration: TopicConfigurations.Default.latest(loggerFactory),
      credentialProvider,
    }),
  };
}

// The slow-subscriber check publishes from a worker thread while the main
// thread, stalled, reads nothing.
if (!isMainThread) {
  const {endpoint, token, cache, topic, from, to, size, done} = workerData;
  const {topic: client} = clients(endpoint, token);
  const payload = new Uint8Array(size);
  for (let seq = from; seq <= to; seq++) {
    payload[0] = seq & 0xff;
    const resp = await client.publish(cache, topic, payload);
    if (!(resp instanceof TopicPublish.Success)) {
      throw new Error(`worker publish ${seq}: ${resp}`);
    }
  }
  const flag = new Int32Array(done);
  Atomics.store(flag, 0, 1);
  Atomics.notify(flag, 0);
  process.exit(0);
}

const env = name => {
  const v = process.env[name];
  if (!v) {
    console.error(`conformance: ${name} is not set`);
    process.exit(2);
  }
  return v;
};
const endpoint = env('MOMENTO_ENDPOINT');
const adminToken = env('MOMENTO_ADMIN_TOKEN');
const adaToken = env('MOMENTO_ADA_TOKEN');
const slowCache = env('MOMENTO_SLOW_CACHE');
const localEndpoint = env('MOMENTO_LOCAL_ENDPOINT');

const admin = clients(endpoint, adminToken);
const ada = clients(endpoint, adaToken);
const CACHE = 'conformance';

// A Collector records what one subscription delivers, in order.
class Collector {
  constructor() {
    this.events = []; // {kind: 'item', seq, value, tokenId, page} or {kind: 'gap', last, new, page}
    this.heartbeats = 0;
    this.connectionsLost = 0;
    this.errors = [];
    this.sub = undefined;
    this.waiters = [];
  }
  items() {
    return this.events.filter(e => e.kind === 'item');
  }
  gaps() {
    return this.events.filter(e => e.kind === 'gap');
  }
  changed() {
    for (const w of this.waiters.splice(0)) w();
  }
  // until resolves once pred() holds, checking after every event.
  async until(what, pred, ms = 30000) {
    const deadline = Date.now() + ms;
    while (!pred()) {
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new Error(`timed out waiting for ${what}; got ${this.items().length} items, ${this.gaps().length} discontinuities, errors ${this.errors}`);
      }
      await new Promise(resolve => {
        const t = setTimeout(resolve, Math.min(left, 200));
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }
}

// subscribe subscribes and records into a new Collector; onItem, if given,
// runs for each item after it is recorded.
async function subscribe(client, cache, topic, onItem) {
  const c = new Collector();
  const resp = await client.subscribe(cache, topic, {
    onItem: item => {
      // The SDK keeps the page it resumes with in the subscription's state.
      const page = c.sub?.subscriptionState?.lastTopicSequencePage;
      c.events.push({kind: 'item', seq: item.sequenceNumber(), value: item.value(), tokenId: item.tokenId(), page});
      onItem?.(item, c);
      c.changed();
    },
    onDiscontinuity: d => {
      c.events.push({kind: 'gap', last: d.lastSequenceNumber(), new: d.newSequenceNumber(), page: d.newSequencePage()});
      c.changed();
    },
    onHeartbeat: () => {
      c.heartbeats++;
      c.changed();
    },
    onConnectionLost: () => {
      c.connectionsLost++;
    },
    onError: err => {
      c.errors.push(err);
      c.changed();
    },
  });
  if (!(resp instanceof TopicSubscribe.Subscription)) {
    throw new Error(`subscribe ${cache}/${topic}: ${resp}`);
  }
  c.sub = resp;
  return c;
}

async function publish(client, cache, topic, value) {
  const resp = await client.publish(cache, topic, value);
  assert.ok(resp instanceof TopicPublish.Success, `publish to ${cache}/${topic}: ${resp}`);
}

// want checks that resp is an instance of cls, saying what it is if not.
function want(resp, cls, what) {
  assert.ok(resp instanceof cls, `${what}: ${resp}`);
}

function errorCode(resp) {
  return typeof resp.errorCode === 'function' ? resp.errorCode() : `not an error: ${resp}`;
}

const checks = [];
const check = (name, fn) => checks.push({name, fn});

check('control: create, list and delete caches; ALREADY_EXISTS, NOT_FOUND, PERMISSION_DENIED', async () => {
  want(await admin.cache.createCache(CACHE), CreateCache.Success, 'create');
  want(await admin.cache.createCache(CACHE), CreateCache.AlreadyExists, 'create twice');
  want(await admin.cache.createCache('scratch'), CreateCache.Success, 'create scratch');
  let list = await admin.cache.listCaches();
  assert.ok(list instanceof ListCaches.Success, `list: ${list}`);
  assert.deepEqual(list.getCaches().map(c => c.getName()).sort(), [CACHE, 'scratch', slowCache].sort());
  want(await admin.cache.deleteCache('scratch'), DeleteCache.Success, 'delete');
  list = await admin.cache.listCaches();
  assert.deepEqual(list.getCaches().map(c => c.getName()).sort(), [CACHE, slowCache].sort());
  assert.equal(errorCode(await admin.cache.deleteCache('scratch')), MomentoErrorCode.CACHE_NOT_FOUND_ERROR);
  assert.equal(errorCode(await admin.cache.createCache('not a name!')), MomentoErrorCode.INVALID_ARGUMENT_ERROR);
  // A token that is not an administrator's lists the caches it names, and
  // may not create or delete any.
  list = await ada.cache.listCaches();
  assert.deepEqual(list.getCaches().map(c => c.getName()), [CACHE]);
  assert.equal(errorCode(await ada.cache.createCache('mine')), MomentoErrorCode.PERMISSION_ERROR);
  assert.equal(errorCode(await ada.cache.deleteCache(CACHE)), MomentoErrorCode.PERMISSION_ERROR);
});

check('pub/sub: text and binary kept apart, numbered from 1 on one page, publisher_id is the token ID', async () => {
  const c = await subscribe(ada.topic, CACHE, 'open/basic');
  const sent = ['hello', new Uint8Array([0, 1, 2, 255]), 'wörld', new Uint8Array([])];
  for (const v of sent) await publish(ada.topic, CACHE, 'open/basic', v);
  await publish(admin.topic, CACHE, 'open/basic', 'from admin');
  await c.until('5 items', () => c.items().length === 5);
  c.sub.unsubscribe();
  const items = c.items();
  items.slice(0, 4).forEach((it, i) => {
    assert.equal(it.seq, i + 1, 'sequence numbers from 1');
    assert.equal(it.tokenId, 'ada', 'publisher_id');
    if (typeof sent[i] === 'string') {
      assert.equal(typeof it.value, 'string', `item ${i + 1} is text`);
      assert.equal(it.value, sent[i]);
    } else {
      assert.ok(it.value instanceof Uint8Array, `item ${i + 1} is binary`);
      assert.deepEqual(Array.from(it.value), Array.from(sent[i]));
    }
  });
  assert.equal(items[4].seq, 5);
  assert.equal(items[4].tokenId, 'admin');
  const page = items[0].page;
  assert.ok(Number.isSafeInteger(page) && page > 0, `page ${page} is a safe integer`);
  for (const it of items) assert.equal(it.page, page, 'one page');
  assert.equal(c.gaps().length, 0);
});

check('a publish or subscribe outside the token grant is refused with PERMISSION_ERROR', async () => {
  assert.equal(errorCode(await ada.topic.publish(CACHE, 'closed/x', 'no')), MomentoErrorCode.PERMISSION_ERROR);
  assert.equal(errorCode(await ada.topic.publish(slowCache, 'open/x', 'no')), MomentoErrorCode.PERMISSION_ERROR);
  assert.equal(errorCode(await ada.topic.subscribe(CACHE, 'closed/x', {})), MomentoErrorCode.PERMISSION_ERROR);
});

check('a slow subscriber gets discontinuities whose numbers account for every item', async () => {
  const N = 600;
  const done = new SharedArrayBuffer(4);
  let stalled = false;
  const c = await subscribe(admin.topic, slowCache, 't', (item) => {
    if (stalled) return;
    stalled = true;
    // Stall this thread, reading nothing, while a worker publishes the
    // rest: the server's send window fills, and the topic, which keeps 16
    // items, moves on without this subscriber.
    new Worker(new URL(import.meta.url), {
      workerData: {endpoint, token: adminToken, cache: slowCache, topic: 't', from: item.sequenceNumber() + 1, to: N, size: 32 * 1024, done},
    });
    const r = Atomics.wait(new Int32Array(done), 0, 0, 60000);
    if (r === 'timed-out') throw new Error('the publishing worker did not finish');
  });
  await publish(admin.topic, slowCache, 't', new Uint8Array(32 * 1024));
  await c.until(`item ${N}`, () => c.items().some(it => it.seq === N), 60000);
  c.sub.unsubscribe();
  let prev = 0;
  let expect = 1;
  let lost = 0;
  for (const e of c.events) {
    if (e.kind === 'gap') {
      assert.equal(e.last, prev, `discontinuity ${JSON.stringify(e)} starts at the last item received, ${prev}`);
      assert.ok(e.new > e.last, `discontinuity ${JSON.stringify(e)} skips something`);
      lost += e.new - e.last;
      expect = e.new + 1;
    } else {
      assert.equal(e.seq, expect, `item after ${prev}`);
      prev = e.seq;
      expect = prev + 1;
    }
  }
  assert.ok(c.gaps().length >= 1, 'at least one discontinuity');
  assert.equal(c.items().length + lost, N, `received ${c.items().length} + lost ${lost} = published ${N}`);
  console.log(`#   received ${c.items().length}, lost ${lost} in ${c.gaps().length} discontinuities, reconnects ${c.connectionsLost}`);
});

check('a reconnect (the first stream ends at the SDK 5 s deadline) resumes without duplicates or loss', async () => {
  const c = await subscribe(ada.topic, CACHE, 'open/resume');
  const N = 65;
  for (let i = 1; i <= N; i++) {
    await publish(ada.topic, CACHE, 'open/resume', `m${i}`);
    await new Promise(r => setTimeout(r, 100));
  }
  await c.until(`${N} items`, () => c.items().length >= N);
  assert.deepEqual(c.items().map(it => it.seq), Array.from({length: N}, (_, i) => i + 1));
  assert.deepEqual(c.items().map(it => it.value), Array.from({length: N}, (_, i) => `m${i + 1}`));
  assert.equal(c.gaps().length, 0, 'no discontinuity');
  assert.ok(c.connectionsLost >= 1, 'the stream was reconnected');
  // Every stream starts with a heartbeat, and a quiet one gets one every
  // second (the server's -heartbeat in this test).
  assert.ok(c.heartbeats >= 1 + c.connectionsLost, `heartbeats: ${c.heartbeats}`);
  const before = c.heartbeats;
  await c.until('two heartbeats on a quiet stream', () => c.heartbeats >= before + 2, 5000);
  c.sub.unsubscribe();
  console.log(`#   reconnects ${c.connectionsLost}, heartbeats ${c.heartbeats}`);
});

check('1,000 messages to 10 subscribers arrive complete and in order', async () => {
  const subs = [];
  for (let i = 0; i < 10; i++) subs.push(await subscribe(ada.topic, CACHE, 'open/fanout'));
  const N = 1000;
  for (let i = 1; i <= N; i++) await publish(ada.topic, CACHE, 'open/fanout', `m${i}`);
  for (const c of subs) {
    await c.until(`${N} items`, () => c.items().length >= N, 60000);
    c.sub.unsubscribe();
    const items = c.items();
    assert.equal(items.length, N);
    items.forEach((it, i) => {
      assert.equal(it.seq, i + 1);
      assert.equal(it.value, `m${i + 1}`);
    });
    assert.equal(c.gaps().length, 0);
  }
});

check('a subscription to a deleted cache ends with NOT_FOUND; to a missing one, fails with it', async () => {
  want(await admin.cache.createCache('doomed'), CreateCache.Success, 'CreateCache.Success');
  const c = await subscribe(admin.topic, 'doomed', 't');
  await publish(admin.topic, 'doomed', 't', 'last words');
  await c.until('the item', () => c.items().length === 1);
  want(await admin.cache.deleteCache('doomed'), DeleteCache.Success, 'DeleteCache.Success');
  await c.until('an error', () => c.errors.length > 0, 10000);
  assert.equal(c.errors[0].errorCode(), MomentoErrorCode.CACHE_NOT_FOUND_ERROR);
  assert.equal(c.sub.isSubscribed, false, 'the SDK does not resubscribe');
  assert.equal(errorCode(await admin.topic.subscribe('doomed', 't', {})), MomentoErrorCode.CACHE_NOT_FOUND_ERROR);
});

check('local mode: CredentialProvider.forMomentoLocal, no token, every right', async () => {
  const local = clients(localEndpoint);
  want(await local.cache.createCache('local'), CreateCache.Success, 'CreateCache.Success');
  const c = await subscribe(local.topic, 'local', 't');
  await publish(local.topic, 'local', 't', 'hi');
  await c.until('the item', () => c.items().length === 1);
  c.sub.unsubscribe();
  assert.equal(c.items()[0].seq, 1);
  assert.ok(!c.items()[0].tokenId, 'no publisher_id');
});

let passed = 0;
let failed = 0;
for (const [i, {name, fn}] of checks.entries()) {
  const start = Date.now();
  try {
    await fn();
    passed++;
    console.log(`ok ${i + 1} - ${name} (${Date.now() - start} ms)`);
  } catch (err) {
    failed++;
    console.log(`not ok ${i + 1} - ${name}`);
    console.log(String(err?.stack ?? err).replace(/^/gm, '#   '));
  }
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
