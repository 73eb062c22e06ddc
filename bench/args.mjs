// Command-line options of the bench scripts: `--name value` pairs, anything else ignored
// (bench/run.sh passes one set of options to every script).
const argv = process.argv.slice(2);

/** The value after `name` on the command line, or `dflt`. */
export function opt(name, dflt) {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : dflt;
}
