/** The CLI suites `npm run test:cli-bin` runs against the single executable. */
export declare const CLI_SUITES: readonly string[];
