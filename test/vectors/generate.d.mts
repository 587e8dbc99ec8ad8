/** Types of generate.mjs, the protocol test-vector generator. */
export declare const VECTOR_TIME: string;
export declare function buildVectors(): Promise<{ name: string; envelope: string }[]>;
export declare function vectorTrust(): Record<string, unknown>;
