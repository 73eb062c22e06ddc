/** Package builders: .deb (dkms and binary), Debian source, RPM (dkms, kmod), SUSE KMP, driver update disks. */
export { inputFromTree, inputFromBundle, type PackageInput, type KernelRequest } from './input.js';
export { mkdeb, mkdsc, mkbmdeb } from './deb.js';
export { mkrpm, mkkmp } from './rpm.js';
export { mkdriverdisk, defaultDiskName, formatFromName, type Distro, type DiskFormat } from './driver-disk.js';
