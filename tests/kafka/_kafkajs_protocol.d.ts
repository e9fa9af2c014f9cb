/** The untyped kafkajs record batch encoder and decoder modules the encoder fix test drives. */
declare const recordBatch: {
  RecordBatch(options: {
    records: unknown[];
    firstTimestamp: number;
    maxTimestamp: number;
    lastOffsetDelta: number;
    transactional: boolean;
  }): Promise<{ buffer: Uint8Array }>;
};
export default recordBatch;
