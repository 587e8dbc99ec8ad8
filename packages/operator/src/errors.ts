import { AlertHubError } from '@alert-hub/core';

/** The operator tools' own failures, merged into core's ErrorCodeTable. */
export const OperatorErrorCode = {
  KeyRoleConflict: 'ERR_KEY_ROLE_CONFLICT',
  KeyNoneToRotate: 'ERR_KEY_NONE_TO_ROTATE',
  KeyKidUnknown: 'ERR_KEY_KID_UNKNOWN',
} as const;
export type OperatorErrorCode = (typeof OperatorErrorCode)[keyof typeof OperatorErrorCode];

declare module '@alert-hub/core' {
  // eslint-disable-next-line @typescript-eslint/no-empty-object-type
  interface ErrorCodeTable extends Record<OperatorErrorCode, true> {}
}

/** A key-management command cannot do what was asked; nothing was written. */
export class KeyAdminError extends AlertHubError {
  constructor(code: OperatorErrorCode, message: string) {
    super(code, message);
  }
}
