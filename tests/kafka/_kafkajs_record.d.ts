/** kafkajs's record encoder and protocol decoder (untyped modules). */
declare const Record: (record: {
  offsetDelta: number;
  timestampDelta: number;
  key: string | null;
  value: string | null;
  headers?: Record<string, string>;
}) => unknown;
export default Record;
