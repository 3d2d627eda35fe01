// The process-wide job limit: at most `limit` jobs at once, first come first served, and
// jobs that stop containers never beside each other.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { JobSlots, type Release } from '../../agent/runtime/job-slots.ts';

describe('job slots', () => {
  it('lets in at most `limit` jobs, in arrival order', async () => {
    const slots = new JobSlots(2);
    const order: string[] = [];
    const releases = new Map<string, Release>();
    const take = (name: string, stop = false) => slots.acquire(stop).then((r) => (order.push(name), releases.set(name, r)));
    const all = [take('a'), take('b'), take('c'), take('d')];
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(order, ['a', 'b']);
    releases.get('b')!();
    releases.get('b')!(); // twice is harmless
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(order, ['a', 'b', 'c']);
    releases.get('a')!();
    await Promise.all(all);
    assert.deepEqual(order, ['a', 'b', 'c', 'd']);
  });

  it('never runs two stopping jobs together; later jobs wait their turn', async () => {
    const slots = new JobSlots(3);
    const order: string[] = [];
    const releases = new Map<string, Release>();
    const take = (name: string, stop: boolean) => slots.acquire(stop).then((r) => (order.push(name), releases.set(name, r)));
    void take('s1', true);
    void take('s2', true);
    void take('n1', false);
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(order, ['s1'], 's2 waits for s1, n1 waits behind s2');
    releases.get('s1')!();
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(order, ['s1', 's2', 'n1']);
  });
});
