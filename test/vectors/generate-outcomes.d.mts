/** Types of generate-outcomes.mjs, the outcome vector generator. */
export declare function buildOutcomeVectors(): Promise<{
  description: string;
  vectors: {
    name: string;
    valid: boolean;
    code?: string;
    pointers?: string[];
    alert: Record<string, unknown>;
  }[];
  copiesDescription: string;
  copies: {
    name: string;
    description: string;
    recipient: string;
    subject: string;
    envelope: string;
    expected: { ok: true; alert: Record<string, unknown> } | { ok: false; code: string };
  }[];
}>;
