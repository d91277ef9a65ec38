/** The binary's version, shown by `--version` and sent at registration. */
export const VERSION = '0.1.0';
