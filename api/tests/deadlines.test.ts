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
});
