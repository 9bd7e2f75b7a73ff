// The one writer of error answers: RFC 9457 application/problem+json. An AppError becomes
// `/problems/<code>`; anything else is a bug, logged in full and answered with a bare 500.
import type { ServerResponse } from 'node:http';
import type { ProblemDetails } from '@event-tracker/shared';
import type { Logger } from '@event-tracker/common/logger.ts';
import { AppError } from './errors.ts';
import { send } from './http.ts';

const PROBLEM_CONTENT_TYPE = 'application/problem+json; charset=utf-8';

export function problemOf(error: AppError): ProblemDetails {
  return {
    type: `/problems/${error.code}`,
    title: error.title,
    status: error.status,
    detail: error.message,
    ...(error.id === undefined ? {} : { id: error.id }),
    ...(error.ids === undefined ? {} : { ids: error.ids }),
    ...(error.errors === undefined ? {} : { errors: error.errors }),
  };
}

const INTERNAL: ProblemDetails = {
  type: 'about:blank',
  title: 'Internal Server Error',
  status: 500,
  detail: 'The server failed to handle the request.',
};

export function writeProblem(res: ServerResponse, error: unknown, logger: Logger): void {
  if (!(error instanceof AppError)) logger.error('unhandled error', { err: error });
  if (res.headersSent) {
    // Too late for a status line: cut the connection so the client sees a failure, not a truncated success.
    res.destroy();
    return;
  }
  const problem = error instanceof AppError ? problemOf(error) : INTERNAL;
  const headers = error instanceof AppError ? error.headers : {};
  send(res, problem.status, PROBLEM_CONTENT_TYPE, JSON.stringify(problem), headers);
}
