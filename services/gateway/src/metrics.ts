import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** The gateway's Prometheus metrics, on their own registry (several gateways can share a process in tests). */
export function createGatewayMetrics(agency: string) {
  const registry = new Registry();
  registry.setDefaultLabels({ agency });
  collectDefaultMetrics({ register: registry, prefix: 'ahub_gateway_' });
  const latencyBuckets = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];
  /** Set once the store is open: recipients of this agency's alerts pending past the limit. */
  const overdueSource = { count: (): number => 0 };
  return {
    registry,
    overdueSource,
    overdue: new Gauge({
      name: 'ahub_gateway_deliveries_overdue',
      help: 'Recipients of alerts this agency sent that are still pending after status.pendingAlertMs',
      registers: [registry],
      collect() {
        this.set(overdueSource.count());
      },
    }),
    receiptsSent: new Counter({
      name: 'ahub_gateway_receipts_sent_total',
      help: 'Signed delivery receipts published (one per inbox commit with new alerts)',
      registers: [registry],
    }),
    notices: new Counter({
      name: 'ahub_gateway_notices_total',
      help: 'Hub notices received and applied, by result (applied, quarantined)',
      labelNames: ['result'],
      registers: [registry],
    }),
    witnessed: new Counter({
      name: 'ahub_gateway_witness_checkpoints_total',
      help: 'Audit checkpoints seen as a witness, by outcome (cosigned, stale, unverifiable, refused, inconsistent, failed: its state could not be read or written)',
      labelNames: ['outcome'],
      registers: [registry],
    }),
    outboxExpired: new Gauge({
      name: 'ahub_gateway_outbox_expired',
      help: "Alerts accepted (202) that expired in the agency's leaf outbox before the hub had them: never routed, to be resent (0 when not behind a leaf)",
      registers: [registry],
    }),
    witnessInconsistent: new Gauge({
      name: 'ahub_gateway_witness_inconsistent',
      help: '1 once the hub showed this witness an audit checkpoint inconsistent with one it cosigned (evidence kept)',
      registers: [registry],
    }),
    witnessNewLogs: new Counter({
      name: 'ahub_gateway_witness_new_logs_total',
      help: 'Audit logs whose first checkpoint this witness cosigned on trust, with nothing earlier of that log to check it against (once per log; a log under a new name is history it cannot compare)',
      registers: [registry],
    }),
    witnessNewLogAt: new Gauge({
      name: 'ahub_gateway_witness_new_log_time_seconds',
      help: 'Unix time this witness last cosigned the first checkpoint of a log it had never seen (0: not since it started)',
      registers: [registry],
    }),
    witnessStalled: new Gauge({
      name: 'ahub_gateway_witness_stalled',
      help: "1 while the hub's audit checkpoints have stopped extending the one this witness cosigned (5 in a row older, or without a proof from it): a rolled-back log",
      registers: [registry],
    }),
    accepted: new Counter({
      name: 'ahub_gateway_alerts_accepted_total',
      help: 'Alerts accepted (acknowledged by JetStream), by type',
      labelNames: ['type'],
      registers: [registry],
    }),
    rejected: new Counter({
      name: 'ahub_gateway_alerts_rejected_total',
      help: 'Alerts refused at intake, by error code',
      labelNames: ['reason'],
      registers: [registry],
    }),
    published: new Counter({
      name: 'ahub_gateway_alerts_published_total',
      help: 'Alerts published to JetStream',
      registers: [registry],
    }),
    feedReceived: new Counter({
      name: 'ahub_gateway_feed_received_total',
      help: 'Messages received on the feed',
      registers: [registry],
    }),
    feedVerified: new Counter({
      name: 'ahub_gateway_feed_verified_total',
      help: 'Feed messages whose origin signature and router countersignature verified',
      registers: [registry],
    }),
    feedGaps: new Counter({
      name: 'ahub_gateway_feed_gaps_total',
      help: 'Times the feed was out of reach longer than the hub keeps alerts (alerts may have expired unread)',
      registers: [registry],
    }),
    feedDuplicates: new Counter({
      name: 'ahub_gateway_feed_duplicates_total',
      help: 'Verified feed messages already in the inbox (not stored again)',
      registers: [registry],
    }),
    quarantined: new Counter({
      name: 'ahub_gateway_feed_quarantined_total',
      help: 'Feed messages that failed verification, by error code',
      labelNames: ['reason'],
      registers: [registry],
    }),
    intakeSeconds: new Histogram({
      name: 'ahub_gateway_intake_seconds',
      help: 'From request body to JetStream acknowledgement',
      buckets: latencyBuckets,
      registers: [registry],
    }),
    feedSeconds: new Histogram({
      name: 'ahub_gateway_feed_store_seconds',
      help: 'From feed message received to inbox row committed',
      buckets: latencyBuckets,
      registers: [registry],
    }),
    feedStreams: new Gauge({
      name: 'ahub_gateway_feed_streams',
      help: 'Live feed streams (Server-Sent Events) open now',
      registers: [registry],
    }),
    httpSeconds: new Histogram({
      name: 'ahub_gateway_http_request_seconds',
      help: 'HTTP request duration',
      labelNames: ['route', 'status'],
      buckets: latencyBuckets,
      registers: [registry],
    }),
  };
}

export type GatewayMetrics = ReturnType<typeof createGatewayMetrics>;
