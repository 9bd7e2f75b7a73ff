import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Counter } from '../src/metrics.ts';

describe('Counter', () => {
  test('renders labels in the Prometheus text format, escaping backslash, quote and newline', () => {
    const counter = new Counter('requests_total', 'Requests.');
    counter.inc({ route: '/api/v1/activities', status: '202' });
    counter.inc({ route: '/api/v1/activities', status: '202' });
    counter.inc({ route: 'a\\b"c\nd' });
    counter.inc();
    assert.deepEqual(counter.render(), [
      '# HELP requests_total Requests.',
      '# TYPE requests_total counter',
      'requests_total{route="/api/v1/activities",status="202"} 2',
      'requests_total{route="a\\\\b\\"c\\nd"} 1',
      'requests_total 1',
    ]);
    assert.equal(counter.get({ route: 'a\\b"c\nd' }), 1);
  });
});
