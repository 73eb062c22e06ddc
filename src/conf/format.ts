/** An evaluated dkms.conf for `kbundle conf`: JSON for tools, text for people. */
import type { EvaluatedConf } from './types.js';

export interface ConfJson extends Pick<EvaluatedConf, 'name' | 'version' | 'autoinstall' | 'make' | 'clean' | 'preBuild'> {
  modules: { built: string; destName: string; destLocation: string; strip: boolean }[];
  excluded: boolean;
  excludeReasons: string[];
}

/** Keys in a fixed order; scripts diff this output. */
export function confToJson(conf: EvaluatedConf): ConfJson {
  return {
    name: conf.name,
    version: conf.version,
    autoinstall: conf.autoinstall,
    make: conf.make,
    clean: conf.clean,
    preBuild: conf.preBuild,
    modules: conf.modules.map((m) => ({
      built: `${m.builtLocation}${m.builtName}.ko`,
      destName: m.destName,
      destLocation: m.destLocation,
      strip: m.strip,
    })),
    excluded: conf.excluded,
    excludeReasons: [...conf.excludeReasons],
  };
}

export function confToText(conf: EvaluatedConf): string {
  const lines = [
    `${conf.name}/${conf.version}`,
    `  autoinstall: ${conf.autoinstall ? 'yes' : 'no'}`,
    `  make:        ${conf.make}`,
    `  clean:       ${conf.clean}`,
  ];
  const scripts: [string, string | null][] = [
    ['pre_build', conf.preBuild], ['post_build', conf.postBuild], ['post_add', conf.postAdd],
    ['pre_install', conf.preInstall], ['post_install', conf.postInstall], ['post_remove', conf.postRemove],
  ];
  for (const [k, v] of scripts) if (v) lines.push(`  ${`${k}:`.padEnd(12)} ${v}`);
  if (conf.patches.length) lines.push(`  patches:     ${conf.patches.join(' ')}`);
  if (conf.buildDepends.length) lines.push(`  depends on:  ${conf.buildDepends.join(' ')}`);
  if (conf.obsoleteBy) lines.push(`  obsolete by: ${conf.obsoleteBy}`);
  lines.push(`  modules (${conf.modules.length}):`);
  for (const m of conf.modules) {
    const rename = m.destName !== m.builtName ? ` as ${m.destName}` : '';
    lines.push(`    ${m.builtLocation}${m.builtName}.ko -> ${m.destLocation}${rename}${m.strip ? '' : ' (not stripped)'}`);
  }
  if (conf.excluded) {
    lines.push('  excluded for this kernel:');
    for (const r of conf.excludeReasons) lines.push(`    ${r}`);
  }
  for (const w of conf.warnings) lines.push(`  warning: ${w}`);
  return `${lines.join('\n')}\n`;
}
