/** A bad flag, file or setting: the message names the option and how to fix it (printed as one line, exit 2). */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}
