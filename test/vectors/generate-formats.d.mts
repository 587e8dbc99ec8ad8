/** Types of generate-formats.mjs, the format test-vector generator. */
export declare function buildFormatVectors(): {
  description: string;
  formats: Record<string, { value: string; valid: boolean; why?: string }[]>;
};
