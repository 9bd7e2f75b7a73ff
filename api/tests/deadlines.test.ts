import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Deadlines } from '../src/deadlines.ts';

describe('Deadlines', () => {
  test('expires each deadline once its length has passed since it was set, in the order they were set', (t) => {
    t.mock.timers.enable({ apis: ['setTimeout', 'Date'] });
    const deadlines = new Deadlines(100, () => Date.now());
    const expired: string[] = [];
    deadlines.start(() => expired.push('first'));
    t.mock.timers.tick(40);
    deadlines.start(() => expired.push('second'));
    t.mock.timers.tick(59);
    assert.deepEqual(expired, []);
    t.mock.timers.tick(1);
    assert.deepEqual(expired, ['first']);
    t.mock.timers.tick(39);
    assert.deepEqual(expired, ['first']);
    t.mock.timers.tick(1);
    assert.deepEqual(expired, ['first', 'second']);
  });

  test('never expires a cancelled deadline, and still expires the others on time', (t) => {
    t.mock.timers.enable({ apis: ['setTimeout', 'Date'] });
    const deadlines = new Deadlines(100, () => Date.now());
    const expired: string[] = [];
    const first = deadlines.start(() => expired.push('first'));
    t.mock.timers.tick(10);
    deadlines.start(() => expired.push('second'));
    deadlines.cancel(first);
    t.mock.timers.tick(100);
    assert.deepEqual(expired, ['second']);
  });

  test('cancelling the middle, the newest or an expired deadline, or one twice, leaves the rest due in order', (t) => {
    t.mock.timers.enable({ apis: ['setTimeout', 'Date'] });
    const deadlines = new Deadlines(100, () => Date.now());
    const expired: string[] = [];
    const set = (name: string) => deadlines.start(() => expired.push(name));
    const first = set('first');
    const middle = set('middle');
    set('third');
    const newest = set('newest');
    deadlines.cancel(middle);
    deadlines.cancel(middle);
    deadlines.cancel(newest);
    t.mock.timers.tick(100);
    assert.deepEqual(expired, ['first', 'third']);
    deadlines.cancel(first);
    set('after');
    t.mock.timers.tick(100);
    assert.deepEqual(expired, ['first', 'third', 'after']);
  });

  test('starts afresh once every pending deadline was cancelled', (t) => {
    t.mock.timers.enable({ apis: ['setTimeout', 'Date'] });
    const deadlines = new Deadlines(100, () => Date.now());
    const expired: string[] = [];
    deadlines.cancel(deadlines.start(() => expired.push('cancelled')));
    t.mock.timers.tick(50);
    deadlines.start(() => expired.push('later'));
    t.mock.timers.tick(99);
    assert.deepEqual(expired, []);
    t.mock.timers.tick(1);
    assert.deepEqual(expired, ['later']);
  });

  test('a deadline set while others expire is timed from when it was set', (t) => {
    t.mock.timers.enable({ apis: ['setTimeout', 'Date'] });
    const deadlines = new Deadlines(100, () => Date.now());
    const expired: string[] = [];
    deadlines.start(() => {
      expired.push('first');
      deadlines.start(() => expired.push('retry'));
    });
    t.mock.timers.tick(100);
    t.mock.timers.tick(99);
    assert.deepEqual(expired, ['first']);
    t.mock.timers.tick(1);
    assert.deepEqual(expired, ['first', 'retry']);
  });

  test('arms the one timer once for many operations that end in time, not once each', (t) => {
    t.mock.timers.enable({ apis: ['setTimeout', 'Date'] });
    const armed = t.mock.method(globalThis, 'setTimeout');
    const deadlines = new Deadlines(100, () => Date.now());
    const expired: string[] = [];
    for (let i = 0; i < 1_000; i++) deadlines.cancel(deadlines.start(() => expired.push('cancelled')));
    assert.equal(armed.mock.callCount(), 1);
    t.mock.timers.tick(100);
    // It fired, found nothing due, and is not armed again until a deadline is set.
    assert.equal(armed.mock.callCount(), 1);
    deadlines.start(() => expired.push('later'));
    assert.equal(armed.mock.callCount(), 2);
    t.mock.timers.tick(100);
    assert.deepEqual(expired, ['later']);
  });
});
