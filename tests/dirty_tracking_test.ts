/**
 * Placeholder: the cases of this uAPI area are being ported.
 *
 * @module
 */

export {};
