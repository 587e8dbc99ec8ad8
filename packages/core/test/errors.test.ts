import { describe, expect, it } from 'vitest';
import { AlertHubError, ErrorCode, SubjectMismatchError } from '@alert-hub/core';

describe('errors - one code table', () => {
  it('an error carries a code of the table', () => {
    expect(new SubjectMismatchError('x').code).toBe(ErrorCode.SubjectMismatch);
    expect(new AlertHubError(ErrorCode.SchemaInvalid, 'x').code).toBe('ERR_SCHEMA_INVALID');
  });
  it('a code that is not in the table does not compile (checked by tsc in npm run lint)', () => {
    // @ts-expect-error -- 'ERR_NOT_IN_THE_TABLE' is not a key of ErrorCodeTable
    const e = new AlertHubError('ERR_NOT_IN_THE_TABLE', 'x');
    expect(e).toBeInstanceOf(AlertHubError);
  });
});
