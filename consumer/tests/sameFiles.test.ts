// shared/ holds types only, so each service carries its own copy of these runtime files. The
// topology copies in particular must not drift: differing queue arguments make the broker close
// the channel with PRECONDITION_FAILED.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const root = join(import.meta.dirname, '../..');

for (const file of ['topology.ts', 'logger.ts', 'metrics.ts', 'timestamp.ts', 'env.ts']) {
  test(`api/src/${file} and consumer/src/${file} are byte-identical`, () => {
    const api = readFileSync(join(root, 'api/src', file));
    const consumer = readFileSync(join(root, 'consumer/src', file));
    assert.ok(api.equals(consumer), `consumer/src/${file} differs from api/src/${file}; copy one over the other`);
  });
}
