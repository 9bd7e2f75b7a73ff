// RFC 3339 date-time check (the ISO 8601 profile with a mandatory zone). `new Date()` alone is
// not enough: it rolls 2023-02-30 over to March and accepts strings without a zone.

const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.\d{1,9})?(?:[Zz]|[+-](\d{2}):(\d{2}))$/;

function daysInMonth(year: number, month: number): number {
  if (month === 2) return year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0) ? 29 : 28;
  return [4, 6, 9, 11].includes(month) ? 30 : 31;
}

/**
 * Why `text` is not an RFC 3339 instant, or `undefined` when it is. Leap seconds (:60) are refused:
 * JavaScript dates cannot hold them, so the consumer could not store the event.
 */
export function timestampProblem(text: string): string | undefined {
  const match = RFC3339.exec(text);
  if (match === null) return 'must be an RFC 3339 date-time with a time zone, e.g. 2023-10-27T10:00:00Z';
  const field = (group: number): number => Number(match[group] ?? 0);
  const [year, month, day] = [field(1), field(2), field(3)];
  if (month < 1 || month > 12) return 'has no such month';
  if (day < 1 || day > daysInMonth(year, month)) return 'has no such day in that month';
  if (field(4) > 23 || field(5) > 59 || field(6) > 59) return 'has no such time of day (hours 00-23, minutes and seconds 00-59)';
  if (field(7) > 23 || field(8) > 59) return 'has an invalid time-zone offset';
  return undefined;
}
