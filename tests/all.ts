/**
 * Every suite module, in the C suites' fixture order. Importing this module
 * fills the case registry (tests/_harness/fixture.ts); the KTAP front end
 * imports it, `deno test` discovers the same files by name.
 *
 * @module
 */

import "./iommufd_test.ts";
