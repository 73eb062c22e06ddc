export const silentProgress = { start() { }, step() { }, finish() { } };
const secs = (ms) => `${(ms / 1000).toFixed(1)}s`;
export class PlainProgress {
    out;
    lines = new Map();
    constructor(out = process.stderr) {
        this.out = out;
    }
    start(id, label, totalSteps) {
        this.lines.set(id, { label, total: totalSteps, done: 0, step: 'queued', started: Date.now() });
        this.out.write(`${label}: started\n`);
    }
    step(id, name) {
        const l = this.lines.get(id);
        if (!l)
            return;
        l.done++;
        l.step = name;
        this.out.write(`${l.label}: ${name}\n`);
    }
    finish(id, outcome, detail) {
        const l = this.lines.get(id);
        if (!l)
            return;
        this.out.write(`${l.label}: ${outcome} in ${secs(Date.now() - l.started)}${detail ? ` (${detail})` : ''}\n`);
    }
}
export class TtyProgress {
    out;
    lines = new Map();
    drawn = 0;
    timer = null;
    constructor(out = process.stderr) {
        this.out = out;
    }
    start(id, label, totalSteps) {
        this.lines.set(id, { label, total: totalSteps, done: 0, step: 'queued', started: Date.now() });
        if (!this.timer)
            this.timer = setInterval(() => this.draw(), 200).unref();
        this.draw();
    }
    step(id, name) {
        const l = this.lines.get(id);
        if (!l)
            return;
        l.done = Math.min(l.total, l.done + 1);
        l.step = name;
        this.draw();
    }
    finish(id, outcome, detail) {
        const l = this.lines.get(id);
        if (!l)
            return;
        l.done = l.total;
        l.final = `${outcome} in ${secs(Date.now() - l.started)}${detail ? ` (${detail})` : ''}`;
        this.draw();
        if ([...this.lines.values()].every((x) => x.final) && this.timer) {
            clearInterval(this.timer);
            this.timer = null;
        }
    }
    draw() {
        const width = 20;
        let text = this.drawn ? `\x1b[${this.drawn}A` : '';
        for (const l of this.lines.values()) {
            const filled = Math.round((l.done / Math.max(1, l.total)) * width);
            const bar = `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}]`;
            const state = l.final ?? `${l.step} ${secs(Date.now() - l.started)}`;
            text += `\x1b[2K${bar} ${l.label}: ${state}\n`;
        }
        this.drawn = this.lines.size;
        this.out.write(text);
    }
}
export function makeProgress(quiet) {
    if (quiet)
        return silentProgress;
    return process.stderr.isTTY ? new TtyProgress() : new PlainProgress();
}
