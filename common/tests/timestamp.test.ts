import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { timestampProblem } from '../src/timestamp.ts';

describe('timestampProblem', () => {
  for (const valid of [
    '2023-10-27T10:00:00Z',
    '2023-10-27T10:00:00.123Z',
    '2023-10-27T10:00:00.123456789+05:30',
    '2023-10-27t10:00:00z',
    '2023-10-27T23:59:59-12:00',
    '2024-02-29T00:00:00Z',
    '2000-02-29T00:00:00Z',
    '2023-04-30T00:00:00+00:00',
  ]) {
    test(`accepts ${valid}`, () => assert.equal(timestampProblem(valid), undefined));
  }

  const invalid: Array<[string, string]> = [
    ['2023-10-27T10:00:00', 'must be an RFC 3339 date-time with a time zone, e.g. 2023-10-27T10:00:00Z'],
    ['2023-10-27', 'must be an RFC 3339 date-time with a time zone, e.g. 2023-10-27T10:00:00Z'],
    ['2023-10-27 10:00:00Z', 'must be an RFC 3339 date-time with a time zone, e.g. 2023-10-27T10:00:00Z'],
    ['2023-10-27T10:00Z', 'must be an RFC 3339 date-time with a time zone, e.g. 2023-10-27T10:00:00Z'],
    ['2023-10-27T10:00:00+0530', 'must be an RFC 3339 date-time with a time zone, e.g. 2023-10-27T10:00:00Z'],
    ['2023-10-27T10:00:00.Z', 'must be an RFC 3339 date-time with a time zone, e.g. 2023-10-27T10:00:00Z'],
    [' 2023-10-27T10:00:00Z', 'must be an RFC 3339 date-time with a time zone, e.g. 2023-10-27T10:00:00Z'],
    ['1698400800', 'must be an RFC 3339 date-time with a time zone, e.g. 2023-10-27T10:00:00Z'],
    ['2023-02-30T10:00:00Z', 'has no such day in that month'],
    ['2023-02-29T10:00:00Z', 'has no such day in that month'],
    ['1900-02-29T10:00:00Z', 'has no such day in that month'],
    ['2023-04-31T10:00:00Z', 'has no such day in that month'],
    ['2023-01-00T10:00:00Z', 'has no such day in that month'],
    ['2023-13-01T10:00:00Z', 'has no such month'],
    ['2023-00-01T10:00:00Z', 'has no such month'],
    ['2023-10-27T24:00:00Z', 'has no such time of day (hours 00-23, minutes and seconds 00-59)'],
    ['2023-10-27T10:60:00Z', 'has no such time of day (hours 00-23, minutes and seconds 00-59)'],
    ['2016-12-31T23:59:60Z', 'has no such time of day (hours 00-23, minutes and seconds 00-59)'],
    ['2023-10-27T10:00:00+24:00', 'has an invalid time-zone offset'],
    ['2023-10-27T10:00:00+05:60', 'has an invalid time-zone offset'],
  ];
  for (const [text, problem] of invalid) {
    test(`rejects ${JSON.stringify(text)}: ${problem}`, () => assert.equal(timestampProblem(text), problem));
  }
});
