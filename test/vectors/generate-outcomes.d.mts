/** Types of generate-outcomes.mjs, the outcome vector generator. */
export declare function buildOutcomeVectors(): {
  description: string;
  vectors: {
    name: string;
    valid: boolean;
    code?: string;
    pointers?: string[];
    alert: Record<string, unknown>;
  }[];
};
