/**
 * Kernel release ordering for tie-breaking: numeric runs compare as numbers,
 * so 6.12.117 is newer than 6.1.0 and 6.1.0-56 newer than 6.1.0-9.
 */
export function compareKernelRelease(a, b) {
    const ta = a.match(/\d+|\D+/g) ?? [];
    const tb = b.match(/\d+|\D+/g) ?? [];
    for (let i = 0; i < Math.min(ta.length, tb.length); i++) {
        const x = ta[i];
        const y = tb[i];
        const nx = /^\d/.test(x);
        const ny = /^\d/.test(y);
        if (nx && ny) {
            const d = Number(x) - Number(y);
            if (d !== 0)
                return d < 0 ? -1 : 1;
        }
        else if (x !== y) {
            // A number sorts after text at the same position: 6.1.0-56 > 6.1.0-rc.
            if (nx !== ny)
                return nx ? 1 : -1;
            return x < y ? -1 : 1;
        }
    }
    return Math.sign(ta.length - tb.length);
}
