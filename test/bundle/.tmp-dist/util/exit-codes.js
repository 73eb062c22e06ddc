/**
 * Exit codes. 1-21, 77 and 101 mean what they mean for DKMS 3.x
 * (dkms.in header comment); 30+ are kbundle's own (bundles).
 * docs/exit-codes.md lists them for users; keep the two in sync.
 */
export const ExitCode = {
    Ok: 0,
    General: 1,
    Usage: 2,
    NotInTree: 3,
    BadAction: 4,
    AllNotAllowed: 5,
    InstallFailed: 6,
    BuiltModuleMissing: 7,
    BadConf: 8,
    NoConf: 9,
    MakeFailed: 10,
    AutoinstallFailed: 11,
    NoArch: 12,
    BuildDepends: 13,
    CdFailed: 15,
    EmptyKernel: 16,
    NoHeaders: 21,
    Excluded: 77,
    PreInstallFailed: 101,
};
