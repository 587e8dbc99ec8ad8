/** Types of generate-statements.mjs, the receipt and notice test-vector generator. */
export declare function buildStatementVectors(): Promise<{
  forwarded: { envelope: string; sha256: string; recipient: string };
  forwardedTree: { envelope: string; sha256: string; recipient: string };
  vectors: { name: string; envelope: string }[];
  ngJwks: unknown;
}>;
