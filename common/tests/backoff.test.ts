import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { backoffDelay } from '../src/backoff.ts';

const options = { baseMs: 100, maxMs: 5_000 };

describe('backoffDelay', () => {
  test('doubles the ceiling per attempt and never exceeds the cap', () => {
    const top = [1, 2, 3, 4, 5, 6, 7, 50, 5_000].map((attempt) => backoffDelay(attempt, options, () => 1));
    assert.deepEqual(top, [100, 200, 400, 800, 1_600, 3_200, 5_000, 5_000, 5_000]);
  });

  test('draws from the upper half of the ceiling, so jitter never collapses a wait to zero', () => {
    assert.equal(backoffDelay(3, options, () => 0), 200);
    assert.equal(backoffDelay(3, options, () => 0.5), 300);
    for (let i = 0; i < 100; i++) {
      const delay = backoffDelay(4, options);
      assert.ok(delay >= 400 && delay <= 800, `${delay} within [400, 800]`);
    }
  });
});
