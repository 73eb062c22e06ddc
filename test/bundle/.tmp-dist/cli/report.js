/** DKMS's error format: "Error! <message>" on stderr, then any detail lines. */
export function printError(e, prefix = '') {
    process.stderr.write(`Error! ${prefix}${e.message}\n`);
    for (const d of e.details)
        process.stderr.write(`${d}\n`);
}
