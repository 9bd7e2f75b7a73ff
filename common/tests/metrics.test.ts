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

  test('a bound label set counts into the same series as inc with those labels, and shows only once counted', () => {
    const counter = new Counter('requests_total', 'Requests.');
    const accepted = counter.labels({ route: '/api/v1/activities', status: '202' });
    counter.labels({ route: '/never', status: '500' });
    accepted.inc();
    counter.inc({ route: '/api/v1/activities', status: '202' });
    accepted.inc(3);
    assert.equal(counter.get({ route: '/api/v1/activities', status: '202' }), 5);
    assert.deepEqual(counter.render().slice(2), ['requests_total{route="/api/v1/activities",status="202"} 5']);
  });
});
