import { ExitCode } from './exit-codes.js';

/**
 * An error the user should see as one clear message, with the process exit
 * code DKMS would use for the same failure.
 */
export class KbundleError extends Error {
  constructor(
    message: string,
    readonly exitCode: number = ExitCode.General,
    /** Extra lines (e.g. where a log was kept) printed after the message. */
    readonly details: string[] = [],
  ) {
    super(message);
    this.name = 'KbundleError';
  }
}
