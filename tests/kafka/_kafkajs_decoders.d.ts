/** kafkajs's protocol decoder and record batch decoder (untyped modules). */
declare const decodeBatch: (decoder: unknown) => Promise<{
  records: {
    key: Uint8Array | null;
    value: Uint8Array | null;
    headers: Record<string, Uint8Array>;
    offset: string;
    timestamp: string;
  }[];
}>;
export default decodeBatch;
