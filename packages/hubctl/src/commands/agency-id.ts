import { InvalidArgumentError } from 'commander';
import { AGENCY_ID_FORM } from '@alert-hub/core';

/**
 * Commander's parser of an agency id, as an argument or an option: refused outside its grammar
 * (docs/protocol.md §2.3) before it names a file, a certificate or a stream (`../x` never does).
 */
export function agencyId(v: string): string {
  if (!AGENCY_ID_FORM.test(v))
    throw new InvalidArgumentError('an agency id such as KE-KWS (country, hyphen, agency code)');
  return v;
}
