/**
 * Every suite module, in the C suites' fixture order (tests/modules.ts).
 * Importing this module fills the case registry
 * (tests/_harness/fixture.ts).
 *
 * @module
 */

import { importSuiteModules } from "./modules.ts";

await importSuiteModules();
