/** Where the platform's three servers are, whether started locally or given by the environment. */
export interface StackEndpoints {
  /** Temporal frontend, host:port. */
  temporalAddress: string;
  /** Temporal Web UI URL when known (local dev server), else null. */
  temporalUiUrl: string | null;
  /** Kafka bootstrap brokers, host:port each. */
  kafkaBrokers: string[];
  /** ClickHouse HTTP URL, e.g. http://127.0.0.1:8123. */
  clickhouseUrl: string;
}
