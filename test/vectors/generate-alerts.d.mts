/** Types of generate-alerts.mjs, the version-2 alert vector generator. */
export declare function buildAlertVectors(): {
  description: string;
  vectors: { name: string; valid: boolean; pointers?: string[]; alert: unknown }[];
};
