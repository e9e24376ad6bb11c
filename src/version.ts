// The package version, from package.json.
export const version: string = require('../package.json').version;
