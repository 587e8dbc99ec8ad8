/**
 * The JSON shapes of the HTTP answers that more than one side reads: the service that builds
 * them, hubctl, and the web consoles. Types only and no imports, so browser code can import this
 * module (`@alert-hub/core/api-types`) without pulling in anything that runs in Node.
 */

/** An operation as its report names it. */
export interface OperationSummary {
  readonly id: string;
  readonly version: number;
  readonly name: string;
  readonly period: { readonly from: string; readonly until: string };
  readonly members: readonly string[];
}

/** One agency's part in an operation. */
export interface OperationAgencyCounts {
  readonly agency: string;
  /** Operation alerts it sent. */
  readonly sent: number;
  /** Copies of operation alerts forwarded to it. */
  readonly received: number;
  /** Of those, delivered: its signed receipt verified. */
  readonly delivered: number;
  /** Outcomes it reported on operation alerts. */
  readonly outcomes: number;
}

/** `GET /v1/operations/:id/report` (router): what a coordinator publishes at the end of an operation. */
export interface OperationReport {
  readonly operation: OperationSummary;
  /** Countries that sent or received an operation alert (or an outcome of one), sorted. */
  readonly countries: readonly string[];
  readonly alertsByType: Readonly<Record<string, number>>;
  readonly deliveries: {
    readonly forwarded: number;
    readonly delivered: number;
    readonly pending: number;
    /**
     * From the hub publishing the copy to the recipient's inbox commit (`committedAt` of its
     * signed receipt): two hosts' clocks, so skew between them shows here; and a receipt that
     * several commits share carries the last one's time, so a delivery may read up to the
     * gateway's `receipts.coalesceMs` late.
     */
    readonly latencyMs: { readonly p50: number; readonly p95: number; readonly max: number } | null;
  };
  readonly outcomes: Readonly<Record<string, number>>;
  /** Per agency, sorted by agency. */
  readonly agencies: readonly OperationAgencyCounts[];
  readonly seizures: readonly {
    readonly country: string;
    readonly commodity: string;
    readonly unit: string;
    readonly quantity: number;
    readonly reports: number;
  }[];
  /**
   * Alerts that named the operation outside its period, refused to everyone
   * (`DENY_OPERATION_PERIOD`), per sender, sorted: counted in nothing above.
   */
  readonly refusedOutsidePeriod: readonly { readonly agency: string; readonly alerts: number }[];
}

/** The fate of one recipient of an alert an agency sent (gateway). */
export interface RecipientStatus {
  readonly recipient: string;
  readonly state: 'pending' | 'delivered' | 'refused';
  /** Pending: since when (routed at). */
  readonly since?: string;
  /** Pending longer than the configured time. */
  readonly overdue?: boolean;
  readonly deliveredAt?: string;
  /** Delivered: the recipient's signed receipt was verified by the hub. */
  readonly receiptVerified?: boolean;
  readonly receipt?: string;
  readonly code?: string;
  readonly reason?: string;
}

/** An outcome a partner reported on an alert an agency sent; `outcome` is the outcome alert. */
export interface ReportedOutcome<Outcome = Readonly<Record<string, unknown>>> {
  readonly id: string;
  readonly from: string;
  readonly result: string;
  readonly issuedAt: string;
  readonly outcome: Outcome;
}

/** `GET /v1/alerts/:id/status` (gateway): what became of an alert the agency sent. */
export interface AlertStatus<Outcome = Readonly<Record<string, unknown>>> {
  readonly id: string;
  readonly type: string;
  readonly state: 'accepted' | 'routed' | 'refused';
  readonly acceptedAt: string;
  readonly routedAt?: string;
  readonly operation?: string;
  readonly refused?: { readonly code: string; readonly reason: string; readonly at: string };
  readonly recipients: readonly RecipientStatus[];
  /** Outcomes partners reported on this alert: the 100 newest, oldest first. */
  readonly outcomes: readonly ReportedOutcome<Outcome>[];
  /** How many outcomes partners reported on this alert in all. */
  readonly outcomesTotal: number;
}

/** One alert the agency sent, as `GET /console/api/sent` (gateway) lists it. */
export interface SentItem {
  readonly id: string;
  readonly type: string;
  readonly acceptedAt: string;
  readonly client: string;
  readonly state: AlertStatus['state'];
  /** An outcome: the alert it answers, and its result. */
  readonly answers?: string;
  readonly result?: string;
  readonly recipients: {
    readonly pending: number;
    readonly delivered: number;
    readonly refused: number;
  };
  readonly outcomes: number;
}
