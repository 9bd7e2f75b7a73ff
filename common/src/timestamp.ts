// RFC 3339 date-time check (the ISO 8601 profile with a mandatory zone). `new Date()` alone is
// not enough: it rolls 2023-02-30 over to March and accepts strings without a zone.

const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.\d{1,9})?(?:[Zz]|[+-](\d{2}):(\d{2}))$/;

/** Days in each month of a common year; February gains one in a leap year. */
const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

function daysInMonth(year: number, month: number): number {
  const leap = month === 2 && year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  return DAYS_IN_MONTH[month - 1]! + (leap ? 1 : 0);
}

/**
 * Why `text` is not an RFC 3339 instant, or `undefined` when it is. Leap seconds (:60) are refused:
 * JavaScript dates cannot hold them, so the consumer could not store the event.
 */
export function timestampProblem(text: string): string | undefined {
  const match = RFC3339.exec(text);
  if (match === null) return 'must be an RFC 3339 date-time with a time zone, e.g. 2023-10-27T10:00:00Z';
  // Every event is checked here: plain reads of the groups, no array or closure per call.
  const year = Number(match[1]);
  const month = Number(match[2]);
  const day = Number(match[3]);
  if (month < 1 || month > 12) return 'has no such month';
  if (day < 1 || day > daysInMonth(year, month)) return 'has no such day in that month';
  if (Number(match[4]) > 23 || Number(match[5]) > 59 || Number(match[6]) > 59) return 'has no such time of day (hours 00-23, minutes and seconds 00-59)';
  if (Number(match[7] ?? 0) > 23 || Number(match[8] ?? 0) > 59) return 'has an invalid time-zone offset';
  return undefined;
}
