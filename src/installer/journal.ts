/**
 * Intent file for crash safety. It is written (atomically) after everything
 * is staged privately and the bundle is stored, and before the first change
 * anyone else can see; it is removed after the last one. Its presence
 * therefore means "an install may be half done": the next installer,
 * autoinstall or status replays it under the lock — forward from the stored
 * bundle when possible, else back (recover.ts).
 */
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Roots } from '../tree/paths.js';
import { readJsonRecord, writeJsonRecord } from '../tree/records.js';

export interface JournalPackage {
  package: string;
  version: string;
  /** What existed before, so a roll-back removes only what this install created. */
  sourceExisted: boolean;
  versionDirExisted: boolean;
  installPaths: string[];
}

export interface Journal {
  format: 'kbundle-journal-v1';
  pid: number;
  startedAt: string;
  rootDigest: string;
  /** Stored bundle, relative to the DKMS tree. */
  bundle: string;
  root: string;
  roots: Roots;
  kernel: string;
  arch: string;
  packages: JournalPackage[];
}

export const journalPath = (dkmsTree: string) => join(dkmsTree, '.kbundle-journal.json');

export const readJournal = (dkmsTree: string) => readJsonRecord<Journal>(journalPath(dkmsTree));
export const writeJournal = (j: Journal) => writeJsonRecord(journalPath(j.roots.dkmsTree), j);
export const clearJournal = (dkmsTree: string) => rm(journalPath(dkmsTree), { force: true });
