/** Types of generate-route-tree.mjs, the router's one-countersignature-per-decision vectors. */
export declare function vectorDecision(): {
  origin: string;
  alertId: string;
  routedAt: string;
  grants: { recipient: string; agreement: { id: string; version: number }; onward: boolean }[];
};
export declare function buildRouteTreeVectors(): Promise<RouteTreeVectors>;
/** A copy envelope (hex) decoded, without the signature bytes of its countersignature. */
export declare function withoutCountersignature(envelopeHex: string): unknown;
export interface RouteTreeVectors {
  verifyAt: string;
  decision: ReturnType<typeof vectorDecision>;
  routerKid: string;
  /** The copy id of KE-KWS's copy, step by step (protocol.md §3.2). */
  copyIdDerivation: {
    description: string;
    routerJwkD: string;
    hkdfInfo: string;
    hkdfOutput: string;
    hmacInput: string;
    hmac: string;
    copyId: string;
  };
  leaves: { recipient: string; index: number; copy: string; json: string; leafHash: string }[];
  nodes: Record<string, string>;
  root: string;
  protectedHeader: string;
  signature: string;
  copies: {
    recipient: string;
    index: number;
    leaf: string;
    path: string[];
    envelope: string;
    sha256: string;
  }[];
  invalid: { name: string; description: string; recipient: string; envelope: string; code: string }[];
  perCopy: {
    recipient: string;
    envelope: string;
    /** What a verifier accepting the per-copy form (the default) reads from it. */
    expected: {
      router: string;
      recipient: string;
      agreement: { id: string; version: number };
      routed_at: string;
      onward: boolean;
      alert_id: string;
    };
    refusedWith: string;
    /** Refusals of the per-copy form while it is accepted. */
    invalid: { name: string; description: string; recipient: string; envelope: string; code: string }[];
    /** Variants a verifier accepting the per-copy form accepts, with what it reads from each. */
    accepted: {
      name: string;
      description: string;
      recipient: string;
      envelope: string;
      expected: RouteTreeVectors['perCopy']['expected'];
    }[];
  };
  /** The decision countersigned by the router's ES256 key: verifiable, not reproducible. */
  es256: {
    description: string;
    routerKid: string;
    protectedHeader: string;
    copies: { recipient: string; envelope: string }[];
  };
}
