import { ExitCode } from './exit-codes.js';
/**
 * An error the user should see as one clear message, with the process exit
 * code DKMS would use for the same failure.
 */
export class KbundleError extends Error {
    exitCode;
    details;
    constructor(message, exitCode = ExitCode.General, 
    /** Extra lines (e.g. where a log was kept) printed after the message. */
    details = []) {
        super(message);
        this.exitCode = exitCode;
        this.details = details;
        this.name = 'KbundleError';
    }
}
